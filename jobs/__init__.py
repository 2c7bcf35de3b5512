"""Background jobs, run by RQ workers. Each job takes plain ids and values, opens its own app
context, and is safe to run twice."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

F = TypeVar("F", bound=Callable[..., Any])

_app: Flask | None = None


def use_app(app: Flask) -> None:
    """Makes jobs run in this app (the in-process worker and tests share the web app)."""
    global _app
    _app = app


def job_app() -> Flask:
    """The app jobs run in: the one given to `use_app`, else one built from the environment
    (an `rq worker` process builds it once)."""
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def app_job(func: F) -> F:
    """Runs the job inside a fresh app context of `job_app()`."""

    @functools.wraps(func)
    def run_in_app_context(*args: Any, **kwargs: Any) -> Any:
        with job_app().app_context():
            return func(*args, **kwargs)

    return run_in_app_context  # type: ignore[return-value]
