"""Alerts to a business's owner that may go at most once a day (issue 11: "the owner gets one
alert a day, not one per text")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

# What a daily alert is about.
DAILY_ALERT_KINDS = {"out_of_texts": "Automatic texts not sent: out of texts"}


class DailyAlert(db.Model):
    """One alert of one kind to one business on one day (in the business's time zone). The
    primary key is the once-a-day rule: the first INSERT of the day wins, every later one
    (another text, another worker at the same moment) finds the row and alerts no one."""

    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # DAILY_ALERT_KINDS
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # "2027-01-31", local
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
