"""Clients in a real browser on a phone: live search by phone digits, the card, merging."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Client
from app.services import clients

pytestmark = pytest.mark.e2e


def test_on_a_phone_staff_find_a_client_by_part_of_their_number_open_the_card_and_merge(
    app, make_business, phone, sign_in
):
    business = make_business()
    with app.app_context():
        for name, number in [
            ("Ada Lovelace", "5550101234"),
            ("Grace Hopper", "5550109876"),
            ("Alan Turing", "5550105555"),
        ]:
            clients.create_client(
                business["id"], "US", clients.ClientDetails(name=name, phones=[number])
            )
        clients.create_client(
            business["id"],
            "US",
            clients.ClientDetails(name="Ada (new number)", phones=["5550107777"]),
            source="inbound_text",
            is_lead=True,
        )
    sign_in(phone, business["owner"][1])

    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    expect(phone).to_have_url(re.compile(r"/clients$"))
    phone.wait_for_load_state()  # htmx has wired up the search box: typing now searches live
    search = phone.get_by_role("searchbox", name="Search clients")
    search.fill("010-12")  # typed as people type it, part of (555) 010-1234
    results = phone.locator("#client-results")
    expect(results.get_by_role("link")).to_have_count(1)
    expect(results).to_contain_text("Ada Lovelace")
    assert "q=010-12" in phone.url  # the search is in the address: back and share work
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360

    results.get_by_role("link", name="Ada Lovelace").click()
    expect(phone.get_by_role("heading", level=1, name="Ada Lovelace")).to_be_visible()

    phone.get_by_role("link", name="Merge").click()
    expect(phone).to_have_url(re.compile(r"/merge$"))
    phone.wait_for_load_state()
    phone.get_by_role("searchbox", name="Search clients").fill("new number")
    phone.locator("#merge-candidates").get_by_role("link", name="Ada (new number)").click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("Merge")
    expect(phone.locator(".merge-preview")).to_contain_text("(555) 010-7777")
    phone.get_by_role("button", name="Merge the two cards").click()

    expect(phone.get_by_role("heading", level=1, name="Ada Lovelace")).to_be_visible()
    phone.get_by_role("tab", name="Details").click()
    expect(phone.locator(".details")).to_contain_text("(555) 010-1234")
    expect(phone.locator(".details")).to_contain_text("(555) 010-7777")
    with app.app_context():
        merged = db.session.execute(
            db.select(Client).filter_by(name="Ada (new number)")
        ).scalar_one()
        assert merged.merged_into_id is not None
