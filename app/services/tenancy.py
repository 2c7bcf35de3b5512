"""Every row that belongs to a business is reachable only by that business's staff.

An id that no row can have (0, negative, or beyond the id columns' range: a 23-digit number
from a URL, a form or a query string) answers 404 like any other missing row, before it
reaches the database, which would refuse it with an error.
"""

from __future__ import annotations

from typing import TypeVar

from flask import abort
from flask_login import current_user

from app.extensions import db
from app.models.types import is_row_id

M = TypeVar("M")


def owned_or_404(model: type[M], row_id: int) -> M:
    """The row with this id if it belongs to the signed-in staff member's business; another
    business's id answers 404 exactly like an id that does not exist (or that no row can
    have)."""
    if not is_row_id(row_id):
        abort(404)
    row = db.session.get(model, row_id)
    if row is None or row.business_id != current_user.business_id:  # type: ignore[attr-defined]
        abort(404)
    return row
