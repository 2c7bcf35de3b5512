"""The shared inbox: one conversation per client, whether it needs attention, and what each
staff member has read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.messages import Message
from app.models.types import UTCDateTime, utcnow


class Conversation(db.Model):
    """A business's conversation with one client: its latest activity, and whether it is in
    the folder Require your attention (shared by all staff: one of them handles it)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    last_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    last_inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    attention_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    __table_args__ = (
        UniqueConstraint("business_id", "client_id"),
        Index("ix_conversation_business_id_last_activity_at", "business_id", "last_activity_at"),
        Index(
            "ix_conversation_business_id_needs_attention_last_activity_at",
            "business_id",
            "needs_attention",
            "last_activity_at",
        ),
    )


class ConversationRead(db.Model):
    """How far one staff member has read a conversation."""

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    last_read_message_id: Mapped[int | None] = mapped_column()
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The inbox's search finds conversations by the text of their messages: a trigram index on
# PostgreSQL serves `body ILIKE '%words%'` (a plain index on SQLite, where it goes unused). It
# is declared here, beside the inbox that needs it, and created by the inbox's migration.
Index(
    "ix_message_body_trgm",
    Message.body,
    postgresql_using="gin",
    postgresql_ops={"body": "gin_trgm_ops"},
)
