"""The inbound webhook at /webhooks/vonage/inbound: signed and fresh or refused, valid or 400
with the reason, bounded in size, every form Vonage sends, each text stored exactly once."""

from __future__ import annotations

import logging
import time

import pytest

from app.extensions import db
from app.models import Message
from app.services import inbound
from tests.conftest import page_text
from tests.inbound_helpers import (
    DEDICATED,
    INBOUND_PATH,
    PERSON,
    dedicated_number,
    deliver,
    inbound_messages,
    make_known_client,
    stored_parts,
    text_fields,
)
from tests.sending_helpers import signed


@pytest.fixture
def business(app, make_business):
    """A business with an active, verified dedicated number and a client who texts it."""
    made = make_business()
    dedicated_number(app, made["id"])
    made["client_id"] = make_known_client(app, made["id"])
    return made


def test_the_empty_get_vonage_probes_the_url_with_is_answered_200(app, client):
    assert client.get(INBOUND_PATH).status_code == 200
    assert stored_parts(app) == []


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_a_signed_text_is_accepted_as_get_query_post_form_or_post_json(
    app, client, business, run_jobs, how
):
    assert deliver(client, text_fields("Running 5 min late"), how) == 200
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.body == "Running 5 min late"
    assert message.client_id == business["client_id"]
    assert (message.channel, message.direction, message.kind) == ("text", "inbound", "direct")
    assert (message.sender, message.recipient) == (PERSON, DEDICATED)
    assert message.status == "received"
    assert message.visibility == "inbox"


def test_the_same_text_delivered_five_times_is_one_message(app, client, business, run_jobs):
    fields = text_fields("Is Tuesday OK?")
    for _ in range(5):
        assert deliver(client, fields) == 200
        run_jobs()
    assert len(stored_parts(app)) == 1
    assert [m.body for m in inbound_messages(app)] == ["Is Tuesday OK?"]


def test_the_message_is_dated_when_we_received_it(app, client, business, run_jobs):
    deliver(client, text_fields("hello"))
    run_jobs()
    (part,) = stored_parts(app)
    (message,) = inbound_messages(app)
    assert message.created_at == part.received_at


def test_a_text_shows_in_the_clients_conversation(app, actions, business, run_jobs):
    deliver(actions.client, text_fields("See you at 3"))
    run_jobs()
    actions.sign_in(business["owner"][1])
    page = actions.client.get(f"/messages/clients/{business['client_id']}")
    assert "See you at 3" in page_text(page)


def _nothing_stored(app) -> bool:
    with app.app_context():
        return stored_parts(app) == [] and db.session.execute(db.select(Message.id)).first() is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: {k: v for k, v in p.items() if k not in ("sig", "timestamp", "nonce")},
        lambda p: {**p, "sig": "0" * 64},
        lambda p: {**p, "text": "Send me your password"},  # changed after signing
        lambda p: {**p, "timestamp": str(int(time.time()) - 3600)},
    ],
    ids=["unsigned", "wrong-signature", "tampered", "timestamp-changed"],
)
@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_forged_or_unsigned_texts_are_refused_and_nothing_is_stored(
    app, client, business, run_jobs, forge, how
):
    params = forge(signed(text_fields()))
    if how == "get":
        response = client.get(INBOUND_PATH, query_string=params)
    elif how == "json":
        response = client.post(INBOUND_PATH, json=params)
    else:
        response = client.post(INBOUND_PATH, data=params)
    run_jobs()
    assert response.status_code == 401
    assert _nothing_stored(app)


def test_a_stale_text_correctly_signed_long_ago_is_refused(app, client, business, run_jobs):
    assert deliver(client, text_fields(), now=time.time() - 3600) == 401
    run_jobs()
    assert _nothing_stored(app)


