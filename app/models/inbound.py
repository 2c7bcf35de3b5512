"""Inbound SMS as Vonage delivered them, before (and after) they became messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

# What became of an inbound SMS once handled.
#   message:        it is (part of) a Message
#   unknown_number: sent to a number that is no one's; logged only
#   no_business:    a reply to a system number from someone no business has texted from it
OUTCOMES = ("message", "unknown_number", "no_business")


class InboundPart(db.Model):
    """One inbound SMS webhook: a whole text, or one part of a long (concatenated) one. Stored
    once per Vonage `messageId`, however often Vonage retries it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    vonage_message_id: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str] = mapped_column(String(32))  # E.164, short code or alphanumeric
    to_number: Mapped[str] = mapped_column(String(32))  # E.164: one of our numbers, we hope
    text: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))  # text | unicode | binary
    concat_ref: Mapped[str | None] = mapped_column(String(32))
    concat_total: Mapped[int | None] = mapped_column()
    concat_part: Mapped[int | None] = mapped_column()  # from 1
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # Vonage's message-timestamp
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # OUTCOMES
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), index=True)

    __table_args__ = (
        Index("ix_inbound_part_concat", "to_number", "sender", "concat_ref"),
        Index("ix_inbound_part_handled_at_received_at", "handled_at", "received_at"),
    )
