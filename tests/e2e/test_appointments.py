"""Appointments in a real browser: booked from the client card on a phone and seen on the
agenda (which also updates live when another booking comes in); on a desktop, the card's tab
following a change live, then rescheduled and cancelled from the appointment's page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Client, ClientPhone
from app.services import clients
from app.services.booking import appointments

pytestmark = pytest.mark.e2e
ZONE = ZoneInfo("America/New_York")  # make_business's zone


def _client(app, business, name: str, phone: str) -> int:
    with app.app_context():
        client = Client(business_id=business["id"], name=name)
        client.phones = [ClientPhone(business_id=business["id"], number=phone)]
        clients.refresh_search_text(client)
        db.session.add(client)
        db.session.commit()
        return client.id


def _tomorrow():
    return (datetime.now(UTC).astimezone(ZONE) + timedelta(days=1)).date()


def _at(day, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def test_on_a_phone_staff_book_from_the_client_card_and_see_it_on_the_agenda_live(
    app, make_business, live_server, phone, sign_in
):
    business = make_business("Bright Cuts", staff=("staff",))
    ada = _client(app, business, "Ada Lovelace", "+13105550101")  # a Los Angeles number
    grace = _client(app, business, "Grace Hopper", "+12125550102")
    tomorrow = _tomorrow()
    sign_in(phone, business["owner"][1])

    phone.goto(f"/clients/{ada}")
    phone.get_by_role("tab", name="Appointments").click()
    expect(phone.get_by_text("No appointments with Ada Lovelace yet.")).to_be_visible()
    phone.get_by_role("link", name="New appointment").click()
    expect(phone.get_by_role("heading", level=1, name="New appointment")).to_be_visible()
    phone.get_by_label("Service").fill("Colour and cut")
    phone.get_by_label("Date").fill(tomorrow.isoformat())
    phone.get_by_label("Time").fill("14:00")
    phone.get_by_label("Duration").select_option("90")
    phone.get_by_label("With").select_option(label="Staff 1")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360
    phone.get_by_role("button", name="Book appointment").click()

    expect(phone.get_by_role("heading", level=1)).to_have_text("Colour and cut · Ada Lovelace")
    summary = phone.locator("#appointment-summary")
    expect(summary).to_contain_text("2:00 – 3:30 PM")
    expect(summary).to_contain_text("11:00 AM their time (Los Angeles)")

    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Appointments").click()
    expect(phone.get_by_role("heading", level=1, name="Appointments")).to_be_visible()
    strip = phone.get_by_role("navigation", name="Week")
    if tomorrow.weekday() == 0:  # tomorrow starts next week's strip
        strip.get_by_role("link", name="Next week").click()
    strip.get_by_role("link", name=re.compile(r"^Tomorrow, 1 appointment")).click()
    expect(phone.get_by_role("heading", level=2, name="Tomorrow")).to_be_visible()
    rows = phone.locator(".appointment-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ada Lovelace")
    expect(rows.first).to_contain_text("Colour and cut")
    expect(rows.first).to_contain_text("with Staff 1")
    expect(rows.first).to_contain_text("Booked")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360

    # Someone else books Grace for earlier that day: the open agenda shows it without a reload.
    phone.wait_for_load_state()
    phone.evaluate("window.pageWasNotReloaded = true")
    with app.app_context():
        appointments.create_appointment(
            business["id"],
            client_id=grace,
            service="Beard trim",
            starts_at=_at(tomorrow, 9, 30),
            duration_minutes=30,
            user_id=business["staff"][0],
            now=datetime.now(UTC),
        )
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Grace Hopper")
    expect(rows.first).to_contain_text("9:30 – 10:00 AM")
    assert phone.evaluate("window.pageWasNotReloaded") is True


def test_on_a_desktop_staff_reschedule_then_cancel_an_appointment(
    app, make_business, live_server, desktop, sign_in
):
    business = make_business("Bright Cuts")
    ada = _client(app, business, "Ada Lovelace", "+12125550101")
    tomorrow = _tomorrow()
    with app.app_context():
        appointment_id = appointments.create_appointment(
            business["id"],
            client_id=ada,
            service="Haircut",
            starts_at=_at(tomorrow, 14),
            duration_minutes=60,
            user_id=business["owner"][0],
            now=datetime.now(UTC),
        ).id
    sign_in(desktop, business["owner"][1])

    # The client card's tab follows a change made elsewhere, live.
    desktop.goto(f"/clients/{ada}?tab=appointments")
    row = desktop.locator(f"#appointment-{appointment_id}")
    expect(row).to_contain_text("2:00 – 3:00 PM")
    desktop.wait_for_load_state()
    with app.app_context():
        appointments.reschedule(
            business["id"],
            appointment_id,
            starts_at=_at(tomorrow, 15),
            user_id=None,
            now=datetime.now(UTC),
        )
    expect(row).to_contain_text("3:00 – 4:00 PM")

    row.get_by_role("link").click()
    summary = desktop.locator("#appointment-summary")
    expect(summary).to_contain_text("3:00 – 4:00 PM")
    later = tomorrow + timedelta(days=1)
    form = desktop.locator("form", has=desktop.get_by_role("heading", name="Reschedule"))
    form.get_by_label("Date").fill(later.isoformat())
    form.get_by_label("Time").fill("16:30")
    form.get_by_label("Duration").select_option("45")
    form.get_by_role("button", name="Reschedule").click()
    expect(desktop.get_by_text("Rescheduled.")).to_be_visible()
    expect(summary).to_contain_text(f"{later:%a}, {later:%b} {later.day}, {later.year}")
    expect(summary).to_contain_text("4:30 – 5:15 PM")

    confirm = desktop.get_by_role("button", name="Yes, cancel it")
    expect(confirm).to_be_hidden()  # cancelling asks first
    desktop.get_by_text("Cancel appointment…").click()
    confirm.click()
    expect(desktop.get_by_text("Cancelled.", exact=True)).to_be_visible()
    expect(summary.locator(".appointment-state")).to_have_text("Cancelled")
    expect(desktop.get_by_role("button", name="Reschedule")).to_have_count(0)

    desktop.locator("main").get_by_role("link", name="Appointments").click()  # to its day
    row = desktop.locator(f"#appointment-{appointment_id}")
    expect(row).to_contain_text("Cancelled")
