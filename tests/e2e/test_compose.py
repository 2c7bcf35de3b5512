"""Composing a text on a phone: the live count, Send, and the bubble turning delivered as the
signed delivery receipts come back, without a reload."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.services import sending
from tests.sending_helpers import STATUS_PATH, give_dedicated_number, make_client
from tests.texting_helpers import complete_business_info, use_sandbox

pytestmark = pytest.mark.e2e

TEXT_200_WITH_EMOJI = ("Hi Sam, your appointment is confirmed for Tuesday at 3pm. " * 4)[
    :199
] + "😀"


@pytest.fixture
def texting_business(app, make_business, sandbox, run_jobs, monkeypatch):
    """Set up before the live server starts, so only this thread runs the setup's jobs."""
    use_sandbox(app, sandbox)
    monkeypatch.setattr(sending, "retry_delay", lambda failures: timedelta(0))
    business = make_business("Bright Smile Dental")
    complete_business_info(app, business["id"])
    business["number"] = give_dedicated_number(app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(app, business["id"])
    return business


def test_on_a_phone_a_200_character_text_with_an_emoji_is_3_texts_and_turns_delivered(
    app, sandbox, texting_business, live_server, phone, sign_in
):
    sandbox.configure(status_url=live_server.url + STATUS_PATH, webhook_method="POST")
    sign_in(phone, texting_business["owner"][1])
    phone.goto(f"/clients/{texting_business['client']}?tab=conversation")
    phone.wait_for_load_state()

    box = phone.get_by_label("Message")
    box.fill(TEXT_200_WITH_EMOJI)
    expect(phone.locator("#composer-count")).to_contain_text(
        "3 texts · 200 characters · Unicode because of 😀"
    )
    phone.evaluate("window.pageWasNotReloaded = true")
    phone.get_by_role("button", name="Send").click()

    bubble = phone.locator(".bubble-out").last
    expect(bubble).to_contain_text("Hi Sam, your appointment is confirmed")
    expect(bubble).to_contain_text("SMS · 3 parts")
    expect(phone.get_by_label("Message")).to_have_value("")
    expect(bubble.locator(".bubble-status")).to_have_text("Delivered", timeout=20_000)
    assert phone.evaluate("window.pageWasNotReloaded") is True
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360
