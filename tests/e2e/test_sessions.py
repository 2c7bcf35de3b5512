"""Sessions that end reach the pages open on them, in a real browser: a password changed on a
phone sends the other device's open page to sign-in, so do "Sign out other devices", signing
out in another tab and being removed from the team; a role change re-renders the open page
with the new role's rights. The profile page fits a 360 px phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

PHONE_WIDTH = 360
NEW_PASSWORD = "a-brand-new-password"


def heading(page: Page, name: str):
    return page.get_by_role("heading", level=1, name=name, exact=True)


def open_live(page: Page, path: str) -> None:
    """Opens `path` and waits until its live event stream is open."""
    with page.expect_response(lambda r: urlsplit(r.url).path == "/events" and r.ok):
        page.goto(path)


def assert_fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE_WIDTH


def test_a_password_changed_on_a_phone_sends_the_other_devices_open_page_to_sign_in(
    phone: Page, desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    owner = make_business()["owner"]
    sign_in(desktop, owner[1])
    open_live(desktop, "/inbox")
    sign_in(phone, owner[1])

    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").tap()
    phone.get_by_role("link", name=re.compile(r"^Profile\b")).tap()
    expect(heading(phone, "Profile")).to_be_visible()
    assert_fits_the_phone(phone)
    phone.get_by_label("Current password").fill(PASSWORD)
    phone.get_by_label("New password").fill(NEW_PASSWORD)
    phone.get_by_role("button", name="Change password").tap()

    expect(phone.get_by_role("status")).to_contain_text("Your password is changed")
    expect(heading(phone, "Profile")).to_be_visible()
    assert_fits_the_phone(phone)
    expect(heading(desktop, "Sign in")).to_be_visible()  # without anyone touching the desktop
    phone.goto("/inbox")
    expect(heading(phone, "Inbox")).to_be_visible()  # the phone stays signed in


def test_sign_out_other_devices_sends_their_open_pages_to_sign_in(
    phone: Page, desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    owner = make_business()["owner"]
    sign_in(desktop, owner[1])
    open_live(desktop, "/clients")
    sign_in(phone, owner[1])
    phone.goto("/settings/profile")
    expect(phone.get_by_text("this device")).to_be_visible()
    phone.get_by_role("button", name="Sign out other devices").tap()
    expect(phone.get_by_role("status")).to_have_text("You're signed out on every other device.")
    assert_fits_the_phone(phone)
    expect(heading(desktop, "Sign in")).to_be_visible()


def test_signing_out_in_one_tab_sends_the_other_tab_to_sign_in(
    desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    owner = make_business()["owner"]
    sign_in(desktop, owner[1])
    other_tab = desktop.context.new_page()
    open_live(other_tab, "/clients")
    desktop.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(desktop.get_by_role("status")).to_have_text("You're signed out.")
    expect(heading(other_tab, "Sign in")).to_be_visible()
    other_tab.close()


def test_a_removed_members_open_page_goes_to_sign_in(
    phone: Page, desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    business = make_business(staff=("staff",))
    sign_in(phone, business["staff"][1])
    open_live(phone, "/inbox")
    sign_in(desktop, business["owner"][1])
    desktop.goto("/settings/team")
    desktop.locator(f"#member-{business['staff'][0]}").get_by_role("button", name="Remove").click()
    expect(desktop.get_by_role("status")).to_contain_text("no longer has access")
    expect(heading(phone, "Sign in")).to_be_visible()
    phone.goto("/inbox")
    expect(heading(phone, "Sign in")).to_be_visible()


def test_a_role_change_re_renders_the_members_open_page_with_the_new_rights(
    phone: Page, desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    business = make_business(staff=("staff",))
    sign_in(phone, business["staff"][1])
    open_live(phone, "/settings")
    team = phone.get_by_role("link", name=re.compile(r"^Team\b"))
    expect(team).to_have_count(0)
    sign_in(desktop, business["owner"][1])
    desktop.goto("/settings/team")
    row = desktop.locator(f"#member-{business['staff'][0]}")
    row.get_by_label(re.compile("^Role of")).select_option("admin")
    row.get_by_role("button", name="Save").click()
    expect(desktop.get_by_role("status")).to_contain_text("is now admin")
    expect(team).to_be_visible()  # the staff member's open Settings page, reloaded
    expect(heading(phone, "Settings")).to_be_visible()
