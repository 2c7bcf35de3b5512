"""The inbox on a phone: a reply sent from the phone simulator (the sandbox delivering a signed
inbound webhook to the live server, as Vonage would) appears live in the list and the attention
count in the navigation goes up, without a reload."""

from __future__ import annotations

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


def _point_number_at(sandbox, number: str, url: str) -> None:
    """The number was bought before the live server had a port: point its inbound webhook at
    the live server, as updating the number in Vonage's dashboard would."""
    with sandbox.state.lock:
        sandbox.state.owned[number.lstrip("+")]["moHttpUrl"] = url


def test_on_a_phone_a_reply_from_the_simulator_appears_live_and_the_count_goes_up(
    app, sandbox, texting_business, live_server, phone, sign_in
):
    _point_number_at(sandbox, texting_business["number"], live_server.url + INBOUND_PATH)
    sandbox.configure(webhook_method="POST")
    sign_in(phone, texting_business["owner"][1])
    phone.wait_for_load_state()
    expect(phone.get_by_role("heading", name="All caught up")).to_be_visible()
    count = phone.locator("#nav-attention-count")
    expect(count).to_be_empty()
    phone.evaluate("window.pageWasNotReloaded = true")

    sandbox.send_inbound(SAM, texting_business["number"], "Can I come at 4 instead? <b>thx</b>")

    row = phone.locator(".inbox-row").first
    expect(row).to_contain_text("Sam Client", timeout=20_000)
    expect(row).to_contain_text("Can I come at 4 instead? <b>thx</b>")
    expect(row).to_contain_text("New text")
    expect(row).to_have_class("inbox-row is-unread needs-attention")
    expect(count.locator(".count-number")).to_have_text("1")
    expect(phone.locator(".tab-count .count-number")).to_have_text("1")
    assert phone.evaluate("window.pageWasNotReloaded") is True
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360

    # Mark handled: the row leaves the folder and the count goes back down, live.
    row.get_by_role("button", name="Mark handled").click()
    expect(phone.get_by_role("heading", name="All caught up")).to_be_visible()
    expect(count).to_be_empty()
    assert phone.evaluate("window.pageWasNotReloaded") is True
