"""Confirm by reply (issue 11 item 5): a C or CONFIRM to the verified dedicated number, from
a client who got a reminder from it in the last 48 hours, confirms that client's next
appointment, once, and nothing else does."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.extensions import db, get_redis
from app.models import (
    Appointment,
    AutoMessageSetting,
    Client,
    ClientPhone,
    Message,
    MessagePart,
    Notification,
)
from app.models.types import utcnow
from app.services import events, inbox
from app.services.booking import confirm_by_reply
from app.services.booking.signals import appointment_changed
from tests.conftest import page_text, sign_in_without_password
from tests.inbound_helpers import (
    DEDICATED,
    PERSON,
    SYSTEM,
    dedicated_number,
    deliver,
    inbound_messages,
    make_known_client,
    outbound_messages,
    text_fields,
)


@pytest.fixture
def shop(app, make_business):
    made = make_business("Bright Smile Dental")
    dedicated_number(app, made["id"])
    made["client"] = make_known_client(app, made["id"], name="Sam Client")
    _settings(app, made["id"])
    return made


def _settings(app, business_id: int, *, ask: bool = True, thank: bool = True) -> None:
    with app.app_context():
        row = db.session.get(AutoMessageSetting, (business_id, "reminder"))
        if row is None:
            row = AutoMessageSetting(business_id=business_id, event="reminder", reminder_hours=[24])
            db.session.add(row)
        row.ask_to_confirm = ask
        row.thank_for_confirming = thank
        db.session.commit()


def _appointment(app, business_id: int, client_id: int, *, hours: float = 24, **values) -> int:
    with app.app_context():
        row = Appointment(
            business_id=business_id,
            client_id=client_id,
            service="Cleaning",
            starts_at=utcnow() + timedelta(hours=hours),
            **values,
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def _reminder(
    app, business_id: int, client_id: int, *, hours_ago: float = 1, sender: str = DEDICATED
) -> int:
    with app.app_context():
        message = Message(
            business_id=business_id,
            client_id=client_id,
            channel="text",
            direction="outbound",
            kind="transactional",
            auto_event="reminder",
            body="Reminder: Cleaning tomorrow at 3:00 PM. Reply C to confirm.",
            sender=sender,
            recipient=PERSON,
            status="delivered",
            created_at=utcnow() - timedelta(hours=hours_ago),
        )
        db.session.add(message)
        db.session.commit()
        return message.id


def _state(app, appointment_id: int) -> tuple[str, str | None]:
    with app.app_context():
        row = db.session.get(Appointment, appointment_id)
        return row.state, row.confirmed_via


def _reply(client, run_jobs, body: str = "C", **fields) -> None:
    deliver(client, text_fields(body, **fields))
    run_jobs()


def _thanks(app) -> list[Message]:
    return [m for m in outbound_messages(app) if m.auto_event == "confirm_thanks"]


@pytest.fixture
def changes():
    """Every appointment_changed signal sent, as (appointment id, change, user id)."""
    seen = []

    def receiver(appointment, *, change, user_id=None, **_):
        seen.append((appointment.id, change, user_id))

    appointment_changed.connect(receiver)
    yield seen
    appointment_changed.disconnect(receiver)


# --- What counts as a confirmation --------------------------------------------------------


@pytest.mark.parametrize("body", ["C", "c", "Confirm!", " C. ", "CONFIRM", "confirm", "ｃ"])
def test_a_c_or_confirm_in_any_case_with_punctuation_confirms(app, client, shop, run_jobs, body):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs, body)
    assert _state(app, appointment_id) == ("confirmed", "reply")
    with app.app_context():
        assert db.session.get(Appointment, appointment_id).confirmed_at is not None


@pytest.mark.parametrize("body", ["Can I confirm?", "CC", "C please", "Yes", "Confirmed", "OK"])
def test_any_other_reply_lands_in_the_inbox_and_confirms_nothing(app, client, shop, run_jobs, body):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs, body)
    assert _state(app, appointment_id) == ("booked", None)
    (message,) = inbound_messages(app)
    assert (message.visibility, message.appointment_id) == ("inbox", None)
    with app.app_context():
        assert inbox.conversation_of(shop["id"], shop["client"]).needs_attention


def test_a_keyword_keeps_priority(app, client, shop, run_jobs):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs, "STOP")
    assert _state(app, appointment_id) == ("booked", None)
    assert inbound_messages(app)[0].keyword == "stop"


# --- Whose appointment ----------------------------------------------------------------------


def test_only_the_senders_own_next_open_appointment_is_confirmed(
    app, client, shop, make_business, run_jobs
):
    earlier_past = _appointment(app, shop["id"], shop["client"], hours=-3)
    later = _appointment(app, shop["id"], shop["client"], hours=72)
    cancelled = _appointment(app, shop["id"], shop["client"], hours=2, state="cancelled")
    next_one = _appointment(app, shop["id"], shop["client"], hours=24)
    other_client = make_known_client(app, shop["id"], name="Pat Other", number="+15550001111")
    others = _appointment(app, shop["id"], other_client, hours=1)
    elsewhere = make_business("Other Salon")
    same_person_elsewhere = make_known_client(app, elsewhere["id"], name="Sam Client")
    other_business = _appointment(app, elsewhere["id"], same_person_elsewhere, hours=1)
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    assert _state(app, next_one) == ("confirmed", "reply")
    for untouched in (later, others, other_business):
        assert _state(app, untouched) == ("booked", None)
    assert _state(app, earlier_past)[0] == "booked"
    assert _state(app, cancelled)[0] == "cancelled"


def test_an_appointment_on_a_card_merged_into_the_senders_counts(app, client, shop, run_jobs):
    with app.app_context():
        old = Client(business_id=shop["id"], name="Sam (old card)", search_text="sam")
        old.merged_into_id = shop["client"]
        db.session.add(old)
        db.session.commit()
        old_id = old.id
    appointment_id = _appointment(app, shop["id"], old_id)
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("confirmed", "reply")


def test_a_next_appointment_already_confirmed_stays_confirmed_and_gets_no_second_thanks(
    app, client, shop, run_jobs, changes
):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs, "C")
    _reply(client, run_jobs, "Confirm")
    assert _state(app, appointment_id) == ("confirmed", "reply")
    assert len(_thanks(app)) == 1
    assert changes == [(appointment_id, "confirmed", None)]


def test_a_c_with_no_open_appointment_ahead_lands_in_the_inbox(app, client, shop, run_jobs):
    past = _appointment(app, shop["id"], shop["client"], hours=-2)
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    assert _state(app, past) == ("booked", None)
    with app.app_context():
        assert inbox.conversation_of(shop["id"], shop["client"]).needs_attention
    assert _thanks(app) == []


# --- Only in answer to a recent reminder, on the verified dedicated number -----------------


def test_a_c_more_than_48_hours_after_the_reminder_confirms_nothing(app, client, shop, run_jobs):
    appointment_id = _appointment(app, shop["id"], shop["client"], hours=72)
    _reminder(app, shop["id"], shop["client"], hours_ago=49)
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("booked", None)


def test_a_reminder_stored_earlier_but_sent_within_48_hours_counts(app, client, shop, run_jobs):
    appointment_id = _appointment(app, shop["id"], shop["client"], hours=72)
    reminder_id = _reminder(app, shop["id"], shop["client"], hours_ago=60)
    with app.app_context():
        db.session.add(
            MessagePart(
                message_id=reminder_id,
                business_id=shop["id"],
                index=0,
                text="Reminder",
                client_ref="reminder-part-0",
                status="delivered",
                sent_at=utcnow() - timedelta(hours=2),
            )
        )
        db.session.commit()
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("confirmed", "reply")


def test_a_c_without_any_reminder_confirms_nothing(app, client, shop, run_jobs):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    with app.app_context():  # a text from staff is no reminder
        db.session.add(
            Message(
                business_id=shop["id"],
                client_id=shop["client"],
                channel="text",
                direction="outbound",
                kind="direct",
                body="See you tomorrow",
                sender=DEDICATED,
                recipient=PERSON,
                created_at=utcnow() - timedelta(hours=1),
            )
        )
        db.session.commit()
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("booked", None)


def test_a_reminder_to_another_number_of_the_client_does_not_count(app, client, shop, run_jobs):
    with app.app_context():
        db.session.add(
            ClientPhone(business_id=shop["id"], client_id=shop["client"], number="+15550002222")
        )
        db.session.commit()
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])  # to PERSON
    _reply(client, run_jobs, sender="+15550002222")
    assert _state(app, appointment_id) == ("booked", None)


def test_a_c_when_the_business_does_not_ask_to_confirm_confirms_nothing(
    app, client, shop, run_jobs
):
    _settings(app, shop["id"], ask=False)
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("booked", None)


def test_a_c_to_the_shared_number_follows_the_system_number_routing(
    app, client, make_business, run_jobs
):
    business = make_business("No Number Yet")
    client_id = make_known_client(app, business["id"])
    _settings(app, business["id"])
    appointment_id = _appointment(app, business["id"], client_id)
    _reminder(app, business["id"], client_id, sender=SYSTEM)
    _reply(client, run_jobs, to=SYSTEM)
    assert _state(app, appointment_id) == ("booked", None)
    (message,) = inbound_messages(app)
    assert message.visibility == "system"
    assert _thanks(app) == []


def test_a_c_to_a_number_still_being_verified_confirms_nothing(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"], verified=False)
    client_id = make_known_client(app, business["id"])
    _settings(app, business["id"])
    appointment_id = _appointment(app, business["id"], client_id)
    _reminder(app, business["id"], client_id)
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("booked", None)


# --- What confirming does ------------------------------------------------------------------


def test_a_duplicate_webhook_confirms_once_signals_once_and_thanks_once(
    app, client, shop, run_jobs, changes
):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    fields = text_fields("C")
    for _ in range(4):  # Vonage retrying the same text
        deliver(client, fields)
        run_jobs()
    assert len(inbound_messages(app)) == 1
    assert changes == [(appointment_id, "confirmed", None)]
    (thanks,) = _thanks(app)
    assert thanks.body == confirm_by_reply.THANKS
    assert (thanks.sender, thanks.recipient) == (DEDICATED, PERSON)
    assert (thanks.kind, thanks.appointment_id) == ("transactional", appointment_id)


def test_no_thanks_when_the_business_did_not_ask_for_it(app, client, shop, run_jobs):
    _settings(app, shop["id"], thank=False)
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    assert _state(app, appointment_id) == ("confirmed", "reply")
    assert _thanks(app) == []


def test_the_confirming_text_shows_in_the_conversation_without_needing_attention(
    app, client, shop, run_jobs
):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    (message,) = inbound_messages(app)
    assert (message.visibility, message.appointment_id) == ("inbox", appointment_id)
    with app.app_context():
        assert not inbox.conversation_of(shop["id"], shop["client"]).needs_attention
    sign_in_without_password(app, client, shop["owner"][0])
    shown = page_text(client.get(f"/messages/clients/{shop['client']}"))
    assert "Confirmed their appointment by replying to the reminder." in shown


def test_confirming_publishes_the_change_for_open_agendas(app, client, shop, run_jobs):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    with app.app_context():
        published = get_redis().xrange(events.stream_key(shop["id"]))
    changed = [
        json.loads(fields[b"data"])
        for _, fields in published
        if fields[b"event"] == confirm_by_reply.APPOINTMENT_EVENT.encode()
    ]
    assert changed == [
        {
            "appointment_id": appointment_id,
            "client_id": shop["client"],
            "state": "confirmed",
            "change": "confirmed",
        }
    ]


def test_confirming_alerts_staff_of_the_confirmation_instead_of_a_new_text(
    app, client, shop, run_jobs
):
    _appointment(app, shop["id"], shop["client"])
    _reminder(app, shop["id"], shop["client"])
    _reply(client, run_jobs)
    with app.app_context():
        kinds = db.session.execute(db.select(Notification.kind)).scalars().all()
    assert kinds == ["booking_confirmed"]
