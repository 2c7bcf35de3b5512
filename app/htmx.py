"""A small htmx helper (the project does not use htmx-flask; see the README's design notes)."""

from __future__ import annotations

from typing import Any

from flask import render_template, request


def is_htmx_request() -> bool:
    """True when htmx sent the request (it sets the `HX-Request` header)."""
    return request.headers.get("HX-Request") == "true"


def render_page_or_fragment(page_template: str, fragment_template: str, **context: Any) -> str:
    """The whole page for a normal request, only the fragment for an htmx request."""
    return render_template(fragment_template if is_htmx_request() else page_template, **context)
