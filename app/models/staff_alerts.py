"""Staff alerts (DESIGN.md §1: some transactional messages go to staff; issue 11 item 6):
each staff member's choice of how they hear of bookings, cancellations, confirmations by reply
and new leads, and the record of each alert, one per event and staff member."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

# What staff can be alerted of, in the order the profile's Alerts section shows them.
ALERT_EVENTS = {
    "booking": "New bookings",
    "cancellation": "Cancellations",
    "confirmation": "Confirmations by reply",
    "lead": "New leads",
}
# How: in the app (with a push to the devices they turned push on for), by email, by a text
# to their own mobile number. With no row for an event: in the app only.
ALERT_CHANNELS = {"in_app": "In the app and push", "email": "Email", "text": "Text"}
DEFAULT_CHANNELS = ("in_app",)
# Why a text alert was not sent, as recorded on the alert.
TEXT_SKIPPED = ("no_mobile", "opted_out", "out_of_texts")


class StaffAlertChoice(db.Model):
    """One staff member's channels for one kind of alert (a key of ALERT_EVENTS)."""

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    event: Mapped[str] = mapped_column(String(16), primary_key=True)  # ALERT_EVENTS
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffAlert(db.Model):
    """One alert of one event to one staff member, and what went out for it. `event_key`
    names the event ("booking:appointment:12"): unique per staff member, so a job that runs
    again alerts no one twice."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    event: Mapped[str] = mapped_column(String(16))  # ALERT_EVENTS
    event_key: Mapped[str] = mapped_column(String(80))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"))
    email_to: Mapped[str | None] = mapped_column(String(254))  # the address it was emailed to
    text_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    text_skipped: Mapped[str | None] = mapped_column(String(16))  # TEXT_SKIPPED
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("uq_staff_alert_user_id_event_key", "user_id", "event_key", unique=True),
        Index("ix_staff_alert_business_id_created_at", "business_id", "created_at"),
    )
