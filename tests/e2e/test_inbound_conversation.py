"""The conversation on a phone, as texts come in: a reply from the phone simulator appears in
the open conversation live, shown as text; a "please stop texting me" offers Confirm, and one
tap opts the client out and shows the one confirmation, without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.sending_helpers import give_dedicated_number, make_client
from tests.texting_helpers import complete_business_info, use_sandbox

pytestmark = pytest.mark.e2e

INBOUND_PATH = "/webhooks/vonage/inbound"
SAM = "+15557654321"


@pytest.fixture
def texting_business(app, make_business, sandbox, run_jobs):
    """Set up before the live server starts, so only this thread runs the setup's jobs."""
    use_sandbox(app, sandbox)
    business = make_business("Bright Smile Dental")
    complete_business_info(app, business["id"])
    business["number"] = give_dedicated_number(app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(app, business["id"], phone=SAM)
    return business


def test_on_a_phone_a_stop_request_appears_live_and_one_tap_confirms_the_opt_out(
    app, sandbox, texting_business, live_server, phone, sign_in
):
    number = texting_business["number"]
    with sandbox.state.lock:  # bought before the live server had a port: point it there
        sandbox.state.owned[number.lstrip("+")]["moHttpUrl"] = live_server.url + INBOUND_PATH
    sign_in(phone, texting_business["owner"][1])
    phone.goto(f"/clients/{texting_business['client']}?tab=conversation")
    expect(phone.get_by_role("heading", name="No messages with Sam Client yet")).to_be_visible()
    phone.evaluate("window.pageWasNotReloaded = true")

    sandbox.send_inbound(SAM, number, "<i>Please</i> stop texting me")

    bubble = phone.locator(".bubble-in").first
    expect(bubble).to_contain_text("<i>Please</i> stop texting me", timeout=20_000)
    expect(bubble).to_contain_text("This looks like a request to stop texts")
    bubble.get_by_role("button", name="Confirm opt-out").click()
    expect(phone.locator(".bubble-in").first).to_contain_text("Opt-out confirmed")
    answer = phone.locator(".bubble-out").first
    expect(answer).to_contain_text("You're unsubscribed from Bright Smile Dental", timeout=20_000)
    expect(answer.locator(".bubble-status")).to_have_text(re.compile("Sent|Delivered"))
    expect(phone.locator("#client-badges")).to_contain_text("Opted out of texts")
    assert phone.evaluate("window.pageWasNotReloaded") is True
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360
    assert sandbox.snapshot()["messages"][0]["text"].startswith("You're unsubscribed")
