"""Template filters: times in the business's time zone, phone numbers in its format."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, g
from flask_login import current_user

from app.models.types import utcnow
from app.services.phones import display_phone


def _business() -> tuple[str, str]:
    """The signed-in business's (country, time zone), read once per request: a list of 25
    clients formats 25 numbers, and every look at `current_user` costs a proxy lookup."""
    if "twoway_business_locale" not in g:
        if current_user and current_user.is_authenticated:
            business = current_user.business
            g.twoway_business_locale = (business.country, business.time_zone)
        else:
            g.twoway_business_locale = ("US", "UTC")
    return g.twoway_business_locale


def _business_zone() -> ZoneInfo:
    return ZoneInfo(_business()[1])


def local_datetime(value: datetime | None) -> str:
    """“Mar 4, 2026, 3:07 PM” in the business's time zone."""
    if value is None:
        return ""
    local = value.astimezone(_business_zone())
    return f"{local:%b} {local.day}, {local.year}, {local:%I:%M %p}".replace(" 0", " ")


def short_datetime(value: datetime | None, now: datetime | None = None) -> str:
    """How a list of conversations dates its rows, in the business's time zone: “3:07 PM”
    today, “Yesterday”, “Mar 4” this year, “Mar 4, 2025” before."""
    if value is None:
        return ""
    zone = _business_zone()
    local = value.astimezone(zone)
    today = (now or utcnow()).astimezone(zone).date()
    if local.date() == today:
        return f"{local:%I:%M %p}".lstrip("0")
    if local.date() == today - timedelta(days=1):
        return "Yesterday"
    if local.year == today.year:
        return f"{local:%b} {local.day}"
    return f"{local:%b} {local.day}, {local.year}"


def initial(name: str) -> str:
    """The letter an avatar shows: the name's first letter, upper-cased; “#” for a
    name with neither (a lead still named after its number starts with “(” or “+”)."""
    for character in name:
        if character.isalpha():
            return character.upper()
    return "#"


def local_date(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(_business_zone())
    return f"{local:%b} {local.day}, {local.year}"


def phone(number: str) -> str:
    return display_phone(number, _business()[0])


def register(app: Flask) -> None:
    from app.services.booking.reminders import reminder_status

    app.add_template_global(reminder_status)
    app.add_template_filter(local_datetime)
    app.add_template_filter(local_date)
    app.add_template_filter(short_datetime)
    app.add_template_filter(initial)
    app.add_template_filter(phone)
