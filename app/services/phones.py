"""Phone numbers: parsed with `phonenumbers`, stored in E.164, shown in national format."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone

from app.services.errors import ServiceError
from app.services.text_input import single_line

_SHORT_CODE = re.compile(r"^\d{3,8}$")


def normalise_phone(raw: str, country: str) -> str:
    """The number in E.164 ("+15550101234"), reading national formats with the business's
    country. Accepts any number whose length fits its country's plan (phonenumbers'
    "possible" check): stricter validity rules refuse the fictional 555 numbers used in demos,
    and the carrier is the final judge at send time. Raises ServiceError with a plain reason."""
    text = single_line(raw or "")  # what the person saw: no invisible characters
    if not text:
        raise ServiceError("Enter a phone number.", field="phone")
    if re.search(r"[A-Za-z]", text.replace("ext", "")):
        raise ServiceError(f"“{text}” isn't a phone number: it has letters in it.", field="phone")
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise ServiceError(f"“{text}” isn't a phone number we can read.", field="phone") from None
    if not phonenumbers.is_possible_number(number):
        raise ServiceError(
            f"“{text}” isn't a complete phone number: check the number of digits.",
            field="phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def store_sender(raw: str) -> str:
    """How an inbound sender is stored: E.164 for phone numbers (Vonage sends them without
    the +), short codes and alphanumeric senders exactly as received."""
    text = raw.strip()
    if _SHORT_CODE.match(text) or not text.lstrip("+").isdigit():
        return text
    return "+" + text.lstrip("+")


@lru_cache(maxsize=8192)  # lists show the same numbers again and again; parsing isn't free
def display_phone(e164: str, business_country: str) -> str:
    """The number as the business writes it: national format at home, international abroad."""
    if not e164.startswith("+"):
        return e164  # a short code or alphanumeric sender
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    # National format for the business's own country code (all of +1 for the US and Canada).
    home = business_country in phonenumbers.region_codes_for_country_code(number.country_code)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def phone_search_digits(e164: str) -> str:
    """The digits a person might type to find this number: international and national."""
    digits = re.sub(r"\D", "", e164)
    try:
        number = phonenumbers.parse(e164, None)
        national = str(number.national_number)
    except phonenumbers.NumberParseException:
        national = ""
    return f"{digits} {national}".strip()


@lru_cache(maxsize=8192)
def time_zone_for_number(e164: str) -> str | None:
    """The IANA time zone a number's area code lies in ("+12125550101": America/New_York), or
    None when its prefix spans several zones (toll-free, a whole country) or is unknown."""
    if not e164.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    zones = set(timezone.time_zones_for_number(number)) - {timezone.UNKNOWN_TIMEZONE}
    return zones.pop() if len(zones) == 1 else None
