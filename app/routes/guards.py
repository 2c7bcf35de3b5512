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
