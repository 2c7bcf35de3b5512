"""Compliance keywords on every number (COMPLIANCE.md): STOP and its synonyms opt out with
exactly one confirmation, START/UNSTOP/YES opt back in, HELP/INFO answer with the business's
details, and a free-text request to stop is flagged for staff to confirm with one click."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Business, Conversation, Message, OptOut
from app.models.types import utcnow
from app.services import balance, sending
from app.services.errors import ServiceError
from app.services.keywords import is_revocation, keyword_of
from tests.conftest import page_text
from tests.inbound_helpers import (
    MARKETING,
    PERSON,
    SYSTEM,
    dedicated_number,
    deliver,
    inbound_messages,
    make_known_client,
    outbound_messages,
    text_fields,
    texted_from_system,
)

STOP_CONFIRMATION = (
    "You're unsubscribed from Bright Smile Dental. No more texts. Reply START to resubscribe."
)

# --- Recognising them -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop.",
        "  stop!! ",
        "STOPALL",
        "Unsubscribe",
        "cancel",
        "END",
        "quit",
        "Revoke",
        "OPTOUT",
        "opt out",
        "Opt-Out",
        "OPT OUT.",
        "Stop all",
        "opt-out",
        "ＳＴＯＰ",
        '"stop"',
    ],
)
def test_opt_out_keywords_in_any_case_with_punctuation_around(text):
    assert keyword_of(text, opted_out=False) == "stop"


@pytest.mark.parametrize("text", ["START", "start", "Unstop!", " start. ", "un-stop"])
def test_opt_in_keywords(text):
    assert keyword_of(text, opted_out=True) == "start"


def test_yes_opts_back_in_only_someone_who_opted_out():
    assert keyword_of("Yes", opted_out=True) == "start"
    assert keyword_of("Yes", opted_out=False) is None


@pytest.mark.parametrize("text", ["HELP", "help?", "Info", "INFO!"])
def test_help_keywords(text):
    assert keyword_of(text, opted_out=False) == "help"


@pytest.mark.parametrize(
    "text",
    [
        "please stop",
        "stop it",
        "Don't stop the reminders",
        "I can't make it, cancel my appointment",
        "the end",
        "help me choose a time",
        "stopping by later",
        "",
    ],
)
def test_a_keyword_inside_a_sentence_is_not_a_keyword(text):
    assert keyword_of(text, opted_out=False) is None


@pytest.mark.parametrize(
    "text",
    [
        "Please stop texting me",
        "stop sending me messages",
        "STOP TEXTING ME!!!",
        "Unsubscribe me",
        "please unsubscribe me from this",
        "Take me off your list",
        "remove me from your list please",
        "Remove my number",
        "Don't text me",
        "dont text me again",
        "Do not contact me",
        "no more texts please",
        "No more messages",
        "opt me out",
        "I want to opt out",
        "leave me alone",
        "wrong number",
        "Stop messaging me",
        "I don’t want these texts, stop texting",
    ],
)
def test_free_text_requests_to_stop_are_recognised(text):
    assert is_revocation(text)


@pytest.mark.parametrize(
    "text",
    [
        "Can I stop by at 3?",
        "I can't stop smiling after my cleaning!",
        "Text me when you're ready",
        "Please remind me tomorrow",
        "No more questions, thanks",
        "Don't forget my prescription",
        "Can you take me at 4?",
        "Call me back please",
        "Thanks, see you then",
    ],
)
def test_ordinary_sentences_are_not_taken_for_requests_to_stop(text):
    assert not is_revocation(text)


# --- Acting on them -------------------------------------------------------------------------


@pytest.fixture
def business(app, make_business):
    made = make_business("Bright Smile Dental")
    with app.app_context():
        row = db.session.get(Business, made["id"])
        row.contact_phone = "+15550101234"
        row.contact_email = "hello@brightsmile.example.com"
        row.website = "https://brightsmile.example.com"
        db.session.commit()
    dedicated_number(app, made["id"])
    made["client_id"] = make_known_client(app, made["id"])
    return made


def _replies(app) -> list[Message]:
    return [m for m in outbound_messages(app) if m.reply_to_id is not None]


def _opted_out(app, business_id) -> bool:
    with app.app_context():
        return (
            db.session.execute(
                db.select(OptOut.id).where(
                    OptOut.business_id == business_id, OptOut.number == PERSON
                )
            ).first()
            is not None
        )


def _send(app, business, body="Your appointment is confirmed."):
    with app.app_context():
        return sending.send_text(
            business["id"], business["client_id"], body, user_id=None, now=utcnow()
        )


@pytest.mark.parametrize(
    "word",
    ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "Quit", "revoke", "OptOut", "Opt out!"],
)
def test_stop_and_each_synonym_opts_out_with_one_confirmation(
    app, client, business, run_jobs, word
):
    deliver(client, text_fields(word))
    run_jobs()
    assert _opted_out(app, business["id"])
    (reply,) = _replies(app)
    assert reply.body == STOP_CONFIRMATION
    assert reply.recipient == PERSON
    assert reply.kind == "transactional"
    assert inbound_messages(app)[0].keyword == "stop"


def test_after_stop_sends_are_refused(app, client, business, run_jobs):
    deliver(client, text_fields("STOP"))
    run_jobs()
    with pytest.raises(ServiceError, match="opted out"):
        _send(app, business)


def test_a_second_stop_sends_no_second_confirmation(app, client, business, run_jobs):
    deliver(client, text_fields("STOP"))
    run_jobs()
    deliver(client, text_fields("stop!!"))
    run_jobs()
    assert len(_replies(app)) == 1
    assert [m.keyword for m in inbound_messages(app)] == ["stop", "stop"]


def test_start_opts_back_in_with_a_confirmation_and_sends_are_allowed_again(
    app, client, business, run_jobs
):
    deliver(client, text_fields("STOP"))
    run_jobs()
    deliver(client, text_fields("Start"))
    run_jobs()
    assert not _opted_out(app, business["id"])
    assert [r.body for r in _replies(app)] == [
        STOP_CONFIRMATION,
        "You're resubscribed to texts from Bright Smile Dental. Msg & data rates may apply. "
        "Reply STOP to opt out.",
    ]
    assert _send(app, business).status == "queued"


@pytest.mark.parametrize("word", ["YES", "unstop"])
def test_yes_and_unstop_opt_back_in(app, client, business, run_jobs, word):
    deliver(client, text_fields("STOP"))
    run_jobs()
    deliver(client, text_fields(word))
    run_jobs()
    assert not _opted_out(app, business["id"])


def test_start_from_someone_not_opted_out_sends_nothing(app, client, business, run_jobs):
    deliver(client, text_fields("START"))
    run_jobs()
    assert _replies(app) == []


@pytest.mark.parametrize("word", ["HELP", "info"])
def test_help_answers_with_the_business_details(app, client, business, run_jobs, word):
    deliver(client, text_fields(word))
    run_jobs()
    (reply,) = _replies(app)
    assert reply.body == (
        "Bright Smile Dental: To reach us, call (555) 010-1234, email "
        "hello@brightsmile.example.com, or visit brightsmile.example.com. Msg & data rates "
        "may apply. Reply STOP to opt out."
    )
    assert inbound_messages(app)[0].keyword == "help"


def test_help_while_opted_out_gets_no_answer(app, client, business, run_jobs):
    deliver(client, text_fields("STOP"))
    run_jobs()
    deliver(client, text_fields("HELP"))
    run_jobs()
    assert len(_replies(app)) == 1  # the STOP confirmation only


def test_the_confirmation_shows_in_the_conversation(app, actions, business, run_jobs):
    deliver(actions.client, text_fields("STOP"))
    run_jobs()
    actions.sign_in(business["owner"][1])
    page = page_text(actions.client.get(f"/messages/clients/{business['client_id']}"))
    assert STOP_CONFIRMATION in page
    assert "Opted out of your texts" in page


def test_the_conversation_notes_what_each_keyword_did(app, actions, business, run_jobs):
    for word in ("STOP", "Start", "HELP"):
        deliver(actions.client, text_fields(word))
        run_jobs()
    actions.sign_in(business["owner"][1])
    page = page_text(actions.client.get(f"/messages/clients/{business['client_id']}"))
    assert "Opted out of your texts (replied STOP)." in page
    assert "Opted in to your texts (replied Start)." in page
    assert "Asked for help: sent your business's details." in page


def test_compliance_answers_go_uncharged_when_the_balance_is_empty(
    app, client, make_business, run_jobs
):
    made = make_business("Bright Smile Dental", plan="starter")
    dedicated_number(app, made["id"])
    make_known_client(app, made["id"])
    with app.app_context():
        balance.reserve(made["id"], 100, utcnow())
        db.session.commit()
    deliver(client, text_fields("STOP"))
    run_jobs()
    (reply,) = _replies(app)
    assert reply.body == STOP_CONFIRMATION
    with app.app_context():
        parts = db.session.get(Message, reply.id).parts
        assert [p.charged_from for p in parts] == [None]


def test_a_compliance_answer_is_charged_when_the_balance_covers_it(
    app, client, make_business, run_jobs
):
    made = make_business("Bright Smile Dental", plan="starter")
    dedicated_number(app, made["id"])
    make_known_client(app, made["id"])
    deliver(client, text_fields("HELP"))
    run_jobs()
    with app.app_context():
        assert balance.balance_for(made["id"], utcnow()).total == 99


@pytest.mark.parametrize(
    ("status", "verified"), [("active", False), ("reserved", True), ("releasing", True)]
)
def test_stop_works_on_a_held_or_logged_number_too(
    app, client, make_business, run_jobs, status, verified
):
    made = make_business("Bright Smile Dental")
    dedicated_number(app, made["id"], status=status, verified=verified)
    make_known_client(app, made["id"])
    deliver(client, text_fields("STOP"))
    run_jobs()
    assert _opted_out(app, made["id"])
    assert [r.body for r in _replies(app)] == [STOP_CONFIRMATION]


def test_stop_to_a_system_number_opts_out_of_the_business_that_texted(
    app, client, make_business, run_jobs
):
    made = make_business("Bright Smile Dental")
    client_id = make_known_client(app, made["id"])
    texted_from_system(
        app, made["id"], client_id, MARKETING, kind="marketing", body="20% off whitening!"
    )
    deliver(client, text_fields("stop", to=MARKETING))
    run_jobs()
    assert _opted_out(app, made["id"])
    (reply,) = _replies(app)
    assert reply.sender == MARKETING
    assert reply.body == STOP_CONFIRMATION


def test_stop_from_a_short_code_opts_out_but_gets_no_text_back(app, client, business, run_jobs):
    deliver(client, text_fields("STOP", sender="72975"))
    run_jobs()
    with app.app_context():
        assert db.session.execute(db.select(OptOut.number)).scalars().all() == ["72975"]
    assert _replies(app) == []


def test_an_opt_out_shows_on_the_client_card(app, actions, business, run_jobs):
    deliver(actions.client, text_fields("STOP"))
    run_jobs()
    actions.sign_in(business["owner"][1])
    page = page_text(actions.client.get(f"/clients/{business['client_id']}"))
    assert "opted out" in page.lower()


def test_the_cards_opted_out_badge_refreshes_live_when_a_stop_arrives(
    app, actions, business, run_jobs
):
    client_id = business["client_id"]
    actions.sign_in(business["owner"][1])
    card = page_text(actions.client.get(f"/clients/{client_id}"))
    assert "Opted out of texts" not in card
    assert f'hx-get="/clients/{client_id}/badges"' in card
    assert 'hx-trigger="sse:message.created"' in card
    assert f'data-sse-client-id="{client_id}"' in card  # app.js filters on it

    deliver(actions.client, text_fields("STOP"))
    run_jobs()

    assert "Opted out of texts" in page_text(actions.client.get(f"/clients/{client_id}/badges"))


# --- Free-text requests, confirmed or dismissed by staff ------------------------------------


def _flagged(app, actions, business, run_jobs, body="Please stop texting me") -> int:
    deliver(actions.client, text_fields(body))
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.revocation == "flagged"
    assert message.keyword is None
    actions.sign_in(business["owner"][1])
    return message.id


def test_a_free_text_request_is_flagged_for_attention_and_changes_nothing_yet(
    app, actions, business, run_jobs
):
    message_id = _flagged(app, actions, business, run_jobs)
    assert not _opted_out(app, business["id"])
    assert _replies(app) == []
    with app.app_context():
        assert db.session.execute(db.select(Conversation.needs_attention)).scalar_one()
    page = page_text(actions.client.get(f"/messages/clients/{business['client_id']}"))
    assert "This looks like a request to stop texts" in page
    assert f"/messages/{message_id}/revocation/confirm" in page


def test_confirming_a_flagged_request_opts_out_and_sends_the_one_confirmation(
    app, actions, business, run_jobs
):
    message_id = _flagged(app, actions, business, run_jobs)
    response = actions.post(f"/messages/{message_id}/revocation/confirm")
    assert response.status_code == 200
    assert "Opt-out confirmed" in page_text(response)
    run_jobs()
    assert _opted_out(app, business["id"])
    assert [r.body for r in _replies(app)] == [STOP_CONFIRMATION]
    assert inbound_messages(app)[0].revocation == "confirmed"
    with pytest.raises(ServiceError, match="opted out"):
        _send(app, business)


def test_confirming_twice_sends_one_confirmation(app, actions, business, run_jobs):
    message_id = _flagged(app, actions, business, run_jobs)
    actions.post(f"/messages/{message_id}/revocation/confirm")
    actions.post(f"/messages/{message_id}/revocation/confirm")
    run_jobs()
    assert len(_replies(app)) == 1


def test_dismissing_a_flagged_request_changes_nothing_else(app, actions, business, run_jobs):
    message_id = _flagged(app, actions, business, run_jobs)
    response = actions.post(f"/messages/{message_id}/revocation/dismiss")
    assert "dismissed" in page_text(response)
    run_jobs()
    assert not _opted_out(app, business["id"])
    assert _replies(app) == []
    assert inbound_messages(app)[0].revocation == "dismissed"
    assert _send(app, business).status == "queued"


def test_confirm_needs_the_csrf_token(app, actions, business, run_jobs):
    message_id = _flagged(app, actions, business, run_jobs)
    response = actions.client.post(f"/messages/{message_id}/revocation/confirm")
    assert response.status_code == 400
    assert not _opted_out(app, business["id"])


def test_a_message_that_was_not_flagged_cannot_be_confirmed(app, actions, business, run_jobs):
    deliver(actions.client, text_fields("See you at 3"))
    run_jobs()
    (message,) = inbound_messages(app)
    actions.sign_in(business["owner"][1])
    response = actions.post(f"/messages/{message.id}/revocation/confirm")
    assert "was not flagged" in page_text(response)
    assert not _opted_out(app, business["id"])


def test_a_free_text_request_to_a_system_number_is_honoured_at_once(
    app, client, make_business, run_jobs
):
    """No one reads replies to a system number, so no one could confirm it."""
    made = make_business("Bright Smile Dental")
    client_id = make_known_client(app, made["id"])
    texted_from_system(app, made["id"], client_id, SYSTEM)
    deliver(client, text_fields("please stop texting me", to=SYSTEM))
    run_jobs()
    assert _opted_out(app, made["id"])
    assert [r.body for r in _replies(app)] == [STOP_CONFIRMATION]
    assert inbound_messages(app)[0].revocation == "confirmed"


def test_a_free_text_request_held_before_verification_is_flagged_for_later(
    app, client, make_business, run_jobs
):
    made = make_business("Bright Smile Dental")
    dedicated_number(app, made["id"], verified=False)
    make_known_client(app, made["id"])
    deliver(client, text_fields("stop texting me"))
    run_jobs()
    assert inbound_messages(app)[0].revocation == "flagged"
    assert not _opted_out(app, made["id"])
