"""Sends for later (DESIGN.md §10, "one way to send later"): each is a row with its due time,
claimed atomically when due by the dispatcher (`app.services.scheduling`). The database is the
only place a future send lives; Redis never holds one the database does not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

# A row's life: pending → claimed (by one dispatcher) → done (its handler sent what it sends),
# skipped (nothing to send, `outcome` says why) or failed (its handler kept failing). Pending
# rows can be cancelled (the appointment was cancelled, say). A claimed row whose dispatcher
# died goes back to pending after CLAIM_TIMEOUT (`app.services.scheduling`).
SCHEDULED_SEND_STATES = ("pending", "claimed", "done", "cancelled", "skipped", "failed")


class ScheduledSend(db.Model):
    """One send for later: what it is for (`purpose`, a registered handler), what it is about
    (`subject_id`, e.g. the appointment) and which of the subject's sends it is (`slot`, e.g.
    "reminder-1")."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    purpose: Mapped[str] = mapped_column(String(40))  # a handler's name
    subject_id: Mapped[int | None] = mapped_column()
    slot: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # Why the row is due when it is, for people ("24 hours before", "moved out of quiet hours").
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # SCHEDULED_SEND_STATES
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which claim holds it: a dispatcher only finishes a row while its own claim stands.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)  # claims so far
    outcome: Mapped[str | None] = mapped_column(Text)  # plain English: why skipped or failed
    # The message its handler made: unique, one row's message is never another's.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), unique=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # The due query (every second): only pending rows, in due order. Partial, so the
        # rows already sent (most of the table, in time) cost it nothing.
        Index(
            "ix_scheduled_send_due_at_pending",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # Claims whose dispatcher died, found by age.
        Index(
            "ix_scheduled_send_claimed_at_claimed",
            "claimed_at",
            postgresql_where=text("state = 'claimed'"),
            sqlite_where=text("state = 'claimed'"),
        ),
        Index("ix_scheduled_send_purpose_subject_id", "purpose", "subject_id"),
    )
