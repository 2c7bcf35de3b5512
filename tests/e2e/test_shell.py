"""The signed-in shell in a real browser: a bottom bar on a phone, a side bar on a desktop."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

# (the nav link's accessible name, the page's h1). "Quick actions" is the + button's label.
SECTIONS = [
    ("Inbox", "Inbox"),
    ("Clients", "Clients"),
    ("Quick actions", "Quick actions"),
    ("Settings", "Settings"),
]
PHONE_WIDTH, PHONE_HEIGHT = 360, 740
DESKTOP_WIDTH, DESKTOP_HEIGHT = 1280, 800
THUMB_PX = 44  # the smallest comfortable tap target


def main_navigation(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def heading(page: Page, name: str) -> Locator:
    return page.get_by_role("heading", level=1, name=name, exact=True)


def horizontal_scroll_width(page: Page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def assert_bottom_bar_fits_the_phone(page: Page) -> None:
    """The navigation is a bar docked to the bottom of the 360×740 screen, with thumb-sized
    items, no sideways scrolling, and nothing of the page hidden under it."""
    page.wait_for_load_state()  # app.css applied: the layout measured is the one people see
    nav = main_navigation(page)
    expect(nav).to_be_visible()
    box = nav.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, box
    assert abs(box["y"] + box["height"] - PHONE_HEIGHT) <= 1, f"not at the bottom: {box}"
    assert box["height"] <= PHONE_HEIGHT / 5, f"a bar, not a panel: {box}"
    assert horizontal_scroll_width(page) <= PHONE_WIDTH

    for name, _ in SECTIONS:
        item = nav.get_by_role("link", name=name, exact=True).bounding_box()
        assert item is not None, name
        assert item["width"] >= THUMB_PX and item["height"] >= THUMB_PX, (name, item)
        assert item["x"] >= 0 and item["x"] + item["width"] <= PHONE_WIDTH, (name, item)

    # Scrolled to the end, the page's last content sits above the bar, not under it.
    page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    last = page.locator("main > *:visible").last.bounding_box()
    bar = nav.bounding_box()
    assert last is not None and bar is not None
    assert last["y"] + last["height"] <= bar["y"] + 1, f"content under the bar: {last} {bar}"
    page.evaluate("window.scrollTo(0, 0)")


def assert_side_bar_beside_the_content(page: Page) -> None:
    """The navigation runs down the left edge of the 1280×800 window, the page beside it."""
    page.wait_for_load_state()  # app.css applied: the layout measured is the one people see
    nav = main_navigation(page)
    expect(nav).to_be_visible()
    box = nav.bounding_box()
    page_heading = page.get_by_role("heading", level=1).bounding_box()
    assert box is not None and page_heading is not None
    assert box["x"] == 0 and box["y"] == 0, f"not on the left edge: {box}"
    assert box["height"] >= DESKTOP_HEIGHT - 1, f"not full height: {box}"
    assert box["width"] <= DESKTOP_WIDTH / 4, f"a side bar, not a panel: {box}"
    assert page_heading["x"] >= box["x"] + box["width"], "content overlaps the side bar"
    assert horizontal_scroll_width(page) <= DESKTOP_WIDTH


def test_phone_user_signs_in_and_reaches_each_section_from_the_bottom_bar(
    phone: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    business = make_business("Harbor Plumbing")
    sign_in(phone, business["owner"][1])
    assert_bottom_bar_fits_the_phone(phone)

    nav = main_navigation(phone)
    for link_name, page_heading in SECTIONS:
        link = nav.get_by_role("link", name=link_name, exact=True)
        link.tap()
        expect(heading(phone, page_heading)).to_be_visible()
        expect(link).to_have_attribute("aria-current", "page")
        assert_bottom_bar_fits_the_phone(phone)

    phone.get_by_role("link", name=re.compile(r"^Team\b")).tap()
    expect(heading(phone, "Team")).to_be_visible()
    expect(phone.get_by_text(business["owner"][1])).to_be_visible()
    assert_bottom_bar_fits_the_phone(phone)


def test_desktop_user_signs_in_and_reaches_each_section_from_the_side_bar(
    desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    business = make_business("Harbor Plumbing")
    sign_in(desktop, business["owner"][1])
    nav = main_navigation(desktop)
    expect(nav.get_by_text("Harbor Plumbing")).to_be_visible()
    assert_side_bar_beside_the_content(desktop)

    for link_name, page_heading in SECTIONS:
        link = nav.get_by_role("link", name=link_name, exact=True)
        link.click()
        expect(heading(desktop, page_heading)).to_be_visible()
        expect(link).to_have_attribute("aria-current", "page")
        assert_side_bar_beside_the_content(desktop)

    desktop.get_by_role("link", name=re.compile(r"^Team\b")).click()
    expect(heading(desktop, "Team")).to_be_visible()
    assert_side_bar_beside_the_content(desktop)


def assert_signed_out(page: Page) -> None:
    expect(heading(page, "Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You're signed out.")
    page.goto("/inbox")
    expect(heading(page, "Sign in")).to_be_visible()
    assert page.url.split("?")[0].endswith("/sign-in"), page.url


def test_desktop_user_signs_out_from_the_side_bar_and_the_inbox_is_closed_to_them(
    desktop: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    business = make_business()
    sign_in(desktop, business["owner"][1])
    main_navigation(desktop).get_by_role("button", name="Sign out").click()
    assert_signed_out(desktop)


def test_phone_user_can_sign_out_from_settings(
    phone: Page, make_business: Callable[..., dict], sign_in: Callable[..., None]
) -> None:
    business = make_business()
    sign_in(phone, business["owner"][1])
    main_navigation(phone).get_by_role("link", name="Settings", exact=True).tap()
    expect(heading(phone, "Settings")).to_be_visible()
    # The page's own button: until app.css has loaded, the side bar's (hidden on a phone) shows.
    phone.get_by_role("main").get_by_role("button", name="Sign out").tap()
    assert_signed_out(phone)
