"""Messages (texts and emails) with the parts a text is sent as, and each business's balance
of texts: the ledger every sent part is charged to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

CHANNELS = ("text", "email")
DIRECTIONS = ("outbound", "inbound")
KINDS = ("direct", "transactional", "marketing")
# Where an inbound text shows (DESIGN.md §3, §6, §8). Outbound messages show in the inbox,
# except Twoway's automatic answers (where the text they answer shows) and staff alert texts
# (`auto_event="staff_alert"`, no client: "system", never in an inbox or a conversation).
#   inbox:  in the inbox and on the client card
#   held:   to a dedicated number not verified yet; released into the inbox when it is
#   logged: to a dedicated number after deactivation; kept, never shown
#   system: a reply to a shared system number; kept, never shown in an inbox
VISIBILITIES = ("inbox", "held", "logged", "system")
# A free-text opt-out ("please stop texting me") flagged for staff (COMPLIANCE.md).
REVOCATION_STATES = ("flagged", "confirmed", "dismissed")

# A part's life: queued → sending (claimed by one job, the Vonage call in flight) → sent
# (Vonage accepted it) → delivered or failed (the receipt). `unknown`: the call's answer was
# lost (or the job died mid-call); its receipt settles it, otherwise staff can Resend.
PART_STATUSES = ("queued", "sending", "unknown", "sent", "delivered", "failed")
# Status only moves forward: a receipt that arrives late or twice never moves a part back.
PART_PROGRESS = {
    "queued": 0,
    "sending": 1,
    "unknown": 2,
    "sent": 3,
    "failed": 4,
    "delivered": 4,
}
# A message shows the worst of its parts' statuses (failed worst, delivered best).
WORST_FIRST = ("failed", "unknown", "queued", "sending", "sent", "delivered")


class Message(db.Model):
    """One message between the business and a client, on one channel, in one direction."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"))
    channel: Mapped[str] = mapped_column(String(8))  # CHANNELS
    direction: Mapped[str] = mapped_column(String(8))  # DIRECTIONS
    kind: Mapped[str] = mapped_column(String(16))  # KINDS
    body: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(String(254))  # E.164, short code, alphanumeric or email
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # worst of its parts
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # None: Twoway itself
    visibility: Mapped[str] = mapped_column(String(8), default="inbox")  # VISIBILITIES
    # Inbound: a long text whose parts did not all arrive before the time-out.
    incomplete: Mapped[bool] = mapped_column(Boolean, default=False)
    # Inbound: the compliance keyword it was ("stop", "start", "help"), if it was one.
    keyword: Mapped[str | None] = mapped_column(String(8))
    revocation: Mapped[str | None] = mapped_column(String(16))  # REVOCATION_STATES
    # Outbound: the inbound text this is Twoway's automatic answer to (a STOP confirmation,
    # HELP, "Do not reply"). Unique: a text is answered at most once, however often it arrives.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), unique=True)
    # Outbound automatic messages: which one it is (a key of `app.models.booking.AUTO_EVENTS`,
    # or another automatic purpose such as a staff alert) and the appointment it is about.
    auto_event: Mapped[str | None] = mapped_column(String(24))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parts: Mapped[list[MessagePart]] = relationship(
        back_populates="message", order_by="MessagePart.index", cascade="all, delete-orphan"
    )
    sent_by = relationship("User")

    __table_args__ = (
        Index(
            "ix_message_business_id_client_id_created_at", "business_id", "client_id", "created_at"
        ),
        Index("ix_message_client_id", "client_id"),
        # A reply to a shared system number: who last texted this person from it (inbound
        # routing, and the once-a-day "Do not reply" answer), across all businesses.
        Index("ix_message_recipient_created_at", "recipient", "created_at"),
    )


class MessagePart(db.Model):
    """One SMS of a text message: one Vonage call, one receipt, one text charged."""

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    index: Mapped[int] = mapped_column()  # 0-based position in the message
    text: Mapped[str] = mapped_column(Text)
    unicode: Mapped[bool] = mapped_column(Boolean, default=False)
    # Sent to Vonage as client-ref and echoed in the receipt: ties a receipt to this part even
    # when the send call's answer was lost. A Resend gives the part a new one.
    client_ref: Mapped[str] = mapped_column(String(64), unique=True)
    vonage_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # PART_STATUSES
    err_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)  # plain English, shown to staff
    attempts: Mapped[int] = mapped_column(default=0)  # calls to Vonage made for it
    failures: Mapped[int] = mapped_column(default=0)  # outages/5xx in a row (not throttling)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it went `sending`
    # Where the text it cost came from ("allowance" of `charged_month`, or "purchased"); None
    # on unlimited plans. `refunded`: given back because Vonage refused the part.
    charged_from: Mapped[str | None] = mapped_column(String(16))
    charged_month: Mapped[str | None] = mapped_column(String(7))
    refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship(back_populates="parts")

    __table_args__ = (
        Index("uq_message_part_message_id_index", "message_id", "index", unique=True),
        Index("ix_message_part_status_claimed_at", "status", "claimed_at"),
    )


class TextBalance(db.Model):
    """A business's texts left: this month's allowance (lapses at the end of the month in the
    business's time zone) and purchased texts (never expire). Changed only by atomic
    conditional UPDATEs, so concurrent sends can never take it below zero."""

    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), primary_key=True)
    allowance_month: Mapped[str] = mapped_column(String(7))  # "2027-01", in the business's zone
    allowance_left: Mapped[int] = mapped_column(default=0)
    purchased_left: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("allowance_left >= 0", name="allowance_not_negative"),
        CheckConstraint("purchased_left >= 0", name="purchased_not_negative"),
    )


class TextLedgerEntry(db.Model):
    """One change to a balance: texts bought, charged for a message, or refunded."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    reason: Mapped[str] = mapped_column(String(16))  # purchase | send | refund
    allowance_change: Mapped[int] = mapped_column(default=0)
    purchased_change: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_text_ledger_entry_business_id_created_at", "business_id", "created_at"),
    )
