"""Every row that belongs to a business is reachable only by that business's staff."""

from __future__ import annotations

from typing import TypeVar

from flask import abort
from flask_login import current_user

from app.extensions import db

M = TypeVar("M")


def owned_or_404(model: type[M], row_id: int) -> M:
    """The row with this id if it belongs to the signed-in staff member's business; another
    business's id answers 404 exactly like an id that does not exist."""
    row = db.session.get(model, row_id)
    if row is None or row.business_id != current_user.business_id:  # type: ignore[attr-defined]
        abort(404)
    return row
