"""Appointments (issue 11 item 1): the booking rules and state transitions, local times across
DST changes, the signal each change sends once inside its transaction, the live event after
the commit, the agenda's queries, and the pages (agenda, New appointment, an appointment's
page, the client card's tab). Tenant isolation of the routes is walked by
tests/test_tenant_isolation.py; here, ids typed into forms."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest

from app.extensions import db, get_redis
from app.models import Appointment, Client, ClientNote, ClientPhone, User
from app.routes import appointments as appointment_routes
from app.services import clients, events
from app.services.booking import appointments
from app.services.booking.signals import appointment_changed
from app.services.errors import ServiceError
from tests.conftest import page_text

# Monday 7 Dec 2026, 15:00 UTC = 10:00 in New York.
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
TOMORROW_2PM = datetime(2026, 12, 8, 19, 0, tzinfo=UTC)  # 14:00 in New York


@pytest.fixture
def shop(app, make_business):
    return make_business("Bright Cuts", staff=("staff",))


def _client(app, business, name="Ada Lovelace", phone="+12125550101", time_zone=None) -> int:
    with app.app_context():
        client = Client(business_id=business["id"], name=name, time_zone=time_zone)
        if phone:
            client.phones = [ClientPhone(business_id=business["id"], number=phone)]
        clients.refresh_search_text(client)
        db.session.add(client)
        db.session.commit()
        return client.id


@contextmanager
def _signals():
    """Every appointment_changed sent meanwhile, as (appointment id, keyword arguments)."""
    sent: list[tuple[int, dict]] = []

    def receiver(appointment, **kwargs):
        sent.append((appointment.id, kwargs))

    with appointment_changed.connected_to(receiver):
        yield sent


def _book(business, client, **overrides) -> Appointment:
    values = dict(
        client_id=client,
        service="Haircut",
        starts_at=TOMORROW_2PM,
        duration_minutes=60,
        user_id=business["owner"][0],
        now=NOW,
    )
    values.update(overrides)
    return appointments.create_appointment(business["id"], **values)


def _count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(Appointment))


def _published(business_id: int) -> list[dict]:
    return [
        json.loads(fields[b"data"])
        for _, fields in get_redis().xrange(events.stream_key(business_id))
        if fields[b"event"] == b"appointment.changed"
    ]


# --- booking -------------------------------------------------------------------------------


def test_booking_stores_a_booked_appointment_and_sends_booked_once(app, shop):
    client_id = _client(app, shop)
    with app.app_context(), _signals() as sent:
        appointment = _book(shop, client_id, staff_id=shop["staff"][0], location=" Studio 2 ")
        assert (appointment.state, appointment.service, appointment.location) == (
            "booked",
            "Haircut",
            "Studio 2",
        )
        assert appointment.starts_at == TOMORROW_2PM
        assert appointment.created_by_id == shop["owner"][0]
        assert sent == [
            (
                appointment.id,
                {
                    "change": "booked",
                    "previous_starts_at": None,
                    "user_id": shop["owner"][0],
                    "now": NOW,
                },
            )
        ]


def test_every_change_publishes_appointment_changed_after_its_commit(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        appointments.mark(shop["id"], appointment.id, "confirmed", user_id=None, now=NOW)
        appointments.cancel(shop["id"], appointment.id, user_id=None, now=NOW)
        assert _published(shop["id"]) == [
            {"appointment_id": appointment.id, "client_id": client_id, **changed}
            for changed in (
                {"state": "booked", "change": "booked"},
                {"state": "confirmed", "change": "confirmed"},
                {"state": "cancelled", "change": "cancelled"},
            )
        ]


def test_a_receivers_rows_are_stored_with_the_change_in_one_commit(app, shop):
    client_id = _client(app, shop)

    def note_it(appointment, **kwargs):
        db.session.add(
            ClientNote(
                business_id=appointment.business_id,
                client_id=appointment.client_id,
                body=f"{kwargs['change']}",
            )
        )

    with app.app_context(), appointment_changed.connected_to(note_it):
        _book(shop, client_id)
        db.session.rollback()  # nothing left uncommitted: the note came with the booking
        assert [n.body for n in db.session.execute(db.select(ClientNote)).scalars()] == ["booked"]


def test_a_receiver_that_refuses_leaves_nothing_stored_and_nothing_published(app, shop):
    client_id = _client(app, shop)

    def refuse(appointment, **kwargs):
        raise ServiceError("No.")

    with app.app_context(), appointment_changed.connected_to(refuse):
        with pytest.raises(ServiceError):
            _book(shop, client_id)
        assert _count() == 0
        assert _published(shop["id"]) == []


def test_the_service_is_one_cleaned_line(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id, service="  Colour\nand\u202e cut ")
        assert appointment.service == "Colour and cut"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"service": " \n "}, "Enter the service"),
        ({"service": "x" * 121}, "120 characters"),
        ({"duration_minutes": 4}, "duration"),
        ({"duration_minutes": 721}, "duration"),
        ({"starts_at": NOW - timedelta(hours=2)}, "already passed"),
        ({"starts_at": NOW + timedelta(days=800)}, "two years"),
        ({"starts_at": datetime(2026, 12, 8, 14, 0)}, "date and time"),  # naive
        ({"location": "x" * 201}, "location"),
        ({"note": "x" * 2001}, "note"),
        ({"client_id": 0}, "Choose a client"),
        ({"client_id": 10**22}, "Choose a client"),
        ({"staff_id": 10**22}, "your team"),
    ],
)
def test_booking_refuses_bad_input_and_stores_nothing(app, shop, overrides, message):
    client_id = _client(app, shop)
    with app.app_context(), _signals() as sent:
        with pytest.raises(ServiceError, match=message):
            _book(shop, client_id, **overrides)
        assert _count() == 0
        assert sent == []


def test_an_appointment_under_way_can_still_be_booked(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id, starts_at=NOW - timedelta(minutes=10))
        assert appointment.state == "booked"


def test_another_businesss_client_or_staff_member_cannot_be_booked(app, shop, make_business):
    other = make_business(staff=("staff",))
    mine, theirs = _client(app, shop), _client(app, other, name="Their client")
    with app.app_context():
        with pytest.raises(ServiceError, match="Choose a client"):
            _book(shop, theirs)
        with pytest.raises(ServiceError, match="your team"):
            _book(shop, mine, staff_id=other["staff"][0])
        assert _count() == 0


def test_a_deactivated_staff_member_cannot_be_booked(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        db.session.get(User, shop["staff"][0]).deactivated_at = NOW
        db.session.commit()
        with pytest.raises(ServiceError, match="your team"):
            _book(shop, client_id, staff_id=shop["staff"][0])


def test_booking_a_merged_away_card_books_the_card_it_was_merged_into(app, shop):
    kept = _client(app, shop, name="Ada")
    removed = _client(app, shop, name="Ada (new number)", phone="+12125550102")
    with app.app_context():
        db.session.get(Client, removed).merged_into_id = kept
        db.session.commit()
        assert _book(shop, removed).client_id == kept


def test_a_merge_moves_the_removed_cards_appointments_to_the_kept_card(app, shop):
    kept = _client(app, shop, name="Ada")
    removed = _client(app, shop, name="Ada (new number)", phone="+12125550102")
    with app.app_context():
        appointment_id = _book(shop, removed).id
        owner = db.session.get(User, shop["owner"][0])
        clients.merge_clients(shop["id"], kept, removed, owner)
        ahead, _ = appointments.for_client(shop["id"], kept, now=NOW)
        assert [a.id for a in ahead] == [appointment_id]


# --- local times ---------------------------------------------------------------------------


def test_a_local_date_and_time_is_read_in_the_businesss_zone():
    start = appointments.start_from_local("America/New_York", "2026-12-08", "14:00")
    assert start == TOMORROW_2PM


def test_a_time_the_clocks_skip_is_refused_with_a_clear_message():
    # 14 Mar 2027: New York goes from 01:59 to 03:00.
    with pytest.raises(ServiceError, match="doesn't exist.*clocks go forward"):
        appointments.start_from_local("America/New_York", "2027-03-14", "02:30")
    assert appointments.start_from_local("America/New_York", "2027-03-14", "03:00") == datetime(
        2027, 3, 14, 7, 0, tzinfo=UTC
    )


def test_a_time_that_happens_twice_is_the_first_of_the_two():
    # 7 Nov 2027: New York's 01:30 comes in daylight time (05:30 UTC), then standard (06:30).
    start = appointments.start_from_local("America/New_York", "2027-11-07", "01:30")
    assert start == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "clock"),
    [
        ("", "14:00"),
        ("2026-02-30", "14:00"),
        ("9999-12-31", "23:30"),
        ("x", ""),
        ("2026-12-08", "25:00"),
    ],
)
def test_a_missing_or_impossible_date_or_time_is_refused(day, clock):
    with pytest.raises(ServiceError, match="Choose the appointment's"):
        appointments.start_from_local("America/New_York", day, clock)


def test_the_day_the_clocks_go_back_holds_its_25_hours_of_appointments(app, shop):
    client_id = _client(app, shop)
    now = datetime(2027, 11, 1, tzinfo=UTC)
    with app.app_context():
        late = _book(shop, client_id, starts_at=datetime(2027, 11, 8, 4, 30, tzinfo=UTC), now=now)
        early = _book(shop, client_id, starts_at=datetime(2027, 11, 7, 4, 0, tzinfo=UTC), now=now)
        _book(shop, client_id, starts_at=datetime(2027, 11, 8, 5, 0, tzinfo=UTC), now=now)
        # 7 Nov in New York: 04:00 UTC (00:00 EDT) to 05:00 UTC next day (00:00 EST).
        day = appointments.agenda_for_day(shop["id"], date(2027, 11, 7))
        assert [a.id for a in day] == [early.id, late.id]


# --- transitions ---------------------------------------------------------------------------


def test_rescheduling_moves_it_and_sends_the_old_start(app, shop):
    client_id = _client(app, shop)
    later = TOMORROW_2PM + timedelta(days=1)
    with app.app_context():
        appointment = _book(shop, client_id)
        with _signals() as sent:
            appointments.reschedule(
                shop["id"], appointment.id, starts_at=later, duration_minutes=90, user_id=1, now=NOW
            )
        assert (appointment.starts_at, appointment.duration_minutes) == (later, 90)
        assert [(s[1]["change"], s[1]["previous_starts_at"]) for s in sent] == [
            ("rescheduled", TOMORROW_2PM)
        ]


def test_rescheduling_a_confirmed_appointment_books_it_again(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        appointments.mark(shop["id"], appointment.id, "confirmed", user_id=None, now=NOW)
        appointments.reschedule(
            shop["id"],
            appointment.id,
            starts_at=TOMORROW_2PM + timedelta(hours=1),
            user_id=None,
            now=NOW,
        )
        assert (appointment.state, appointment.confirmed_via, appointment.confirmed_at) == (
            "booked",
            None,
            None,
        )


def test_a_reschedule_that_changes_nothing_is_refused(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        with _signals() as sent, pytest.raises(ServiceError, match="already has"):
            appointments.reschedule(
                shop["id"], appointment.id, starts_at=TOMORROW_2PM, user_id=None, now=NOW
            )
        assert sent == []


@pytest.mark.parametrize("state", ["cancelled", "completed", "no_show"])
def test_a_closed_appointment_cannot_be_rescheduled_cancelled_or_confirmed(app, shop, state):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        appointment.state = state
        db.session.commit()
        with _signals() as sent:
            with pytest.raises(ServiceError, match="can't be moved"):
                appointments.reschedule(
                    shop["id"], appointment.id, starts_at=TOMORROW_2PM + timedelta(hours=2),
                    user_id=None, now=NOW,
                )  # fmt: skip
            with pytest.raises(ServiceError, match="can't be cancelled"):
                appointments.cancel(shop["id"], appointment.id, user_id=None, now=NOW)
            with pytest.raises(ServiceError):
                appointments.mark(shop["id"], appointment.id, "confirmed", user_id=None, now=NOW)
            with pytest.raises(ServiceError):
                appointments.confirm_by_reply(appointment, now=NOW)
        db.session.refresh(appointment)
        assert (appointment.state, appointment.starts_at, sent) == (state, TOMORROW_2PM, [])


def test_an_appointment_that_is_over_cannot_be_moved_or_cancelled(app, shop):
    client_id = _client(app, shop)
    after = TOMORROW_2PM + timedelta(hours=2)
    with app.app_context():
        appointment = _book(shop, client_id)
        with pytest.raises(ServiceError, match="over"):
            appointments.cancel(shop["id"], appointment.id, user_id=None, now=after)
        with pytest.raises(ServiceError, match="over"):
            appointments.reschedule(
                shop["id"], appointment.id, starts_at=after + timedelta(days=1), user_id=None,
                now=after,
            )  # fmt: skip
        assert appointment.state == "booked"


def test_cancelling_records_when_and_sends_cancelled(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        with _signals() as sent:
            appointments.cancel(shop["id"], appointment.id, user_id=shop["staff"][0], now=NOW)
        assert (appointment.state, appointment.cancelled_at) == ("cancelled", NOW)
        assert [(s[1]["change"], s[1]["user_id"]) for s in sent] == [
            ("cancelled", shop["staff"][0])
        ]


def test_staff_confirming_records_it_was_them(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        with _signals() as sent:
            appointments.mark(shop["id"], appointment.id, "confirmed", user_id=2, now=NOW)
        assert (appointment.state, appointment.confirmed_via, appointment.confirmed_at) == (
            "confirmed",
            "staff",
            NOW,
        )
        assert [s[1]["change"] for s in sent] == ["confirmed"]


def test_completed_and_no_show_need_the_appointment_to_have_started(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        for state in ("completed", "no_show"):
            with pytest.raises(ServiceError, match="hasn't started"):
                appointments.mark(shop["id"], appointment.id, state, user_id=None, now=NOW)
        assert appointment.state == "booked"


def test_completed_and_no_show_can_be_corrected_into_each_other(app, shop):
    client_id = _client(app, shop)
    later = TOMORROW_2PM + timedelta(hours=3)
    with app.app_context(), _signals() as sent:
        appointment = _book(shop, client_id)
        appointments.mark(shop["id"], appointment.id, "no_show", user_id=None, now=later)
        appointments.mark(shop["id"], appointment.id, "completed", user_id=None, now=later)
        with pytest.raises(ServiceError, match="already marked completed"):
            appointments.mark(shop["id"], appointment.id, "completed", user_id=None, now=later)
        assert appointment.state == "completed"
        assert [s[1]["change"] for s in sent] == ["booked", "no_show", "completed"]


def test_a_cancelled_appointment_cannot_be_marked_completed(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        appointments.cancel(shop["id"], appointment.id, user_id=None, now=NOW)
        with pytest.raises(ServiceError, match="cancelled"):
            appointments.mark(
                shop["id"], appointment.id, "completed", user_id=None, now=NOW + timedelta(days=2)
            )


def test_marking_an_unknown_state_is_refused(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        for state in ("booked", "cancelled", "anything"):
            with pytest.raises(ServiceError, match="confirmed, completed or no-show"):
                appointments.mark(shop["id"], appointment.id, state, user_id=None, now=NOW)


def test_another_businesss_appointment_cannot_be_changed(app, shop, make_business):
    other = make_business()
    with app.app_context():
        theirs = _book(other, _client(app, other))
        with pytest.raises(ServiceError, match="does not exist"):
            appointments.cancel(shop["id"], theirs.id, user_id=None, now=NOW)
        with pytest.raises(ServiceError, match="does not exist"):
            appointments.mark(shop["id"], theirs.id, "confirmed", user_id=None, now=NOW)
        with pytest.raises(ServiceError, match="does not exist"):
            appointments.reschedule(
                shop["id"], theirs.id, starts_at=TOMORROW_2PM + timedelta(hours=1),
                user_id=None, now=NOW,
            )  # fmt: skip
        assert theirs.state == "booked"


def test_confirm_by_reply_confirms_once_as_the_clients_reply(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        with _signals() as sent:
            appointments.confirm_by_reply(appointment, now=NOW)
            appointments.confirm_by_reply(appointment, now=NOW + timedelta(minutes=1))
        assert (appointment.state, appointment.confirmed_via, appointment.confirmed_at) == (
            "confirmed",
            "reply",
            NOW,
        )
        assert sent == [
            (
                appointment.id,
                {"change": "confirmed", "previous_starts_at": None, "user_id": None, "now": NOW},
            )
        ]
        assert len(_published(shop["id"])) == 2  # booked, confirmed


def test_confirm_by_reply_can_leave_the_commit_to_its_caller(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        appointment = _book(shop, client_id)
        appointments.confirm_by_reply(appointment, now=NOW, commit=False)
        assert len(_published(shop["id"])) == 1  # not yet: nothing committed
        db.session.commit()
        assert len(_published(shop["id"])) == 2


# --- the agenda's queries ------------------------------------------------------------------


def test_the_agenda_lists_a_local_day_of_this_business_only(app, shop, make_business):
    other = make_business()
    client_id = _client(app, shop)
    with app.app_context():
        # 8 Dec in New York is 05:00 UTC on the 8th to 05:00 UTC on the 9th.
        late = _book(shop, client_id, starts_at=datetime(2026, 12, 9, 4, 30, tzinfo=UTC))
        early = _book(shop, client_id, starts_at=datetime(2026, 12, 8, 5, 0, tzinfo=UTC))
        _book(shop, client_id, starts_at=datetime(2026, 12, 9, 5, 0, tzinfo=UTC))
        cancelled = _book(shop, client_id)
        appointments.cancel(shop["id"], cancelled.id, user_id=None, now=NOW)
        _book(other, _client(app, other))
        day = appointments.agenda_for_day(shop["id"], date(2026, 12, 8))
        assert [a.id for a in day] == [early.id, cancelled.id, late.id]
        counts = appointments.counts_by_day(shop["id"], appointments.week_of(date(2026, 12, 8)))
        assert counts[date(2026, 12, 8)] == 2  # cancelled ones aren't counted
        assert counts[date(2026, 12, 9)] == 1


def test_upcoming_and_past_split_at_now(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        under_way = _book(shop, client_id, starts_at=NOW - timedelta(minutes=30))
        ahead = _book(shop, client_id)
        cancelled = _book(shop, client_id, starts_at=TOMORROW_2PM + timedelta(hours=2))
        appointments.cancel(shop["id"], cancelled.id, user_id=None, now=NOW)
        over = _book(
            shop, client_id, starts_at=NOW - timedelta(hours=3), now=NOW - timedelta(hours=4)
        )
        assert [a.id for a in appointments.upcoming(shop["id"], now=NOW)] == [
            under_way.id,
            ahead.id,
        ]
        assert [a.id for a in appointments.past(shop["id"], now=NOW)] == [under_way.id, over.id]
        ahead_ids, over_ids = appointments.for_client(shop["id"], client_id, now=NOW)
        assert [a.id for a in ahead_ids] == [under_way.id, ahead.id, cancelled.id]
        assert [a.id for a in over_ids] == [over.id]


def test_recent_services_are_distinct_and_newest_first(app, shop):
    client_id = _client(app, shop)
    with app.app_context():
        for minutes, service in enumerate(["Cut", "Colour", "Cut", "Beard trim"]):
            _book(shop, client_id, service=service, now=NOW + timedelta(minutes=minutes))
        assert appointments.recent_services(shop["id"]) == ["Beard trim", "Cut", "Colour"]
        assert appointments.recent_services(shop["id"], limit=1) == ["Beard trim"]


def test_the_clients_zone_is_the_cards_else_the_numbers():
    client = Client(name="Ada", time_zone="Europe/Paris")
    assert appointments.client_time_zone(client) == "Europe/Paris"
    client = Client(name="Ada", phones=[ClientPhone(number="+13105550101")])
    assert appointments.client_time_zone(client) == "America/Los_Angeles"
    client = Client(name="Ada", phones=[ClientPhone(number="+18005550101")])  # toll-free
    assert appointments.client_time_zone(client) is None


# --- the pages -----------------------------------------------------------------------------


@pytest.fixture
def signed_in(shop, actions, monkeypatch):
    """The owner signed in, with the pages' clock at NOW."""
    monkeypatch.setattr(appointment_routes, "utcnow", lambda: NOW)
    actions.sign_in(shop["owner"][1])
    return shop


