"""Signing up in a real browser: the account is made from the link in the emailed
confirmation (read here, as in the demo, at /dev/mail)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def _confirmation_path(page: Page) -> str:
    """The path of the newest confirmation link at /dev/mail, once the mail job has sent it."""
    link = page.locator('a[href*="/sign-up/confirm/"]')
    for _ in range(20):
        page.goto("/dev/mail")
        if link.count():
            return urlsplit(link.first.get_attribute("href") or "").path
        page.wait_for_timeout(250)
    raise AssertionError("no confirmation email at /dev/mail")


def test_on_a_phone_a_new_business_signs_up_and_opens_its_inbox_from_the_emailed_link(
    phone: Page,
) -> None:
    phone.goto("/sign-up")
    phone.get_by_label("Business name").fill("Glow Salon")
    phone.get_by_label("Your name").fill("Gloria")
    phone.get_by_label("Email").fill("gloria@example.com")
    phone.get_by_label("Password").fill("a-long-password")
    phone.get_by_role("button", name="Create account").click()
    expect(phone.get_by_role("heading", level=1, name="Check your email")).to_be_visible()

    phone.goto(_confirmation_path(phone))
    phone.get_by_role("button", name="Create the account").click()

    expect(phone.get_by_role("heading", level=1, name="Inbox")).to_be_visible()
    expect(phone.get_by_text("Welcome to Twoway, Gloria. Glow Salon is ready.")).to_be_visible()
