"""Delivery receipts at /webhooks/vonage/status: signed and fresh or refused, in every format
Vonage sends, idempotent, and moving parts forward only."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from app.models import Message, MessagePart
from app.models.types import utcnow
from app.services import sending
from tests.sending_helpers import (
    STATUS_PATH,
    catch_receipts,
    give_dedicated_number,
    make_client,
    message_status,
    parts_of,
    replay,
    signed,
)
from tests.texting_helpers import complete_business_info, use_sandbox


@pytest.fixture
def sent(app, sandbox, make_business, run_jobs):
    """A one-part text, sent (status `sent`), and its part."""
    use_sandbox(app, sandbox)
    business = make_business()
    complete_business_info(app, business["id"])
    give_dedicated_number(app, business["id"], sandbox, run_jobs)
    client_id = make_client(app, business["id"])
    with app.app_context():
        message = sending.send_text(
            business["id"], client_id, "See you soon!", user_id=None, now=utcnow()
        )
        message_id = message.id
    run_jobs()
    (part,) = parts_of(app, message_id)
    assert part["status"] == "sent"
    return {"message_id": message_id, "part": part, "business": business}


def _receipt(part: dict, status: str = "delivered", err_code: str = "0", **extra) -> dict:
    fields = {
        "msisdn": "15557654321",
        "to": "18885550100",
        "network-code": "310260",
        "messageId": part["vonage_message_id"],
        "price": "0.00790000",
        "status": status,
        "err-code": err_code,
        "client-ref": part["client_ref"],
        "message-timestamp": "2027-01-15 15:00:00",
        "api-key": "sandbox-key",
    }
    fields.update(extra)
    return fields


def _snapshot(app) -> list:
    with app.app_context():
        rows = db.session.execute(db.select(MessagePart.status, MessagePart.err_code)).all()
        messages = db.session.execute(db.select(Message.status)).all()
        return [tuple(r) for r in rows] + [tuple(m) for m in messages]


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_a_signed_receipt_is_accepted_as_get_query_post_form_or_post_json(app, client, sent, how):
    params = signed(_receipt(sent["part"]))
    if how == "get":
        response = client.get(STATUS_PATH, query_string=params)
    elif how == "form":
        response = client.post(STATUS_PATH, data=params)
    else:
        response = client.post(STATUS_PATH, json=params)
    assert response.status_code == 200
    assert parts_of(app, sent["message_id"])[0]["status"] == "delivered"
    assert message_status(app, sent["message_id"]) == "delivered"


def test_receipts_the_sandbox_sends_in_each_format_are_accepted(
    app, client, sandbox, webhook_catcher, make_business, run_jobs
):
    use_sandbox(app, sandbox)
    business = make_business()
    complete_business_info(app, business["id"])
    give_dedicated_number(app, business["id"], sandbox, run_jobs)
    client_id = make_client(app, business["id"])
    for number, method in enumerate(["GET", "POST", "POST-JSON"], start=1):
        catch_receipts(sandbox, webhook_catcher, method)
        with app.app_context():
            message_id = sending.send_text(
                business["id"], client_id, f"Text {number}", user_id=None, now=utcnow()
            ).id
        run_jobs()
        caught = webhook_catcher.wait_for(number, STATUS_PATH)[-1]
        assert replay(client, caught) == 200
        assert message_status(app, message_id) == "delivered"


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: {k: v for k, v in p.items() if k not in ("sig", "timestamp", "nonce")},
        lambda p: {**p, "sig": "0" * 64},
        lambda p: {**p, "status": "failed"},  # changed after signing
        lambda p: {**p, "timestamp": str(int(time.time()) - 3600)},
    ],
    ids=["unsigned", "wrong-signature", "tampered", "timestamp-changed"],
)
def test_forged_or_unsigned_receipts_are_refused_and_change_nothing(app, client, sent, forge):
    before = _snapshot(app)
    response = client.post(STATUS_PATH, data=forge(signed(_receipt(sent["part"]))))
    assert response.status_code == 401
    assert _snapshot(app) == before


def test_a_stale_receipt_correctly_signed_long_ago_is_refused(app, client, sent):
    before = _snapshot(app)
    old = signed(_receipt(sent["part"]), now=time.time() - 3600)
    assert client.post(STATUS_PATH, data=old).status_code == 401
    assert _snapshot(app) == before


def test_a_signed_receipt_with_no_status_or_reference_is_malformed(app, client, sent):
    before = _snapshot(app)
    no_status = {k: v for k, v in _receipt(sent["part"]).items() if k != "status"}
    assert client.post(STATUS_PATH, data=signed(no_status)).status_code == 400
    no_ref = {
        k: v for k, v in _receipt(sent["part"]).items() if k not in ("client-ref", "messageId")
    }
    assert client.post(STATUS_PATH, data=signed(no_ref)).status_code == 400
    assert _snapshot(app) == before


def test_a_body_that_is_not_json_is_malformed(app, client, sent):
    response = client.post(STATUS_PATH, data="{not json", content_type="application/json")
    assert response.status_code == 400


def test_an_oversized_receipt_is_refused(app, client, sent):
    params = signed(_receipt(sent["part"], padding="x" * 100_000))
    assert client.post(STATUS_PATH, data=params).status_code == 413
    assert parts_of(app, sent["message_id"])[0]["status"] == "sent"


def test_duplicate_receipts_change_nothing_the_second_time(app, client, sent):
    params = signed(_receipt(sent["part"]))
    assert client.post(STATUS_PATH, data=params).status_code == 200
    after_first = _snapshot(app)
    assert client.post(STATUS_PATH, data=params).status_code == 200
    assert client.post(STATUS_PATH, data=signed(_receipt(sent["part"]))).status_code == 200
    assert _snapshot(app) == after_first


def test_a_late_accepted_receipt_does_not_move_a_delivered_part_back(app, client, sent):
    client.post(STATUS_PATH, data=signed(_receipt(sent["part"], "delivered")))
    client.post(STATUS_PATH, data=signed(_receipt(sent["part"], "accepted", "0")))
    client.post(STATUS_PATH, data=signed(_receipt(sent["part"], "failed", "6")))
    (part,) = parts_of(app, sent["message_id"])
    assert part["status"] == "delivered" and part["err_code"] is None


def test_a_receipt_found_by_message_id_alone_settles_the_part(app, client, sent):
    receipt = {k: v for k, v in _receipt(sent["part"], "failed", "3").items() if k != "client-ref"}
    assert client.post(STATUS_PATH, data=signed(receipt)).status_code == 200
    (part,) = parts_of(app, sent["message_id"])
    assert part["status"] == "failed" and part["reason"] == "The number is not in service."


def test_a_receipt_for_no_part_of_ours_is_acknowledged_and_ignored(app, client, sent):
    before = _snapshot(app)
    stranger = _receipt(sent["part"], **{"client-ref": "nobody", "messageId": "nothing"})
    assert client.post(STATUS_PATH, data=signed(stranger)).status_code == 200
    assert _snapshot(app) == before


def test_the_inbound_webhook_answers_vonages_unsigned_probe(client):
    assert client.get("/webhooks/vonage/inbound").status_code == 200