def _form(client, **overrides) -> dict:
    form = {
        "client_id": str(client),
        "service": "Haircut",
        "date": "2026-12-08",
        "time": "14:00",
        "duration_minutes": "45",
        "staff_id": "",
        "location": "",
        "note": "",
    }
    form.update(overrides)
    return form


def test_booking_from_the_form_reads_the_time_in_the_businesss_zone(app, signed_in, actions):
    client_id = _client(app, signed_in)
    response = actions.post("/appointments", _form(client_id, staff_id=str(signed_in["staff"][0])))
    assert response.status_code == 302
    with app.app_context():
        appointment = db.session.execute(db.select(Appointment)).scalar_one()
        assert (appointment.starts_at, appointment.duration_minutes) == (TOMORROW_2PM, 45)
        assert appointment.staff_id == signed_in["staff"][0]
    page = page_text(actions.client.get(response.headers["Location"]))
    assert "Haircut · Ada Lovelace" in page
    assert "2:00 – 2:45 PM" in page
    assert "{# reminders" not in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"time": "02:30", "date": "2027-03-14"}, "doesn't exist"),
        ({"service": ""}, "Enter the service"),
        ({"duration_minutes": "abc"}, "duration"),
        ({"staff_id": "abc"}, "your team"),
    ],
)
def test_the_form_refuses_bad_input_with_its_message_and_keeps_what_was_typed(
    app, signed_in, actions, overrides, message
):
    client_id = _client(app, signed_in)
    response = actions.post("/appointments", _form(client_id, note="Bring photos", **overrides))
    assert response.status_code == 422
    assert message in page_text(response)
    assert "Bring photos" in page_text(response)
    with app.app_context():
        assert _count() == 0


