"""Error pages in the app's own look (an htmx request gets a short fragment instead)."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.htmx import is_htmx_request

MESSAGES = {
    400: ("That request didn't make sense", "Something in it was missing or malformed."),
    401: ("Please sign in", "You need to sign in to see this."),
    403: ("Not allowed", "Your role doesn't allow this. Ask your business's owner or an admin."),
    404: ("Not found", "There's nothing here, or it belongs to another business."),
    405: ("Not allowed", "That action isn't available here."),
    413: ("Too large", "That was more than Twoway accepts in one go."),
    429: ("Slow down", "Too many tries in a short time. Wait a little and try again."),
    500: ("Something went wrong", "It's not you: we've logged it. Try again in a moment."),
}


def render_error(status: int, detail: str | None = None):
    title, message = MESSAGES.get(status, ("Something went wrong", ""))
    template = "errors/_error.html" if is_htmx_request() else "errors/error.html"
    return render_template(template, status=status, title=title, message=detail or message), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(
            400, "The form expired or came from elsewhere. Reload the page and try again."
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        return render_error(error.code)

    @app.errorhandler(InternalServerError)
    def server_error(error: InternalServerError):
        return render_error(500)
