"""The profile's Alerts section on a 360 px phone: a staff member adds their mobile number and
chooses texts for new bookings; a bad number is refused with the reason, nothing saved."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

PHONE_WIDTH = 360


def assert_fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE_WIDTH


def test_a_staff_member_chooses_text_alerts_for_new_bookings_on_a_phone(
    phone: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    owner = make_business()["owner"]
    sign_in(phone, owner[1])
    phone.goto("/settings/profile")
    alerts = phone.locator("#alerts")
    expect(alerts.get_by_role("heading", name="Alerts")).to_be_visible()
    assert_fits_the_phone(phone)
    bookings = alerts.get_by_role("group", name="New bookings")
    expect(bookings.get_by_label("In the app and push", exact=True)).to_be_checked()
    expect(bookings.get_by_label("Text", exact=True)).not_to_be_checked()

    bookings.get_by_label("Text", exact=True).check()
    alerts.get_by_label("Your mobile number").fill("555 12")
    alerts.get_by_role("button", name="Save alerts").tap()
    expect(phone.get_by_role("alert")).to_contain_text("isn't a complete phone number")
    assert_fits_the_phone(phone)

    alerts.get_by_label("Your mobile number").fill("(555) 123-0001")
    alerts.get_by_role("button", name="Save alerts").tap()
    expect(phone.get_by_role("status")).to_have_text("Your alerts are saved.")
    expect(alerts.get_by_label("Your mobile number")).to_have_value("(555) 123-0001")
    expect(
        alerts.get_by_role("group", name="New bookings").get_by_label("Text", exact=True)
    ).to_be_checked()
    assert_fits_the_phone(phone)