def test_the_form_without_a_client_says_to_choose_one(app, signed_in, actions):
    response = actions.post("/appointments", _form("abc"))
    assert response.status_code == 422
    assert "Choose a client" in page_text(response)
    with app.app_context():
        assert _count() == 0


def test_the_form_refuses_another_businesss_client_or_staff(app, signed_in, actions, make_business):
    other = make_business(staff=("staff",))
    theirs = _client(app, other, name="Their client")
    mine = _client(app, signed_in)
    assert actions.post("/appointments", _form(theirs)).status_code == 422
    response = actions.post("/appointments", _form(mine, staff_id=str(other["staff"][0])))
    assert response.status_code == 422
    assert "Their client" not in page_text(response)
    with app.app_context():
        assert _count() == 0


def test_the_agenda_shows_the_day_in_the_businesss_zone_and_the_clients_own_time(
    app, signed_in, actions
):
    client_id = _client(app, signed_in, phone="+13105550101")  # Los Angeles area code
    with app.app_context():
        _book(signed_in, client_id, staff_id=signed_in["staff"][0])
    page = page_text(actions.client.get("/appointments?day=2026-12-08"))
    assert "Tomorrow" in page
    assert "2:00 – 3:00 PM" in page
    assert "11:00 AM their time (Los Angeles)" in page
    assert "with Staff" in page and "Booked" in page
    today = page_text(actions.client.get("/appointments"))
    assert "Nothing booked today" in today
    assert 'aria-label="Tomorrow, 1 appointment"' in today  # the week strip


