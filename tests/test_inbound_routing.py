"""Where an inbound text goes, by the number texted: the inbox of the business whose verified
number it is; held until verification; logged after deactivation; a system number's reply to
the business that last texted the person from it, never in an inbox, answered per its SMS
setting."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Business, Conversation, Notification
from app.models.texting import Verification
from app.models.types import utcnow
from app.services import balance, inbound, verification
from tests.conftest import page_text
from tests.inbound_helpers import (
    DEDICATED,
    MARKETING,
    PERSON,
    SYSTEM,
    dedicated_number,
    deliver,
    handle_at_once,
    inbound_messages,
    make_known_client,
    outbound_messages,
    stored_parts,
    text_fields,
    texted_from_system,
)
from tests.texting_helpers import use_sandbox


def _conversation_page(actions, business, client_id) -> str:
    actions.sign_in(business["owner"][1])
    return page_text(actions.client.get(f"/messages/clients/{client_id}"))


def test_a_text_to_an_active_verified_number_lands_in_the_inbox_needing_attention(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"])
    client_id = make_known_client(app, business["id"])
    deliver(client, text_fields("Can I come at 4?"))
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.visibility == "inbox"
    with app.app_context():
        conversation = db.session.execute(
            db.select(Conversation).where(Conversation.client_id == client_id)
        ).scalar_one()
        assert conversation.needs_attention
        assert conversation.last_message_id == message.id
        notification = db.session.execute(
            db.select(Notification).where(Notification.kind == "text_received")
        ).scalar_one()
        assert notification.text == "Sam Client: Can I come at 4?"
        assert notification.link == f"/clients/{client_id}?tab=conversation"


def test_a_text_received_notification_shows_the_first_80_characters(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"])
    make_known_client(app, business["id"])
    deliver(client, text_fields("x" * 150))
    run_jobs()
    with app.app_context():
        text = db.session.execute(
            db.select(Notification.text).where(Notification.kind == "text_received")
        ).scalar_one()
    assert text == "Sam Client: " + "x" * 79 + "…"


def test_a_text_before_verification_is_held_and_not_shown(app, actions, make_business, run_jobs):
    business = make_business()
    dedicated_number(app, business["id"], verified=False)
    client_id = make_known_client(app, business["id"])
    deliver(actions.client, text_fields("Held text"))
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.visibility == "held"
    assert "Held text" not in _conversation_page(actions, business, client_id)
    with app.app_context():
        assert db.session.execute(db.select(Notification.id)).first() is None


def _verify(app, business_id: int, run_jobs) -> None:
    """The carriers verify the number: the same path the periodic check takes."""
    with app.app_context():
        verification_id = db.session.execute(
            db.select(Verification.id).where(Verification.business_id == business_id)
        ).scalar_one()
        db.session.execute(
            db.update(Verification)
            .where(Verification.id == verification_id)
            .values(state="pending", notified_at=None)
        )
        db.session.commit()
        verification._record_verified(verification_id, utcnow())
    run_jobs()


def test_held_texts_are_released_into_the_inbox_in_order_on_verification(
    app, actions, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"], verified=False)
    client_id = make_known_client(app, business["id"])
    for body in ("First held", "Second held", "Third held"):
        deliver(actions.client, text_fields(body))
        run_jobs()
    _verify(app, business["id"], run_jobs)
    messages = inbound_messages(app)
    assert [m.visibility for m in messages] == ["inbox"] * 3
    page = _conversation_page(actions, business, client_id)
    assert page.index("First held") < page.index("Second held") < page.index("Third held")
    with app.app_context():
        conversation = db.session.execute(db.select(Conversation)).scalar_one()
        assert conversation.needs_attention
        assert conversation.last_message_id == messages[-1].id
        received = db.session.execute(
            db.select(Notification.text).where(Notification.kind == "text_received")
        ).scalars()
        assert sorted(received) == [
            "Sam Client: First held",
            "Sam Client: Second held",
            "Sam Client: Third held",
        ]


def test_held_texts_are_released_once_however_often_release_runs(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"], verified=False)
    make_known_client(app, business["id"])
    deliver(client, text_fields("Only once"))
    run_jobs()
    _verify(app, business["id"], run_jobs)
    with app.app_context():
        assert inbound.release_held(business["id"], now=utcnow()) == 0
        inbound.sweep(now=utcnow())
        count = db.session.execute(
            db.select(db.func.count(Notification.id)).where(Notification.kind == "text_received")
        ).scalar_one()
    assert count == 1


def test_the_sweep_releases_held_texts_if_the_release_job_was_lost(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"], verified=False)
    make_known_client(app, business["id"])
    deliver(client, text_fields("Held, then verified"))
    run_jobs()
    with app.app_context():
        db.session.execute(db.update(Verification).values(state="verified", decided_at=utcnow()))
        db.session.commit()
        inbound.sweep(now=utcnow())
    assert inbound_messages(app)[0].visibility == "inbox"


@pytest.mark.parametrize("status", ["reserved", "releasing"])
def test_a_text_after_deactivation_is_logged_and_never_shown(
    app, actions, make_business, run_jobs, status
):
    business = make_business()
    dedicated_number(app, business["id"], status=status)
    client_id = make_known_client(app, business["id"])
    deliver(actions.client, text_fields("Are you still there?"))
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.visibility == "logged"
    assert "Are you still there?" not in _conversation_page(actions, business, client_id)
    with app.app_context():
        assert db.session.execute(db.select(Notification.id)).first() is None
        assert db.session.execute(db.select(Conversation.id)).first() is None


def test_a_text_after_deactivation_from_an_unknown_number_makes_no_lead(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"], status="reserved")
    deliver(client, text_fields("Hello?"))
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.client_id is None


@pytest.mark.parametrize("system", [SYSTEM, MARKETING])
@pytest.mark.parametrize(
    ("setting", "answers"), [("do_not_reply", 1), ("no_auto_reply", 0), ("two_way", 0)]
)
def test_a_reply_to_a_system_number_goes_to_the_business_that_texted_and_is_answered_per_setting(
    app, actions, make_business, run_jobs, setting, answers, system
):
    business = make_business("Bright Smile Dental")
    with app.app_context():
        row = db.session.get(Business, business["id"])
        row.sms_setting = setting
        row.contact_phone = "+15550101234"
        row.website = "https://brightsmile.example.com"
        db.session.commit()
    other = make_business("Someone Else")
    client_id = make_known_client(app, business["id"])
    other_client = make_known_client(app, other["id"])
    texted_from_system(app, other["id"], other_client, system)  # earlier
    texted_from_system(app, business["id"], client_id, system)  # the latest: this one
    deliver(actions.client, text_fields("Thanks! See you then", to=system))
    run_jobs()
    (message,) = inbound_messages(app)
    assert (message.business_id, message.client_id) == (business["id"], client_id)
    assert message.visibility == "system"
    replies = [m for m in outbound_messages(app) if m.reply_to_id == message.id]
    assert len(replies) == answers
    if answers:
        (reply,) = replies
        assert reply.sender == system and reply.recipient == PERSON
        assert reply.body == (
            "Replies to this number aren't read. To reach Bright Smile Dental, call "
            "(555) 010-1234 or visit brightsmile.example.com."
        )
        assert reply.visibility == "system"
    page = _conversation_page(actions, business, client_id)
    assert "Thanks! See you then" not in page
    assert "Replies to this number" not in page
    with app.app_context():
        assert db.session.execute(db.select(Conversation.needs_attention)).first() is None


def test_the_do_not_reply_answer_goes_once_a_day_per_person(app, client, make_business, run_jobs):
    business = make_business()
    with app.app_context():
        db.session.get(Business, business["id"]).sms_setting = "do_not_reply"
        db.session.commit()
    client_id = make_known_client(app, business["id"])
    texted_from_system(app, business["id"], client_id)
    for body in ("ok", "thanks", "?"):
        deliver(client, text_fields(body, to=SYSTEM))
        run_jobs()
    assert len(outbound_messages(app)) == 2  # the reminder and one answer
    with app.app_context():
        later = utcnow() + inbound.DO_NOT_REPLY_EVERY + timedelta(minutes=1)
        deliver(client, text_fields("hello again", to=SYSTEM))
        part = stored_parts(app)[-1]
        inbound.handle_part(part.id, now=later)
    assert len(outbound_messages(app)) == 3


def test_texts_from_one_person_handled_at_the_same_moment_get_one_do_not_reply_answer(
    app, client, make_business
):
    """Each text's job in its own thread and database connection, released together, so each
    finds no answer in the database before any is stored."""
    business = make_business()
    with app.app_context():
        db.session.get(Business, business["id"]).sms_setting = "do_not_reply"
        db.session.commit()
    client_id = make_known_client(app, business["id"])
    texted_from_system(app, business["id"], client_id)
    for body in ("ok", "thanks", "see you", "?"):
        deliver(client, text_fields(body, to=SYSTEM))
    part_ids = [part.id for part in stored_parts(app)]
    handle_at_once(app, part_ids)
    assert len(inbound_messages(app)) == 4
    assert len(outbound_messages(app)) == 2  # the reminder and one answer


def test_the_do_not_reply_answer_is_skipped_when_the_balance_is_empty(
    app, client, make_business, run_jobs
):
    business = make_business(plan="starter")
    with app.app_context():
        db.session.get(Business, business["id"]).sms_setting = "do_not_reply"
        db.session.commit()
        balance.reserve(business["id"], 100, utcnow())  # the whole monthly allowance
        db.session.commit()
        assert balance.balance_for(business["id"], utcnow()).total == 0
    client_id = make_known_client(app, business["id"])
    texted_from_system(app, business["id"], client_id)
    deliver(client, text_fields("ok", to=SYSTEM))
    run_jobs()
    assert len(outbound_messages(app)) == 1  # only the reminder
    assert inbound_messages(app)[0].visibility == "system"


def test_a_reply_to_a_system_number_no_business_texted_from_is_logged(
    app, client, make_business, run_jobs, caplog
):
    caplog.set_level(logging.INFO, logger="app.services.inbound")
    make_business()
    deliver(client, text_fields("Who is this?", to=SYSTEM))
    run_jobs()
    (part,) = stored_parts(app)
    assert part.outcome == "no_business"
    assert inbound_messages(app) == []
    assert "no business" in caplog.text


def test_an_automatic_answer_is_sent_through_the_sending_pipeline(
    app, client, make_business, run_jobs, sandbox
):
    use_sandbox(app, sandbox)
    business = make_business()
    with app.app_context():
        db.session.get(Business, business["id"]).sms_setting = "do_not_reply"
        db.session.commit()
    client_id = make_known_client(app, business["id"])
    texted_from_system(app, business["id"], client_id)
    deliver(client, text_fields("ok", to=SYSTEM))
    run_jobs()
    (sent,) = sandbox.snapshot()["messages"]
    assert sent["to"] == PERSON.lstrip("+")
    assert sent["from"] == SYSTEM.lstrip("+")
    assert sent["text"].startswith("Replies to this number aren't read.")


def test_the_inbound_message_fields_do_not_depend_on_the_sender_being_known(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"])
    deliver(client, text_fields("Hi"))
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.recipient == DEDICATED
    assert message.client_id is not None  # a lead was made for them


def test_a_lead_made_by_held_texts_is_announced_once_when_they_are_released(
    app, client, make_business, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"], verified=False)
    for body in ("Hello?", "Anyone there?"):
        deliver(client, text_fields(body, sender="+15559870002"))
        run_jobs()
    with app.app_context():
        assert db.session.execute(db.select(Notification.id)).first() is None
    _verify(app, business["id"], run_jobs)
    with app.app_context():
        alerts = db.session.execute(
            db.select(Notification.text).where(Notification.kind == "new_lead")
        ).scalars()
        assert list(alerts) == ["New lead (555) 987-0002: Hello?"]


def test_a_stop_held_before_verification_is_released_with_its_confirmation(
    app, actions, make_business, run_jobs
):
    business = make_business("Bright Smile Dental")
    dedicated_number(app, business["id"], verified=False)
    client_id = make_known_client(app, business["id"])
    deliver(actions.client, text_fields("STOP"))
    run_jobs()
    (reply,) = outbound_messages(app)
    assert reply.visibility == "held"
    _verify(app, business["id"], run_jobs)
    assert [m.visibility for m in outbound_messages(app)] == ["inbox"]
    page = _conversation_page(actions, business, client_id)
    assert page.index("STOP") < page.index("You're unsubscribed from Bright Smile Dental")
    with app.app_context():
        received = db.session.execute(
            db.select(Notification.text).where(Notification.kind == "text_received")
        ).scalars()
        assert list(received) == ["Sam Client: STOP"]
