"""Two-way texting in a real browser on a phone: the owner gets a number of their own."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.services import texting
from tests.texting_helpers import complete_business_info, use_sandbox

pytestmark = pytest.mark.e2e


def test_on_a_phone_an_owner_activates_two_way_texting_and_sees_the_number_and_the_banner(
    app, make_business, sandbox, live_server, phone, sign_in
):
    use_sandbox(app, sandbox)
    business = make_business("Bright Smile Dental")
    complete_business_info(app, business["id"])
    sign_in(phone, business["owner"][1])

    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    phone.get_by_role("link", name="Auto Client Messages and SMS").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Auto Client Messages and SMS")
    expect(phone.get_by_role("button", name="Get two-way texting")).to_be_hidden()
    phone.get_by_text("Two-way texting", exact=True).click()  # choosing it shows the button
    phone.evaluate("window.pageWasNotReloaded = true")
    phone.get_by_role("button", name="Get two-way texting").click()

    number = phone.locator("#dedicated-number")
    expect(number).to_be_visible()  # bought by the job, shown without a reload
    banner = phone.locator("#verification-banner")
    expect(banner).to_contain_text("is being verified")
    assert phone.evaluate("window.pageWasNotReloaded") is True
    with app.app_context():
        held = texting.held_number(business["id"])
        shown = number.inner_text()
        assert held.status == "active" and shown.replace(" ", "") in (
            f"({held.number[2:5]}){held.number[5:8]}-{held.number[8:]}"
        )
        db.session.remove()
    expect(phone.locator("#two-way-texting")).to_contain_text("Verification pending")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360

    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox").click()
    expect(phone.locator("#verification-banner")).to_contain_text("is being verified")
