"""Twoway: two-way business texting. `create_app` builds the Flask app."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, flash, redirect, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config as app_config
from app import security_headers, templating
from app.extensions import csrf, db, login_manager, migrate, redis_store
from app.htmx import is_htmx_request


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The application factory: defaults, then environment variables, then `test_config`."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(app_config.load(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    # After the test override, which is checked like the environment: only SANDBOX exempts.
    app_config.refuse_unsafe_production(app.config)
    app_config.apply_sandbox_values(app.config, app.instance_path)
    app.config.from_mapping(app_config.cookie_flags(app.config["PUBLIC_URL"]))

    # The Vonage SDK logs request data and auth headers at DEBUG: never let it.
    logging.getLogger("vonage").setLevel(logging.INFO)

    # Before CSRFProtect's hook, which reads the form: an upload view may allow a larger body.
    app.before_request(_apply_upload_limit)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent.parent / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    redis_store.init_app(app)

    from app import models  # noqa: F401  (registers every table with SQLAlchemy)
    from app.routes import register_blueprints
    from app.services.booking import reminders  # noqa: F401  (hears appointment_changed)

    register_blueprints(app)
    templating.register(app)
    _register_login(app)
    _register_htmx_vary(app)
    security_headers.register(app)

    from app.cli import register_cli

    register_cli(app)
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies, the client's address and scheme are read that
    many hops back in X-Forwarded-For and X-Forwarded-Proto, the hops only those proxies can
    have written. With 0 no such header is believed: anyone can send one, and the sign-in
    guard counts failures by address. The host is never taken from a header (links are built
    on PUBLIC_URL)."""
    proxies = int(app.config["TRUSTED_PROXIES"] or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0, x_port=0, x_prefix=0
        )


def _apply_upload_limit() -> None:
    """The body limit for this view (MAX_CONTENT_LENGTH, or an upload view's own), enforced
    with 413 whether the body says its length or not.

    Werkzeug refuses a Content-Length over the limit with 413 itself, but a chunked body (no
    Content-Length) it only reads up to the limit and silently cuts off there: a form would be
    parsed from its first 64 KB, a webhook's from its first 16 KB. So a chunked body is read
    here, up to one byte past the limit (413 when it gets there), and the request then reads
    it from memory (at most the limit)."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, "max_upload_bytes", None)
    if limit:
        request.max_content_length = limit
    limit = request.max_content_length
    environ = request.environ
    if (
        limit is None
        or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        or not environ.get("wsgi.input_terminated")  # Werkzeug reads no body at all then
    ):
        return  # (a declared Content-Length over the limit Werkzeug refuses itself)
    body = _read_at_most(environ["wsgi.input"], limit + 1)
    if len(body) > limit:
        abort(413)
    environ["wsgi.input"] = io.BytesIO(body)


def _read_at_most(stream: IO[bytes], size: int) -> bytes:
    """Up to `size` bytes of the stream (a server's chunked input may return less per read)."""
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, 64 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _register_login(app: Flask) -> None:
    from app.models import User
    from app.services import sessions

    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    # The session cookie and the remember cookie carry the signed-in session's token, not the
    # user id, so that ending the session on the server ends both (app.services.sessions).
    login_manager.id_attribute = "get_session_token"

    @login_manager.user_loader
    def load_user(token: str) -> User | None:
        return sessions.user_for_token(token)

    @login_manager.unauthorized_handler
    def sign_in_first() -> Response:
        """Signed out (session ended, signed out in another tab): to the sign-in page. An htmx
        request would swap that page into a fragment of the page it came from, so it gets
        401 with HX-Redirect instead, and the whole page goes there."""
        if is_htmx_request():
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            target = url_for(
                "auth.sign_in_form", next=(page.path + (f"?{page.query}" if page.query else ""))
            )
            return Response(status=401, headers={"HX-Redirect": target})
        flash(login_manager.login_message, login_manager.login_message_category)
        return redirect(url_for("auth.sign_in_form", next=request.full_path.rstrip("?")))


def _register_htmx_vary(app: Flask) -> None:
    @app.after_request
    def vary_on_htmx(response: Response) -> Response:
        # Pages and their fragments share URLs: caches must keep them apart.
        response.vary.add("HX-Request")
        return response
