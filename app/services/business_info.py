"""Settings → Business info: the business's name, country, time zone, address and contact
details. The dedicated number's country and its toll-free verification come from here."""

from __future__ import annotations

from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from app.extensions import db
from app.models import Business
from app.models.texting import DedicatedNumber
from app.services.accounts import normalise_email
from app.services.errors import ServiceError
from app.services.phones import normalise_phone
from app.services.places import COUNTRIES, is_time_zone
from app.services.text_input import single_line

# What the carriers need for a toll-free verification, beyond the name and country.
VERIFICATION_FIELDS = {
    "street_address": "street address",
    "city": "city",
    "region": "state or province",
    "postal_code": "ZIP or postal code",
    "website": "website",
    "contact_name": "contact name",
    "contact_email": "contact email",
    "contact_phone": "contact phone",
}

_LIMITS = {
    "name": 120,
    "street_address": 200,
    "city": 100,
    "region": 100,
    "postal_code": 20,
    "website": 254,
    "contact_name": 120,
}


@dataclass
class BusinessInfo:
    """The form's values, as typed."""

    name: str = ""
    country: str = ""
    time_zone: str = ""
    street_address: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    website: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""

    @classmethod
    def of(cls, business: Business) -> BusinessInfo:
        """The business's stored details."""
        return cls(**{f.name: getattr(business, f.name) or "" for f in fields(cls)})


def missing_for_verification(business: Business) -> list[str]:
    """The details the verification needs that the business has not given, in plain words."""
    return [label for name, label in VERIFICATION_FIELDS.items() if not getattr(business, name)]


def normalise_website(raw: str) -> str:
    """A website as a full https:// address ("brightsmile.com" → "https://brightsmile.com").
    Raises ServiceError for something that is not one."""
    text = single_line(raw)
    if not text:
        return ""
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or "." not in host or " " in text:
        raise ServiceError(f"“{text}” isn't a website address.", field="website")
    return text


def update_business_info(business_id: int, info: BusinessInfo) -> Business:
    """Checks and stores the business's details. Raises ServiceError (nothing is changed)."""
    business = db.session.get(Business, business_id)
    if business is None:
        raise ServiceError("That business does not exist.")
    cleaned = {f.name: single_line(getattr(info, f.name) or "") for f in fields(BusinessInfo)}
    if not cleaned["name"]:
        raise ServiceError("Enter your business's name.", field="name")
    for name, limit in _LIMITS.items():
        if len(cleaned[name]) > limit:
            label = VERIFICATION_FIELDS.get(name, "the name")
            raise ServiceError(f"Shorten the {label}: at most {limit} characters.", field=name)
    if cleaned["country"] not in COUNTRIES:
        raise ServiceError("Choose your business's country.", field="country")
    if not is_time_zone(cleaned["time_zone"]):
        raise ServiceError("Choose your business's time zone.", field="time_zone")
    if cleaned["country"] != business.country:
        _check_country_can_change(business)
    cleaned["website"] = normalise_website(cleaned["website"])
    if cleaned["contact_email"]:
        try:
            cleaned["contact_email"] = normalise_email(cleaned["contact_email"])
        except ServiceError as error:
            raise ServiceError(error.message, field="contact_email") from None
    if cleaned["contact_phone"]:
        try:
            cleaned["contact_phone"] = normalise_phone(cleaned["contact_phone"], cleaned["country"])
        except ServiceError as error:
            raise ServiceError(error.message, field="contact_phone") from None
    for name, value in cleaned.items():
        setattr(business, name, value)
    db.session.commit()
    return business


def _check_country_can_change(business: Business) -> None:
    # The dedicated number is a toll-free number of the business's country: while the business
    # is using one, moving country would leave it texting from the wrong country's number.
    in_use = db.session.execute(
        db.select(DedicatedNumber.id).where(
            DedicatedNumber.business_id == business.id,
            DedicatedNumber.status.in_(("assigning", "active")),
        )
    ).first()
    if in_use:
        raise ServiceError(
            "Your texting number belongs to your current country. To move country, first "
            "turn two-way texting off in Settings → Auto Client Messages and SMS.",
            field="country",
        )
