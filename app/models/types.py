"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind the app stores)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime, on SQLite
    (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


MAX_ROW_ID = 2**31 - 1
"""The largest id a row can have: every id column is an `integer` (32 bits, signed, on
PostgreSQL), so a larger number can name no row, and handed to the database it is an error
(PostgreSQL: integer out of range; SQLite: Python int too large) rather than "no such row"."""


def is_row_id(value: object) -> bool:
    """True when `value` is a number an id column can hold (1 to MAX_ROW_ID): the one check
    for ids from URLs, forms and query strings before they reach a query."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID
