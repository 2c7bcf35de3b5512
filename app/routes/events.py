"""`/events`: the signed-in staff member's business's live events, as server-sent events.

The signed-in shell connects with htmx's SSE extension (`sse-connect`); fragments listen with
`sse-swap="<event name>"` or `hx-trigger="sse:<event name>"`. See `app.services.events`.
Each stream belongs to the signed-in session that opened it, and ends (after `session.changed`)
when that session ends or its staff member's role changes (`app.services.sessions`).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, Response, abort, current_app, request, url_for
from flask_login import current_user
from redis import RedisError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.services import events, sessions

bp = Blueprint("events", __name__)


@bp.get("/events")
def stream() -> Response:
    """Streams live events. Resumes after `Last-Event-ID` (sent by the browser when it
    reconnects by itself) or `?last_event_id=` (for a new EventSource, which cannot send
    headers: htmx makes one after a refused connection, and the page is rendered with one)."""
    if not current_user.is_authenticated:  # (false for removed staff too)
        # Never a redirect: an EventSource cannot follow one to a sign-in form. On 401 it
        # stops, and htmx retries with a growing delay until a sign-in makes it work.
        abort(401)
    business_id = current_user.business_id
    viewer = events.Viewer(
        user_id=current_user.id,
        session_id=current_user.session_id,
        still_allowed=_session_check(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            current_user.session_id,
            current_user.role,
        ),
    )
    last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    # An open stream lasts minutes: it must not hold a database connection all that time.
    db.session.remove()
    try:
        body = events.open_stream(
            business_id,
            last_event_id,
            heartbeat_seconds=current_app.config["SSE_HEARTBEAT_SECONDS"],
            viewer=viewer,
        )
    except (events.EventsUnavailable, RedisError):
        abort(503)
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _session_check(app: Flask, session_id: int, role: str) -> Callable[[], bool]:
    """What the open stream calls to learn whether its session still lasts with this role:
    one lookup by primary key, in an app context of its own (the request is long gone)."""

    def still_allowed() -> bool:
        with app.app_context():
            return sessions.is_current(session_id, role)

    return still_allowed


@bp.errorhandler(HTTPException)
@bp.errorhandler(InternalServerError)  # else the app's own 500 page would win
def plain_error(error: HTTPException) -> Response:
    """Errors in plain text, not the error page: an EventSource shows neither, and the signed-in
    page would need the database session that the stream lets go of. htmx retries by itself."""
    return Response(error.description, error.code, mimetype="text/plain")


@bp.app_context_processor
def events_url() -> dict:
    """`events_stream_url()` for the shell's `sse-connect`: it carries the newest event id at
    render time, so what is published between rendering and connecting still arrives."""

    def events_stream_url() -> str:
        if not current_user.is_authenticated:
            return url_for("events.stream")
        try:
            latest = events.latest_event_id(current_user.business_id)
        except RedisError:  # the page still renders; its stream starts when it connects
            return url_for("events.stream")
        return url_for("events.stream", last_event_id=latest)

    return {"events_stream_url": events_stream_url}
