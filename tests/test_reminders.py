"""Appointment reminders and the thank-you: when they go (the client's zone, quiet hours,
daylight-saving changes), how rescheduling, cancelling and late bookings change them, and
what the appointment says about them.

The text itself is made by `auto_messages.add_auto_message` (another branch); these tests use
the stand-in in tests/scheduling_helpers.py, which keeps its contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import render_template

from app.extensions import db, get_redis
from app.models import Appointment, Message, ScheduledSend
from app.services import scheduling
from app.services.booking import reminders
from app.worker import watch
from tests.scheduling_helpers import book, change, install_stand_in, make_client, set_auto_message
from tests.sending_helpers import accepted
from tests.texting_helpers import use_sandbox

LONDON = ZoneInfo("Europe/London")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def calls(monkeypatch):
    return install_stand_in(monkeypatch)


@pytest.fixture
def business(make_business):
    return make_business("Bright Smile Dental", time_zone="America/New_York")


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _local(zone: ZoneInfo, *args) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def _rows(appointment_id: int) -> list[ScheduledSend]:
    return reminders.scheduling.rows_for(reminders.PURPOSES, appointment_id)


def _pending(appointment_id: int) -> list[ScheduledSend]:
    return [row for row in _rows(appointment_id) if row.state == "pending"]


# --- When a reminder goes ---------------------------------------------------------------------


def test_a_day_before_reminder_keeps_the_clients_clock_time_across_their_spring_forward():
    # London springs forward on 28 March 2027; New York (the business) did on 14 March.
    starts_at = _local(LONDON, 2027, 3, 28, 10, 0)  # 09:00 UTC, summer time
    due = reminders.reminder_due(starts_at, 24, LONDON)
    assert due.astimezone(LONDON).replace(tzinfo=None) == datetime(2027, 3, 27, 10, 0)
    assert due == _utc(2027, 3, 27, 10, 0)  # 25 real hours before: the clock skipped one


def test_a_day_before_reminder_keeps_the_clients_clock_time_across_their_fall_back():
    starts_at = _local(LONDON, 2027, 10, 31, 10, 0)  # 10:00 UTC, winter time again
    due = reminders.reminder_due(starts_at, 48, LONDON)
    assert due.astimezone(LONDON).replace(tzinfo=None) == datetime(2027, 10, 29, 10, 0)
    assert due == _utc(2027, 10, 29, 9, 0)  # 49 real hours before


def test_a_reminder_due_in_quiet_hours_on_the_spring_forward_night_goes_at_eight_their_time():
    starts_at = _local(LONDON, 2027, 3, 28, 9, 0)  # 08:00 UTC
    due = reminders.reminder_due(starts_at, 2, LONDON)  # 06:00 UTC = 07:00 summer time: quiet
    assert due == _local(LONDON, 2027, 3, 28, 8, 0) == _utc(2027, 3, 28, 7, 0)


def test_a_reminder_due_in_quiet_hours_goes_at_eight_when_that_is_before_the_appointment():
    starts_at = _local(LOS_ANGELES, 2027, 6, 8, 8, 30)
    due = reminders.reminder_due(starts_at, 2, LOS_ANGELES)  # 06:30 their time
    assert due == _local(LOS_ANGELES, 2027, 6, 8, 8, 0)


def test_a_reminder_due_in_quiet_hours_goes_at_2059_the_evening_before_when_eight_is_too_late():
    starts_at = _local(LOS_ANGELES, 2027, 6, 8, 7, 30)
    due = reminders.reminder_due(starts_at, 1, LOS_ANGELES)  # 06:30 their time
    assert due == _local(LOS_ANGELES, 2027, 6, 7, 20, 59)


def test_a_reminder_due_late_in_the_evening_goes_the_next_morning():
    starts_at = _local(LOS_ANGELES, 2027, 6, 8, 22, 30)  # 22:30: the 24 h one is due in quiet
    due = reminders.reminder_due(starts_at, 24, LOS_ANGELES)
    assert due == _local(LOS_ANGELES, 2027, 6, 8, 8, 0)


def test_a_reminder_outside_quiet_hours_goes_exactly_its_hours_before():
    starts_at = _local(LOS_ANGELES, 2027, 6, 8, 15, 0)
    assert reminders.reminder_due(starts_at, 2, LOS_ANGELES) == starts_at - timedelta(hours=2)


def test_the_clients_zone_is_the_cards_then_the_area_codes_then_the_businesss(app, business):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        on_card = make_client(business["id"], phone="+14155550101", time_zone="Europe/London")
        by_area_code = make_client(business["id"], phone="+14155550102")
        unknown_area = make_client(business["id"], phone="+15550101234")
        starts = _utc(2027, 6, 10, 15, 0)
        zones = [
            reminders.client_zone(
                db.session.get(Appointment, book(business["id"], c.id, starts, now=now))
            )
            for c in (on_card, by_area_code, unknown_area)
        ]
    assert [z.key for z in zones] == ["Europe/London", "America/Los_Angeles", "America/New_York"]


def test_quiet_hours_are_the_clients_not_the_businesss(app, business, calls):
    # 09:30 in New York is 06:30 in Los Angeles: the client's quiet hours.
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], phone="+14155550101")
        starts = _local(LOS_ANGELES, 2027, 6, 8, 8, 30)
        set_auto_message(business["id"], "reminder", reminder_hours=[2])
        appointment_id = book(business["id"], client.id, starts, now=now)
        [row] = _pending(appointment_id)
        assert row.due_at == _local(LOS_ANGELES, 2027, 6, 8, 8, 0)
        assert "quiet hours" in row.note


# --- Booking, settings, late bookings --------------------------------------------------------


def test_booking_schedules_the_default_reminder_a_day_before_and_no_thank_you(app, business):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        starts = _local(ZoneInfo("America/New_York"), 2027, 6, 10, 15, 0)
        appointment_id = book(business["id"], client.id, starts, now=now)
        rows = _rows(appointment_id)
    assert [(r.purpose, r.slot, r.state) for r in rows] == [
        (reminders.REMINDER, "reminder-1:24h", "pending")
    ]
    assert rows[0].due_at == starts - timedelta(hours=24)


def test_booking_schedules_the_businesss_reminders_and_the_thank_you_when_it_is_on(app, business):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        set_auto_message(business["id"], "reminder", reminder_hours=[48, 2])
        set_auto_message(business["id"], "thank_you", enabled=True)
        starts = _local(ZoneInfo("America/New_York"), 2027, 6, 10, 15, 0)
        appointment_id = book(business["id"], client.id, starts, now=now, duration_minutes=30)
        rows = {r.slot: r.due_at for r in _pending(appointment_id)}
    assert rows == {
        "reminder-1:48h": starts - timedelta(hours=48),
        "reminder-2:2h": starts - timedelta(hours=2),
        "thank_you": starts + timedelta(minutes=30) + timedelta(hours=2),
    }


def test_no_reminder_is_scheduled_when_the_reminder_is_off(app, business):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"])
        set_auto_message(business["id"], "reminder", enabled=False, reminder_hours=[24])
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        assert _rows(appointment_id) == []


def test_an_appointment_booked_too_late_for_its_reminder_skips_it_and_says_why(app, business):
    with app.app_context():
        now = _utc(2027, 6, 10, 14, 30)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, now + timedelta(minutes=30), now=now)
        [row] = _rows(appointment_id)
        assert row.state == "skipped"
        assert row.outcome == "Booked 30 minutes before: too late for the 24-hour reminder."
        lines = reminders.reminder_status(db.session.get(Appointment, appointment_id))
    assert lines == [
        "Reminder 24 h before: skipped: Booked 30 minutes before: too late for the 24-hour "
        "reminder."
    ]


# --- Reschedule, cancel, no-show --------------------------------------------------------------


def test_rescheduling_moves_the_pending_reminder_to_the_new_time(app, business):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        [before] = _pending(appointment_id)
        change(appointment_id, "rescheduled", starts_at=_utc(2027, 6, 12, 16), now=now)
        [after] = _pending(appointment_id)
        assert after.id == before.id
        assert after.due_at == _utc(2027, 6, 11, 16)
        assert len(_rows(appointment_id)) == 1


def test_rescheduling_after_the_reminder_went_schedules_one_for_the_new_time(app, business, calls):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        assert scheduling.dispatch_due(now=_utc(2027, 6, 9, 15)) == 1  # the reminder went
        change(
            appointment_id, "rescheduled", starts_at=_utc(2027, 6, 20, 15), now=_utc(2027, 6, 9, 16)
        )
        states = [(r.state, r.due_at) for r in _rows(appointment_id)]
    assert states == [("done", _utc(2027, 6, 9, 15)), ("pending", _utc(2027, 6, 19, 15))]


def test_rescheduling_too_close_to_the_new_time_skips_the_reminder_and_says_why(app, business):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        change(appointment_id, "rescheduled", starts_at=now + timedelta(hours=3), now=now)
        rows = [(r.state, r.outcome) for r in _rows(appointment_id)]
    assert rows == [
        ("cancelled", "Moved 3 hours before: too late for the 24-hour reminder."),
        ("skipped", "Moved 3 hours before: too late for the 24-hour reminder."),
    ]


@pytest.mark.parametrize("what", ["cancelled", "no_show"])
def test_cancelling_or_a_no_show_drops_the_pending_reminder_and_nothing_goes(
    app, business, calls, what
):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        set_auto_message(business["id"], "thank_you", enabled=True)
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        change(appointment_id, what, now=now)
        assert {r.state for r in _rows(appointment_id)} == {"cancelled"}
        assert scheduling.dispatch_due(now=_utc(2027, 6, 30)) == 0
    assert calls == []


def test_completing_an_appointment_keeps_its_thank_you(app, business, calls):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        set_auto_message(business["id"], "thank_you", enabled=True)
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        scheduling.dispatch_due(now=_utc(2027, 6, 9, 15))  # the reminder
        change(appointment_id, "completed", now=_utc(2027, 6, 10, 16))
        scheduling.dispatch_due(now=_utc(2027, 6, 10, 18))  # the thank-you
    assert [c["event"] for c in calls] == ["reminder", "thank_you"]


def test_a_reminder_whose_appointment_was_cancelled_meanwhile_is_skipped_not_sent(
    app, business, calls
):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        appointment = db.session.get(Appointment, appointment_id)
        appointment.state = "cancelled"  # without the signal: the handler checks again
        db.session.commit()
        scheduling.dispatch_due(now=_utc(2027, 6, 9, 15))
        [row] = _rows(appointment_id)
    assert (row.state, row.outcome) == ("skipped", "The appointment was cancelled.")
    assert calls == []


# --- Sending ----------------------------------------------------------------------------------


def test_a_reminder_goes_once_at_its_time_as_reminder_number_one(app, business, calls):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        assert scheduling.dispatch_due(now=_utc(2027, 6, 9, 14, 59)) == 0
        assert scheduling.dispatch_due(now=_utc(2027, 6, 9, 15)) == 1
        assert scheduling.dispatch_due(now=_utc(2027, 6, 9, 15, 1)) == 0
        [row] = _rows(appointment_id)
        message = db.session.get(Message, row.message_id)
        assert (message.auto_event, message.appointment_id) == ("reminder", appointment_id)
    assert calls == [{"appointment_id": appointment_id, "event": "reminder", "reminder_number": 1}]


def _daytime_zone(moment: datetime) -> str:
    """A zone where `moment` is well outside the quiet hours."""
    for name in ("Europe/London", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata"):
        if 10 <= moment.astimezone(ZoneInfo(name)).hour <= 18:
            return name
    raise AssertionError("no daytime zone")


def test_a_reminder_row_survives_a_redis_flush_and_still_goes(
    app, business, sandbox, calls, run_jobs
):
    use_sandbox(app, sandbox)
    real_now = datetime.now(UTC)  # the dispatch job runs on the real clock
    booked_at = real_now - timedelta(hours=2)
    with app.app_context():
        client = make_client(business["id"], time_zone=_daytime_zone(real_now))
        set_auto_message(business["id"], "reminder", reminder_hours=[1])
        starts = real_now + timedelta(minutes=59)  # its 1-hour reminder was due a minute ago
        appointment_id = book(business["id"], client.id, starts, now=booked_at)
        [row] = _rows(appointment_id)
        assert row.state == "pending" and row.due_at <= real_now
        get_redis().flushdb()  # Redis lost everything (a flush, a restart without its disk)
        watch(app, "a-new-worker")  # the watchman of a fresh worker finds the due row
    run_jobs()
    reminders_sent = [m for m in accepted(sandbox) if m["text"].startswith("Reminder from")]
    assert [m["to"] for m in reminders_sent] == ["15557654321"]
    with app.app_context():
        assert db.session.get(ScheduledSend, row.id).state == "done"


def test_the_appointments_reminder_lines_and_fragment(app, business, calls):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], phone="+14155550101")
        set_auto_message(business["id"], "reminder", reminder_hours=[24, 1])
        starts = _local(LOS_ANGELES, 2027, 6, 10, 7, 30)  # 10:30 AM in New York
        appointment_id = book(business["id"], client.id, starts, now=now)
        # 07:30 their time the day before is in their quiet hours: it goes at 08:00.
        scheduling.dispatch_due(now=_local(LOS_ANGELES, 2027, 6, 9, 8, 0))
        appointment = db.session.get(Appointment, appointment_id)
        lines = reminders.reminder_status(appointment)
        with app.test_request_context():
            html = render_template("appointments/_reminders.html", appointment=appointment)
    assert lines == [
        "Reminder 24 h before: sent Wed, Jun 9, 11:00 AM",
        "Reminder 1 h before: due Wed, Jun 9, 11:59 PM (8:59 PM their time), moved out of the "
        "client's quiet hours, 9 PM to 8 AM their time",
    ]
    assert f'id="appointment-reminders-{appointment_id}"' in html
    assert "sent Wed, Jun 9, 11:00 AM" in html


def test_a_reminder_is_skipped_when_reminders_were_turned_off_before_it_went(app, business, calls):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        set_auto_message(business["id"], "reminder", enabled=False)
        scheduling.dispatch_due(now=_utc(2027, 6, 9, 15))
        [row] = _rows(appointment_id)
    assert (row.state, row.outcome) == ("skipped", "Reminders were turned off.")
    assert calls == []


def test_a_reminder_claimed_while_its_appointment_moved_gives_way_to_the_new_one(
    app, business, calls
):
    with app.app_context():
        now = _utc(2027, 6, 1, 12, 0)
        client = make_client(business["id"], time_zone="America/New_York")
        appointment_id = book(business["id"], client.id, _utc(2027, 6, 10, 15), now=now)
        claim = scheduling.claim_due(now=_utc(2027, 6, 9, 15))  # on its way ...
        change(appointment_id, "rescheduled", starts_at=_utc(2027, 6, 20, 15), now=now)
        [old_id] = claim.row_ids
        assert scheduling.handle_claimed(old_id, claim.token, now=_utc(2027, 6, 9, 15)) == (
            "skipped"
        )
        assert scheduling.dispatch_due(now=_utc(2027, 6, 19, 15)) == 1
        assert [(r.state, r.due_at) for r in _rows(appointment_id)] == [
            ("skipped", _utc(2027, 6, 9, 15)),
            ("done", _utc(2027, 6, 19, 15)),
        ]
    assert len(calls) == 1
