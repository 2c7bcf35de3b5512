"""Signed-in sessions: every sign-in is a row, so that the server can end it.

Flask's session is a signed cookie the server cannot take back, and Flask-Login's remember
cookie used to hold the bare user id: the same value for a year, valid even after a password
reset. So:

- Every sign-in (signing in, signing up, accepting an invitation) `start`s a new session: a
  random token, stored here only as its SHA-256 hash, with when and on what browser. The token
  is what Flask-Login keeps in the session cookie, and in the remember cookie when "Keep me
  signed in" is ticked (the login manager's `id_attribute` is `User.get_session_token`), so a
  cookie is worth exactly as long as its row lasts. A new token per sign-in also makes a session
  cookie planted before the sign-in (session fixation) worth nothing.
- `user_for_token` (Flask-Login's user loader) decides whether a token is signed in: its row
  exists, its staff member is active, and it hasn't lapsed (`lapsed`). A request costs one
  indexed lookup; `last_seen_at` is written at most every LAST_SEEN_EVERY, in a transaction of
  its own so that it never commits a request's work.
- Ending: signing out ends that session; "Sign out other devices" and a password change end
  every other session of the staff member; a password reset and removal from the business end
  all of them. Deleting the row is the whole of it: every cookie carrying the token stops
  working at once.
- Open pages follow within moments: the event streams of ended sessions, and every stream of a
  staff member whose role changed, send `session.changed` and close (`events.close_streams`;
  each stream also checks its session now and then, `events.SESSION_CHECK_SECONDS`), and the
  page loads itself again: onto the sign-in page, or showing what the new role may do.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_login.config import COOKIE_DURATION
from sqlalchemy import ColumnElement

from app.extensions import db
from app.models import User, UserSession
from app.models.types import utcnow
from app.services import events
from app.services.push import describe_device

TOKEN_BYTES = 32
# A session not kept signed in ends after this long without a request (the browser keeps its
# cookie until it closes, which may be never on a phone); a kept one lasts as long as its
# remember cookie, REMEMBER_COOKIE_DURATION (Flask-Login's default: 365 days) from sign-in.
IDLE_LIFETIME = timedelta(days=7)
LAST_SEEN_EVERY = timedelta(minutes=5)
MAX_USER_AGENT_LENGTH = 300  # UserSession.user_agent


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _remember_lifetime() -> timedelta:
    duration = current_app.config.get("REMEMBER_COOKIE_DURATION", COOKIE_DURATION)
    return timedelta(seconds=duration) if isinstance(duration, int | float) else duration


def lapsed(user_session: UserSession, now: datetime) -> bool:
    """True when the session has ended by itself: kept signed in, its remember cookie's
    lifetime after sign-in; otherwise IDLE_LIFETIME after its last request."""
    if user_session.remembered:
        return now - user_session.created_at >= _remember_lifetime()
    return now - user_session.last_seen_at >= IDLE_LIFETIME


def _attach(user: User, user_session_id: int, token: str) -> User:
    user.session_id = user_session_id
    user.session_token = token
    return user


def start(
    user: User, *, remembered: bool, user_agent: str | None, now: datetime | None = None
) -> str:
    """Starts a new signed-in session of `user` on this browser and returns its token, which
    is also set on `user` for `login_user`. The user's lapsed sessions are cleared away."""
    now = now or utcnow()
    for old in db.session.execute(db.select(UserSession).filter_by(user_id=user.id)).scalars():
        if lapsed(old, now):
            db.session.delete(old)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    user_session = UserSession(
        user_id=user.id,
        token_hash=_token_hash(token),
        created_at=now,
        last_seen_at=now,
        user_agent=(user_agent or "")[:MAX_USER_AGENT_LENGTH],
        remembered=remembered,
    )
    db.session.add(user_session)
    db.session.commit()
    _attach(user, user_session.id, token)
    return token


def user_for_token(token: str, *, now: datetime | None = None) -> User | None:
    """The active staff member signed in with this token (with the session set on it), or
    None when it is no session's: ended, lapsed, forged, or an old bare user id."""
    now = now or utcnow()
    user_session = db.session.execute(
        db.select(UserSession)
        .where(UserSession.token_hash == _token_hash(token))
        .options(db.joinedload(UserSession.user))
    ).scalar_one_or_none()
    if user_session is None or not user_session.user.is_active or lapsed(user_session, now):
        return None
    if now - user_session.last_seen_at >= LAST_SEEN_EVERY:
        # Its own short transaction: the request's session may hold work it hasn't committed.
        with db.engine.begin() as connection:
            connection.execute(
                db.update(UserSession)
                .where(UserSession.id == user_session.id)
                .values(last_seen_at=now)
            )
    return _attach(user_session.user, user_session.id, token)


def is_current(user_session_id: int, role: str, *, now: datetime | None = None) -> bool:
    """True while the session lasts and its staff member is active with `role`: what an open
    event stream checks (it was opened for that session with that role)."""
    user_session = db.session.get(
        UserSession, user_session_id, options=[db.joinedload(UserSession.user)]
    )
    return (
        user_session is not None
        and user_session.user.is_active
        and user_session.user.role == role
        and not lapsed(user_session, now or utcnow())
    )


# Ending sessions -------------------------------------------------------------------------


def _end(*conditions: ColumnElement[bool]) -> int:
    """Deletes the sessions matching `conditions` and commits (with whatever the caller changed
    before, e.g. a new password: both or neither); closes their open event streams."""
    ended = list(
        db.session.execute(
            db.delete(UserSession).where(*conditions).returning(UserSession.id)
        ).scalars()
    )
    db.session.commit()
    if ended:
        events.close_streams(session_ids=ended)
    return len(ended)


def end(user_session_id: int) -> None:
    """Ends one session (its staff member signed out on that browser)."""
    _end(UserSession.id == user_session_id)


def end_others(user: User, keep_session_id: int | None) -> int:
    """Ends every session of the staff member except `keep_session_id` ("Sign out other
    devices", a password change); returns how many ended."""
    return _end(UserSession.user_id == user.id, UserSession.id != keep_session_id)


def end_all(user: User) -> int:
    """Ends every session of the staff member (a password reset, removal); returns how many."""
    return _end(UserSession.user_id == user.id)


def role_changed(user: User) -> None:
    """The staff member's role changed: their open pages load again with the new rights."""
    events.close_streams(user_id=user.id)


# The list on the profile page ------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """A browser the staff member is signed in on, as the profile page lists it."""

    id: int
    name: str
    signed_in_at: datetime
    last_seen_at: datetime
    remembered: bool
    is_this_device: bool


def devices_of(user: User) -> list[Device]:
    """The staff member's signed-in sessions that haven't lapsed, this one first, then the
    most recently seen."""
    now = utcnow()
    rows = db.session.execute(
        db.select(UserSession)
        .filter_by(user_id=user.id)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    ).scalars()
    devices = [
        Device(
            id=row.id,
            name=describe_device(row.user_agent),
            signed_in_at=row.created_at,
            last_seen_at=row.last_seen_at,
            remembered=row.remembered,
            is_this_device=row.id == user.session_id,
        )
        for row in rows
        if not lapsed(row, now)
    ]
    return sorted(devices, key=lambda device: not device.is_this_device)
