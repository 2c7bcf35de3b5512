"""Template filters: times in the business's time zone, phone numbers in its format."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask
from flask_login import current_user

from app.services.phones import display_phone


def _business_zone() -> ZoneInfo:
    if current_user and current_user.is_authenticated:
        return ZoneInfo(current_user.business.time_zone)
    return ZoneInfo("UTC")


def local_datetime(value: datetime | None) -> str:
    """“Mar 4, 2026, 3:07 PM” in the business's time zone."""
    if value is None:
        return ""
    local = value.astimezone(_business_zone())
    return f"{local:%b} {local.day}, {local.year}, {local:%I:%M %p}".replace(" 0", " ")


def local_date(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(_business_zone())
    return f"{local:%b} {local.day}, {local.year}"


def phone(number: str) -> str:
    country = current_user.business.country if current_user.is_authenticated else "US"
    return display_phone(number, country)


def register(app: Flask) -> None:
    app.add_template_filter(local_datetime)
    app.add_template_filter(local_date)
    app.add_template_filter(phone)