def _without(name: str):
    return lambda fields: {k: v for k, v in fields.items() if k != name}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_without("msisdn"), "msisdn is missing"),
        (_without("to"), "to is missing"),
        (_without("messageId"), "messageId is missing"),
        (_without("text"), "text is missing"),
        (lambda f: {**f, "to": "our number"}, "to is not a phone number"),
        (lambda f: {**f, "msisdn": "<script>"}, "msisdn is not a phone number"),
        (lambda f: {**f, "msisdn": "1" * 40}, "msisdn is longer than 32"),
        (lambda f: {**f, "messageId": "x" * 65}, "messageId is longer than 64"),
        (lambda f: {**f, "type": "video"}, "type must be text, unicode or binary"),
        (lambda f: {**f, "text": "x" * 2001}, "text is longer than 2000"),
        (lambda f: {**f, "message-timestamp": "yesterday"}, "message-timestamp is not"),
        (
            lambda f: {**f, "concat": "true", "concat-ref": "7", "concat-total": "3"},
            "concat-part is missing",
        ),
        (
            lambda f: {
                **f,
                "concat": "true",
                "concat-ref": "7",
                "concat-total": "3",
                "concat-part": "4",
            },
            "concat-part must be between 1 and concat-total",
        ),
        (
            lambda f: {
                **f,
                "concat": "true",
                "concat-ref": "7",
                "concat-total": "3",
                "concat-part": "0",
            },
            "concat-part must be between 1 and concat-total",
        ),
        (
            lambda f: {
                **f,
                "concat": "true",
                "concat-ref": "7",
                "concat-total": "9999",
                "concat-part": "1",
            },
            "concat-total is not a whole number",
        ),
        (
            lambda f: {
                **f,
                "concat": "true",
                "concat-ref": "7",
                "concat-total": "300",
                "concat-part": "1",
            },
            "concat-total must be between 1 and 255",
        ),
        (
            lambda f: {**f, "concat": "true", "concat-ref": "7", "concat-total": "two"},
            "concat-total is not a whole number",
        ),
        (
            lambda f: {
                **f,
                "concat": "true",
                "concat-ref": "7\x00",
                "concat-total": "2",
                "concat-part": "1",
            },
            "concat-ref has characters",
        ),
    ],
)
def test_a_malformed_text_is_refused_with_the_reason_and_nothing_is_stored(
    app, client, business, run_jobs, change, reason
):
    response = client.post(INBOUND_PATH, data=signed(change(text_fields())))
    run_jobs()
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert _nothing_stored(app)


def test_a_json_body_that_is_not_an_object_is_malformed(app, client, business):
    response = client.post(INBOUND_PATH, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert _nothing_stored(app)


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_an_oversized_payload_is_refused_and_nothing_is_stored(
    app, client, business, run_jobs, how
):
    params = signed(text_fields(padding="x" * 20_000))
    if how == "get":
        response = client.get(INBOUND_PATH, query_string=params)
    elif how == "json":
        response = client.post(INBOUND_PATH, json=params)
    else:
        response = client.post(INBOUND_PATH, data=params)
    run_jobs()
    assert response.status_code == 413
    assert _nothing_stored(app)


def test_the_largest_real_part_fits_the_size_limit(app, client, business, run_jobs):
    """160 characters of 4-byte emoji, percent-encoded, with every other field."""
    text = "😀" * 35 + "é" * 90  # as big as a UCS-2 part's encoding gets, and then some
    fields = text_fields(text, type="unicode", concat="true")
    fields.update({"concat-ref": "255", "concat-total": "255", "concat-part": "255"})
    assert deliver(client, fields, "get") == 200


@pytest.mark.parametrize("sender", ["72975", "VONAGE", "Bright Dental"])
def test_short_code_and_alphanumeric_senders_are_stored_as_received(
    app, client, business, run_jobs, sender
):
    assert deliver(client, text_fields("Your code is 1234", sender=sender)) == 200
    run_jobs()
    (part,) = stored_parts(app)
    assert part.sender == sender
    (message,) = inbound_messages(app)
    assert message.sender == sender


def test_a_numeric_sender_is_stored_in_e164(app, client, business, run_jobs):
    deliver(client, text_fields(sender="15557654321"))
    assert stored_parts(app)[0].sender == "+15557654321"


def test_a_text_to_a_number_that_is_no_ones_is_answered_200_and_logged(
    app, client, business, run_jobs, caplog
):
    caplog.set_level(logging.INFO, logger="app.services.inbound")
    assert deliver(client, text_fields("hello?", to="+18005550199")) == 200
    run_jobs()
    (part,) = stored_parts(app)
    assert part.outcome == "unknown_number"
    assert part.handled_at is not None
    assert inbound_messages(app) == []
    assert "+18005550199" in caplog.text and "unknown number" in caplog.text


def test_the_webhook_queues_the_work_and_handles_nothing_itself(app, client, business):
    deliver(client, text_fields("queued, not handled"))
    (part,) = stored_parts(app)
    assert part.handled_at is None
    assert inbound_messages(app) == []


def test_a_binary_text_is_kept_with_a_plain_note(app, client, business, run_jobs):
    fields = text_fields(type="binary", udh="050003CC0201", data="0102")
    del fields["text"]
    assert deliver(client, fields) == 200
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.body == inbound.BINARY_BODY


def test_control_characters_in_a_text_are_replaced_not_refused(app, client, business, run_jobs):
    assert deliver(client, text_fields("bad\x00byte\x1bhere\nnext line")) == 200
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.body == "bad\ufffdbyte\ufffdhere\nnext line"
