"""Clients of a business: their phone numbers, emails, notes and tags."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

SOURCES = {
    "staff": "Added by staff",
    "import": "Imported",
    "inbound_text": "Texted your number",
}


class Client(db.Model):
    """A person the business serves (or a lead who texted first)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    name: Mapped[str] = mapped_column(String(120))
    sort_name: Mapped[str] = mapped_column(String(120), default="")  # lower-case name, for order
    source: Mapped[str] = mapped_column(String(16), default="staff")  # a key of SOURCES
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # overrides the number's zone
    # Lower-case name, emails and phone digits in one column, so one indexed LIKE finds a
    # client by any of them (a trigram index on PostgreSQL).
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # A client merged into another keeps its row, so its old URL leads to the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"))

    phones: Mapped[list[ClientPhone]] = relationship(
        back_populates="client",
        order_by="(ClientPhone.is_primary.desc(), ClientPhone.id)",
        cascade="all, delete-orphan",
    )
    emails: Mapped[list[ClientEmail]] = relationship(
        back_populates="client",
        order_by="(ClientEmail.is_primary.desc(), ClientEmail.id)",
        cascade="all, delete-orphan",
    )
    notes: Mapped[list[ClientNote]] = relationship(
        back_populates="client",
        order_by="ClientNote.created_at.desc()",
        cascade="all, delete-orphan",
    )
    tags: Mapped[list[ClientTag]] = relationship(
        back_populates="client",
        order_by="ClientTag.name",
        cascade="all, delete-orphan",
    )

    __table_args__ = (
        Index("ix_client_business_id_sort_name", "business_id", "sort_name", "id"),
        Index("ix_client_business_id_created_at", "business_id", "created_at"),
        Index(
            "ix_client_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    @property
    def primary_phone(self) -> ClientPhone | None:
        return self.phones[0] if self.phones else None

    @property
    def primary_email(self) -> ClientEmail | None:
        return self.emails[0] if self.emails else None


class ClientPhone(db.Model):
    """A phone number of a client. Within a business a number belongs to one client."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))  # E.164; short codes as received
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="phones")

    __table_args__ = (UniqueConstraint("business_id", "number"),)


class ClientEmail(db.Model):
    """An email address of a client."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))  # lower-case
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="emails")

    __table_args__ = (Index("ix_client_email_business_id_email", "business_id", "email"),)


class ClientNote(db.Model):
    """A note on a client's card, by staff, or by Twoway itself (a merge, an import)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(16), default="note")  # note | merge
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="notes")
    author = relationship("User")


class ClientTag(db.Model):
    """A short label on a client ("VIP", "new patient")."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))

    client: Mapped[Client] = relationship(back_populates="tags")

    __table_args__ = (UniqueConstraint("client_id", "name"),)


class OptOut(db.Model):
    """A phone number that opted out of a business's texts (STOP). It belongs to the business
    and the number, not to a client card, so it survives merges and new cards."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    number: Mapped[str] = mapped_column(String(32))
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("business_id", "number"),)


class ClientImport(db.Model):
    """A CSV import, run as a job; the row records its progress and its bad rows."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"))
    started_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    filename: Mapped[str] = mapped_column(String(255))
    csv_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list] = mapped_column(db.JSON, default=list)  # [{"line": 3, "reason": ...}]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
