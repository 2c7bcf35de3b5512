"""Two-way texting: the business's dedicated number, its toll-free verification, and the in-app
notifications that tell staff when something about it changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

# Settings → Auto Client Messages and SMS → SMS Settings: what happens to clients' replies.
SMS_SETTINGS = {
    "two_way": "Two-way texting",
    "do_not_reply": "“Do not reply” auto message",
    "no_auto_reply": "No auto reply",
}

# A dedicated number's life: bought (assigning → active), switched off (reserved for three
# months), given back to Vonage (releasing → released). `failed` records an assignment that
# could not be completed; nothing was kept.
NUMBER_STATUSES = ("assigning", "active", "reserved", "releasing", "released", "failed")
# The statuses in which a number belongs to its business: at most one row per business.
HELD_STATUSES = ("assigning", "active", "reserved")
_HELD_SQL = "status IN ('assigning', 'active', 'reserved')"

VERIFICATION_STATES = ("pending", "verified", "rejected")


class DedicatedNumber(db.Model):
    """A toll-free number bought for one business, with its inbound webhook pointed at us."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    number: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164, once bought
    country: Mapped[str] = mapped_column(String(2))  # the business's country when asked for
    status: Mapped[str] = mapped_column(String(16), default="assigning")
    failure_reason: Mapped[str | None] = mapped_column(Text)  # why a `failed` assignment failed
    attempts: Mapped[int] = mapped_column(default=0)  # assignment runs that hit a Vonage outage
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a job is working on it
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # The SMS setting before this activation, restored if the number cannot be bought.
    previous_sms_setting: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reserved_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    verification: Mapped[Verification | None] = relationship(
        back_populates="dedicated_number", uselist=False
    )

    __table_args__ = (
        # Exactly one number per business, whoever presses the button and however often: the
        # database refuses a second held row, so concurrent activations cannot both win.
        Index(
            "uq_dedicated_number_held_per_business",
            "business_id",
            unique=True,
            sqlite_where=text(_HELD_SQL),
            postgresql_where=text(_HELD_SQL),
        ),
    )


class Verification(db.Model):
    """The carriers' toll-free verification of a dedicated number (one per number: giving the
    same number back gives its verification back; a new number gets a new one)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    dedicated_number_id: Mapped[int] = mapped_column(ForeignKey("dedicated_number.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # VERIFICATION_STATES
    registration_id: Mapped[str | None] = mapped_column(String(64))  # Vonage's, once submitted
    raw_status: Mapped[str | None] = mapped_column(String(32))  # Vonage's own word for it
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected
    # The business's details are waiting to be sent (first submission or a resubmission).
    needs_submission: Mapped[bool] = mapped_column(Boolean, default=True)
    submission_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submission_attempts: Mapped[int] = mapped_column(default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # staff told: exactly once
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # "verified" dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dedicated_number: Mapped[DedicatedNumber] = relationship(back_populates="verification")


class Notification(db.Model):
    """An in-app notification for one staff member, or for all of a business's staff."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # None: all staff
    kind: Mapped[str] = mapped_column(String(32))  # e.g. "number_verified"
    text: Mapped[str] = mapped_column(String(500))
    link: Mapped[str | None] = mapped_column(String(500))  # a path in this app
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_notification_business_id_created_at", "business_id", "created_at"),)
