"""Booking texts end to end on a phone (issue 11's journey): staff book from the client card,
the client's booking confirmation shows in the conversation, from the business's own verified
number; the reminder goes at its time (the clock moved by the test); and a "C" replied from the
phone simulator marks the appointment confirmed, live, on its open page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Appointment, AutoMessageSetting
from app.services import scheduling
from tests.sending_helpers import give_dedicated_number, make_client
from tests.texting_helpers import complete_business_info, use_sandbox

pytestmark = pytest.mark.e2e

INBOUND_PATH = "/webhooks/vonage/inbound"
SAM = "+15557654321"  # no single zone from its area code: the business's zone is the client's
ZONE = ZoneInfo("America/New_York")  # make_business's zone


@pytest.fixture
def booking_business(app, make_business, sandbox, run_jobs):
    """A verified dedicated number and reminders that ask to confirm, set up before the live
    server starts (so only this thread runs the setup's jobs)."""
    use_sandbox(app, sandbox)
    business = make_business("Bright Cuts")
    complete_business_info(app, business["id"])
    business["number"] = give_dedicated_number(app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(app, business["id"], phone=SAM)
    with app.app_context():
        db.session.add(
            AutoMessageSetting(
                business_id=business["id"],
                event="reminder",
                enabled=True,
                channel="text",
                reminder_hours=[24],
                ask_to_confirm=True,
            )
        )
        db.session.commit()
    return business


def test_on_a_phone_a_booking_texts_its_confirmation_then_its_reminder_and_a_c_confirms_it_live(
    app, sandbox, booking_business, live_server, phone, sign_in
):
    number = booking_business["number"]
    with sandbox.state.lock:  # bought before the live server had a port: point it there
        sandbox.state.owned[number.lstrip("+")]["moHttpUrl"] = live_server.url + INBOUND_PATH
    day = (datetime.now(UTC).astimezone(ZONE) + timedelta(days=2)).date()
    sign_in(phone, booking_business["owner"][1])

    phone.goto(f"/clients/{booking_business['client']}?tab=appointments")
    phone.get_by_role("link", name="New appointment").click()
    phone.get_by_label("Service").fill("Colour and cut")
    phone.get_by_label("Date").fill(day.isoformat())
    phone.get_by_label("Time").fill("14:00")
    phone.get_by_role("button", name="Book appointment").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Colour and cut · Sam Client")
    appointment_id = int(re.search(r"/appointments/(\d+)", phone.url).group(1))
    expect(phone.locator("#appointment-summary")).to_contain_text("Reminder 24 h before")

    # The confirmation: a booking text, from the business's own (verified) number.
    phone.goto(f"/clients/{booking_business['client']}?tab=conversation")
    confirmation = phone.locator(".bubble-out").filter(has_text="you're booked at Bright Cuts")
    expect(confirmation).to_contain_text("Booking confirmation")
    expect(confirmation).to_contain_text("from your number")
    expect(confirmation.locator(".bubble-status")).to_have_text(
        re.compile("Sent|Delivered"), timeout=20_000
    )
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360

    # A day later, 24 hours before the start, the dispatcher finds the reminder due.
    with app.app_context():
        starts_at = db.session.get(Appointment, appointment_id).starts_at
        assert scheduling.dispatch_due(now=starts_at - timedelta(hours=24, seconds=-1)) == 1
    reminder = phone.locator(".bubble-out").filter(has_text="Reminder from Bright Cuts")
    expect(reminder).to_contain_text("Reply C to confirm", timeout=20_000)
    expect(reminder.locator(".bubble-status")).to_have_text(
        re.compile("Sent|Delivered"), timeout=20_000
    )
    texts = [m["text"] for m in sandbox.snapshot()["messages"] if m["to"] == SAM.lstrip("+")]
    assert [t for t in texts if t.startswith("Reminder from Bright Cuts")] != []

    # Sam replies "C" from the phone: the open appointment page shows it confirmed, live.
    phone.goto(f"/appointments/{appointment_id}")
    summary = phone.locator("#appointment-summary")
    expect(summary).to_contain_text("Booked")
    phone.evaluate("window.pageWasNotReloaded = true")
    sandbox.send_inbound(SAM, number, "c")
    expect(summary).to_contain_text("Confirmed", timeout=20_000)
    expect(summary).to_contain_text("by the client’s reply")
    assert phone.evaluate("window.pageWasNotReloaded") is True
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        assert (appointment.state, appointment.confirmed_via) == ("confirmed", "reply")