def test_the_clients_own_time_is_left_out_when_it_is_the_same(app, signed_in, actions):
    client_id = _client(app, signed_in, phone="+17055550101")  # Toronto: New York's clock
    with app.app_context():
        _book(signed_in, client_id)
    assert "their time" not in page_text(actions.client.get("/appointments?day=2026-12-08"))


def test_upcoming_and_past_views_list_across_days(app, signed_in, actions):
    client_id = _client(app, signed_in)
    with app.app_context():
        _book(signed_in, client_id, service="Colour")
        _book(signed_in, client_id, service="Trim", starts_at=NOW - timedelta(days=3),
              now=NOW - timedelta(days=4))  # fmt: skip
    upcoming = page_text(actions.client.get("/appointments?view=upcoming"))
    assert "Colour" in upcoming and "Trim" not in upcoming and "Tue, Dec 8, 2026" in upcoming
    past = page_text(actions.client.get("/appointments?view=past"))
    assert "Trim" in past and "Colour" not in past


def test_an_htmx_refresh_gets_the_agenda_fragment_alone(app, signed_in, actions):
    response = actions.client.get("/appointments?view=upcoming", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="agenda"')
    assert '<nav class="nav"' not in body


def test_the_navigation_and_quick_actions_lead_to_appointments(app, signed_in, actions):
    inbox = page_text(actions.client.get("/inbox"))
    assert 'href="/appointments"' in inbox
    actions_page = page_text(actions.client.get("/actions"))
    assert 'href="/appointments/new"' in actions_page and "New appointment" in actions_page


def test_the_new_appointment_picker_finds_clients_and_links_to_the_form(app, signed_in, actions):
    client_id = _client(app, signed_in)
    response = actions.client.get(
        "/appointments/new?q=ada&date=2026-12-09", headers={"HX-Request": "true"}
    )
    assert f'href="/appointments/new?client_id={client_id}&amp;date=2026-12-09"' in (
        response.get_data(as_text=True)
    )
    form = page_text(actions.client.get(f"/appointments/new?client_id={client_id}&date=2026-12-09"))
    assert 'value="2026-12-09"' in form and "Ada Lovelace" in form


def test_the_form_offers_recent_services_and_the_team(app, signed_in, actions):
    client_id = _client(app, signed_in)
    with app.app_context():
        _book(signed_in, client_id, service="Balayage")
    form = page_text(actions.client.get(f"/appointments/new?client_id={client_id}"))
    assert '<option value="Balayage">' in form
    assert f'<option value="{signed_in["staff"][0]}"' in form


def test_the_client_card_lists_their_appointments_upcoming_first(app, signed_in, actions):
    client_id = _client(app, signed_in)
    with app.app_context():
        _book(signed_in, client_id, service="Colour")
        _book(signed_in, client_id, service="Trim", starts_at=NOW - timedelta(days=3),
              now=NOW - timedelta(days=4))  # fmt: skip
    page = page_text(actions.client.get(f"/clients/{client_id}?tab=appointments"))
    assert page.index("Upcoming") < page.index("Colour") < page.index("Past") < page.index("Trim")
    assert f'href="/appointments/new?client_id={client_id}"' in page
    assert 'hx-trigger="sse:appointment.changed"' in page
    assert f'data-sse-client-id="{client_id}"' in page


def test_rescheduling_cancelling_and_marking_from_the_appointments_page(app, signed_in, actions):
    client_id = _client(app, signed_in)
    with app.app_context():
        appointment_id = _book(signed_in, client_id).id
    url = f"/appointments/{appointment_id}"
    moved = actions.post(
        url + "/reschedule", {"date": "2026-12-10", "time": "09:30", "duration_minutes": "30"}
    )
    assert moved.status_code == 302
    assert actions.post(url + "/mark", {"state": "confirmed"}).status_code == 302
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        assert appointment.starts_at == datetime(2026, 12, 10, 14, 30, tzinfo=UTC)
        assert (appointment.state, appointment.confirmed_via) == ("confirmed", "staff")
    assert "Yes, cancel it" in page_text(actions.client.get(url))
    assert actions.post(url + "/cancel").status_code == 302
    page = page_text(actions.client.get(url))
    assert "Cancelled" in page and "Yes, cancel it" not in page and "Reschedule" not in page
    again = actions.post(url + "/cancel")
    assert again.status_code == 422 and "was cancelled" in page_text(again)


def test_a_refused_reschedule_says_why_and_keeps_the_old_time(app, signed_in, actions):
    client_id = _client(app, signed_in)
    with app.app_context():
        appointment_id = _book(signed_in, client_id).id
    response = actions.post(
        f"/appointments/{appointment_id}/reschedule",
        {"date": "2026-12-01", "time": "09:30", "duration_minutes": "30"},
    )
    assert response.status_code == 422
    assert "already passed" in page_text(response)
    with app.app_context():
        assert db.session.get(Appointment, appointment_id).starts_at == TOMORROW_2PM


def test_the_new_appointment_form_answers_404_for_another_businesss_client(
    app, signed_in, actions, make_business
):
    other = make_business()
    theirs = _client(app, other, name="Their client")
    response = actions.client.get(f"/appointments/new?client_id={theirs}")
    assert response.status_code == 404


def test_an_impossible_day_in_the_address_shows_today(app, signed_in, actions):
    for day in ("9999-12-31", "0001-01-01", "nonsense"):
        response = actions.client.get(f"/appointments?day={day}")
        assert response.status_code == 200
        assert "<h2>Today</h2>" in response.get_data(as_text=True)


def test_an_oversized_id_typed_into_the_form_is_refused_like_a_missing_one(app, signed_in, actions):
    response = actions.post("/appointments", _form("99999999999"))
    assert response.status_code == 422
    assert "Choose a client" in page_text(response)
