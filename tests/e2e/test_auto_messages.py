"""Settings → Auto messages in a real browser on a phone: edit a template, see its preview and
part count change live, save it, reset it to the default."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.services import message_templates
from app.services.booking import auto_messages

pytestmark = pytest.mark.e2e


def test_on_a_phone_an_owner_edits_previews_and_resets_an_automatic_message(
    app, make_business, live_server, phone, sign_in
):
    business = make_business("Bright Smile Dental")
    sign_in(phone, business["owner"][1])
    phone.goto("/settings/messages/sms")
    phone.get_by_role("link", name="Auto messages").click()
    editor = phone.locator("#auto-booking_confirmation")
    expect(editor.locator(".auto-preview-count")).to_have_text("103/160 · 1 text")

    template = "Hi {client_first_name}! See you soon at {business_name}. " + "Bring a friend. " * 8
    expected = message_templates.preview(template, business_name="Bright Smile Dental")
    assert expected.count == 2
    editor.get_by_label("Message").fill(template)
    expect(editor.locator(".auto-preview-text")).to_contain_text(
        "Hi Sam! See you soon at Bright Smile Dental. Bring"
    )
    expect(editor.locator(".auto-preview-count")).to_have_text(expected.split.summary)
    editor.get_by_role("button", name="Save").click()
    editor = phone.locator("#auto-booking_confirmation")
    expect(editor).to_contain_text("Booking confirmation: saved.")

    editor.get_by_role("button", name="Reset to default").click()
    editor = phone.locator("#auto-booking_confirmation")
    expect(editor).to_contain_text("default text restored")
    expect(editor.get_by_label("Message")).to_have_value(
        auto_messages.DEFAULT_TEMPLATES["booking_confirmation"]
    )
    expect(editor.locator(".auto-preview-count")).to_have_text("103/160 · 1 text")
    # The reminder's confirm options are hidden on the shared number, with the reason.
    expect(phone.locator("#auto-reminder .auto-confirm-unavailable")).to_be_visible()
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360
