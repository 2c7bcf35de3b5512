"""Helpers for the sending tests: a business with a dedicated number, a client with a phone,
and delivery receipts caught from the sandbox and handed to the app as Vonage would."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Client, ClientPhone, Message, MessagePart
from app.services import texting, verification
from sandbox import SandboxServer
from sandbox.signing import sign_params
from tests.sandbox_fixtures import WebhookCatcher

STATUS_PATH = "/webhooks/vonage/status"
SECRET = "sandbox-signature-secret"


def give_dedicated_number(app: Flask, business_id: int, sandbox: SandboxServer, run_jobs) -> str:
    """Turns two-way texting on (a number bought from the sandbox) and verifies it."""
    with app.app_context():
        owner_id = db.session.execute(
            db.text("select id from \"user\" where business_id = :b and role = 'owner'"),
            {"b": business_id},
        ).scalar_one()
        texting.activate_two_way_texting(business_id, user_id=owner_id, now=_now())
    run_jobs()
    with app.app_context():
        number = texting.held_number(business_id)
        registration = number.verification.registration_id
        sandbox.approve(registration)
        verification.poll_verifications(now=_now())
        return texting.held_number(business_id).number


def _now():
    from app.models.types import utcnow

    return utcnow()


def make_client(app: Flask, business_id: int, phone: str | None = "+15557654321") -> int:
    with app.app_context():
        client = Client(business_id=business_id, name="Sam Client", search_text="sam client")
        db.session.add(client)
        if phone:
            db.session.add(
                ClientPhone(business_id=business_id, client=client, number=phone, is_primary=True)
            )
        db.session.commit()
        return client.id


def store_unread_text(
    business_id: int, client_id: int, body: str = "Can I come at 4?", *, number="+15557654321"
) -> int:
    """In an app context: an inbound text from the client that nobody has read, in the inbox
    as the inbound pipeline stores it (the row and its conversation needing attention)."""
    from app.services import inbox

    message = Message(
        business_id=business_id,
        client_id=client_id,
        channel="text",
        direction="inbound",
        kind="direct",
        body=body,
        sender=number,
        recipient="+18885550123",
        status="received",
    )
    db.session.add(message)
    db.session.flush()
    inbox.record_message(message, attention=True, now=_now())
    db.session.commit()
    return message.id


def parts_of(app: Flask, message_id: int) -> list[dict]:
    with app.app_context():
        parts = db.session.execute(
            db.select(MessagePart)
            .where(MessagePart.message_id == message_id)
            .order_by(MessagePart.index)
        ).scalars()
        return [
            {
                "id": p.id,
                "status": p.status,
                "client_ref": p.client_ref,
                "reason": p.reason,
                "err_code": p.err_code,
                "attempts": p.attempts,
                "vonage_message_id": p.vonage_message_id,
                "text": p.text,
                "refunded": p.refunded,
            }
            for p in parts
        ]


def message_status(app: Flask, message_id: int) -> str:
    with app.app_context():
        return db.session.get(Message, message_id).status


def sends(sandbox: SandboxServer) -> list[dict]:
    """The SMS API requests the sandbox received, duplicates included."""
    return sandbox.requests("/sms/json")


def accepted(sandbox: SandboxServer) -> list[dict]:
    """The parts the sandbox accepted (what the client's phone got)."""
    return sandbox.snapshot()["messages"]


def catch_receipts(sandbox: SandboxServer, catcher: WebhookCatcher, method: str = "POST") -> None:
    sandbox.configure(status_url=catcher.url_for(STATUS_PATH), webhook_method=method)


def replay(client: FlaskClient, caught) -> int:
    """Hands one caught webhook to the app exactly as it arrived; returns the status code."""
    if caught.method == "GET":
        response = client.get(STATUS_PATH, query_string=caught.query)
    elif caught.body_kind == "json":
        response = client.post(STATUS_PATH, json=caught.json)
    else:
        response = client.post(STATUS_PATH, data=caught.form)
    return response.status_code


def deliver_receipts(client: FlaskClient, catcher: WebhookCatcher, count: int) -> list:
    caught = catcher.wait_for(count, STATUS_PATH)
    for receipt in caught:
        assert replay(client, receipt) == 200
    return caught


def signed(params: dict, *, now: float | None = None) -> dict[str, str]:
    return sign_params(params, SECRET, "sha256", now=now)


def run_until_settled(app: Flask, run_jobs, message_ids: list[int], timeout: float = 20) -> None:
    """Runs jobs (retries included) until no part of these messages is queued or sending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_jobs()
        with app.app_context():
            waiting = db.session.execute(
                db.select(MessagePart.id).where(
                    MessagePart.message_id.in_(message_ids),
                    MessagePart.status.in_(("queued", "sending")),
                )
            ).first()
        if waiting is None:
            return
        time.sleep(0.1)
    raise AssertionError("parts still waiting to be sent")
