"""Countries and time zones a business can choose at sign-up."""

from __future__ import annotations

import zoneinfo
from functools import cache

# Countries Twoway sells in. Two-way texting is offered only in the US and Canada.
COUNTRIES: dict[str, str] = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "IE": "Ireland",
    "AU": "Australia",
    "NZ": "New Zealand",
    "DE": "Germany",
    "FR": "France",
    "ES": "Spain",
    "NL": "Netherlands",
}
TWO_WAY_COUNTRIES = ("US", "CA")


@cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name, sorted (the sign-up and settings forms offer these)."""
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


def is_time_zone(name: str) -> bool:
    return name in time_zones()
