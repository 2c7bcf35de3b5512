"""In-app notifications: what staff are told when something happens (a number verified, …).

`notify` adds a notification to the caller's transaction, so it is stored exactly when the
change it reports is; after the commit, `announce` tells open pages (an SSE event) and every
receiver of `notification_created` (Web Push connects there when it exists).
"""

from __future__ import annotations

from datetime import datetime

from blinker import Namespace
from sqlalchemy import or_, update

from app.extensions import db
from app.models import Notification
from app.models.types import utcnow
from app.services import events

_signals = Namespace()
notification_created = _signals.signal("notification-created")
"""Sent with `notification` (a stored Notification) after it is committed. Push notifications
to staff who enabled them hook in here; receivers run in the sender's context (a job or a
request) and must queue anything that calls out."""

NOTIFICATION_EVENT = "notification-created"
LIST_LIMIT = 50


def notify(
    business_id: int,
    *,
    kind: str,
    text: str,
    link: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> Notification:
    """Adds a notification for one staff member (`user_id`) or all of the business's staff
    (None) to the session. The caller commits, then calls `announce`."""
    notification = Notification(
        business_id=business_id,
        user_id=user_id,
        kind=kind,
        text=text[:500],
        link=link,
        created_at=now or utcnow(),
    )
    db.session.add(notification)
    return notification


def announce(notification: Notification) -> None:
    """After the commit: live update for open pages, and the push hook."""
    events.publish(
        notification.business_id,
        NOTIFICATION_EVENT,
        {"id": notification.id, "kind": notification.kind, "user_id": notification.user_id},
    )
    notification_created.send(notification, notification=notification)


def announce_after_commit(notification: Notification) -> None:
    """`announce`, once the caller's transaction commits (never if it rolls back), for callers
    that do not commit themselves (receivers of `appointment_changed`). Flushes to learn the
    id, and announces a detached copy made of plain values: after the commit the session can
    no longer load anything (see `app.services.after_commit`)."""
    from app.services.after_commit import call_after_commit

    db.session.flush()
    values = {
        "id": notification.id,
        "business_id": notification.business_id,
        "user_id": notification.user_id,
        "kind": notification.kind,
        "text": notification.text,
        "link": notification.link,
        "created_at": notification.created_at,
    }
    call_after_commit(lambda: announce(Notification(**values)))


def _visible_to(business_id: int, user_id: int):
    return (Notification.business_id == business_id) & or_(
        Notification.user_id.is_(None), Notification.user_id == user_id
    )


def recent_notifications(business_id: int, user_id: int) -> list[Notification]:
    """The staff member's notifications (their own and the business-wide ones), newest first."""
    return list(
        db.session.execute(
            db.select(Notification)
            .where(_visible_to(business_id, user_id))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(LIST_LIMIT)
        ).scalars()
    )


def unread_count(business_id: int, user_id: int) -> int:
    """How many of the staff member's notifications are unread."""
    return db.session.execute(
        db.select(db.func.count(Notification.id)).where(
            _visible_to(business_id, user_id), Notification.read_at.is_(None)
        )
    ).scalar_one()


def mark_read(notification: Notification, *, now: datetime | None = None) -> None:
    """Marks one notification read (business-wide ones are read for every staff member)."""
    if notification.read_at is None:
        notification.read_at = now or utcnow()
        db.session.commit()


def mark_all_read(business_id: int, user_id: int, *, now: datetime | None = None) -> None:
    """Marks every notification the staff member sees as read."""
    db.session.execute(
        update(Notification)
        .where(_visible_to(business_id, user_id), Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
    )
    db.session.commit()


def mark_kind_read(business_id: int, kind: str, *, now: datetime | None = None) -> None:
    """Marks the business's unread notifications of one kind read (e.g. when a banner that
    said the same thing is dismissed)."""
    db.session.execute(
        update(Notification)
        .where(
            Notification.business_id == business_id,
            Notification.kind == kind,
            Notification.read_at.is_(None),
        )
        .values(read_at=now or utcnow())
    )
