"""View decorators for who may see what."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort
from flask_login import current_user, login_required


def settings_role_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only the owner and admins change settings: staff get 403."""

    @functools.wraps(view)
    @login_required
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.can_change_settings:
            abort(403)
        return view(*args, **kwargs)

    return guarded


def allows_upload(max_bytes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Lets this view accept a body up to `max_bytes` (others stop at MAX_CONTENT_LENGTH)."""

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view.max_upload_bytes = max_bytes  # type: ignore[attr-defined]
        return view

    return mark
