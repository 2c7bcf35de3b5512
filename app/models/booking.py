"""Booking texts (DESIGN.md §1, issue 11): appointments, and each business's automatic
messages about them (confirmation, rescheduled, cancelled, reminders, thank-you)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

# An appointment's life: booked → confirmed (by staff, or by the client replying C) →
# completed or no_show; cancelled from booked or confirmed.
APPOINTMENT_STATES = {
    "booked": "Booked",
    "confirmed": "Confirmed",
    "cancelled": "Cancelled",
    "completed": "Completed",
    "no_show": "No-show",
}
OPEN_STATES = ("booked", "confirmed")  # still ahead of the client: reminders may go

# The automatic messages about an appointment, in the order the Auto messages tab shows them.
AUTO_EVENTS = {
    "booking_confirmation": "Booking confirmation",
    "rescheduled": "Rescheduled",
    "cancelled": "Cancelled",
    "reminder": "Reminder",
    "thank_you": "Thank-you",
}
# How an automatic message reaches the client.
AUTO_CHANNELS = {
    "text": "Text",
    "email": "Email",
    "text_or_email": "Text, or email when they can't get texts",
}
REMINDER_OFFSETS_HOURS = (1, 2, 24, 48)  # a reminder goes this long before the start
MAX_REMINDERS = 2
# With no AutoMessageSetting row: every message on except the thank-you, by text (email when
# the client can't get texts), one reminder 24 h before. The thank-you goes THANK_YOU_AFTER
# the appointment's end.
DEFAULT_OFF_EVENTS = ("thank_you",)
DEFAULT_CHANNEL = "text_or_email"
DEFAULT_REMINDER_HOURS = (24,)
THANK_YOU_AFTER = timedelta(hours=2)


class Appointment(db.Model):
    """One booking of a client with the business, at a time in the business's zone."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # who sees the client
    service: Mapped[str] = mapped_column(String(120))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(default=60)
    location: Mapped[str] = mapped_column(String(200), default="", server_default="")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    state: Mapped[str] = mapped_column(String(16), default="booked")  # APPOINTMENT_STATES
    # How it was confirmed: "staff" (marked in the app) or "reply" (the client texted C).
    confirmed_via: Mapped[str | None] = mapped_column(String(8))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client = relationship("Client")
    staff = relationship("User", foreign_keys=[staff_id])

    __table_args__ = (
        Index("ix_appointment_business_id_starts_at", "business_id", "starts_at"),
        Index("ix_appointment_client_id_starts_at", "client_id", "starts_at"),
    )

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


class AutoMessageSetting(db.Model):
    """A business's choice for one automatic message. No row: the event's defaults (see
    `app.services.booking.auto_messages`)."""

    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), primary_key=True)
    event: Mapped[str] = mapped_column(String(24), primary_key=True)  # AUTO_EVENTS
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    channel: Mapped[str] = mapped_column(String(16), default="text")  # AUTO_CHANNELS
    template: Mapped[str | None] = mapped_column(Text)  # None: the default text
    # Reminders only: hours before the start (REMINDER_OFFSETS_HOURS, at most MAX_REMINDERS),
    # whether they end with "Reply C to confirm", and whether a C is answered with thanks.
    reminder_hours: Mapped[list] = mapped_column(db.JSON, default=list)
    ask_to_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    thank_for_confirming: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
