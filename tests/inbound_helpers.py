"""Helpers for the inbound tests: a business's dedicated number in a given state (rows, no
Vonage), inbound texts as Vonage's SMS API sends them (signed), and what got stored."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Business, Client, ClientPhone, InboundPart, Message
from app.models.texting import DedicatedNumber, Verification
from app.models.types import utcnow
from app.services import inbound
from tests.sending_helpers import signed

INBOUND_PATH = "/webhooks/vonage/inbound"
DEDICATED = "+18885550123"
PERSON = "+15557654321"
SYSTEM = "+18885550000"  # TRANSACTIONAL_SYSTEM_NUMBER's default
MARKETING = "+18885550001"  # MARKETING_SYSTEM_NUMBER's default
_ids = itertools.count(1)


def dedicated_number(
    app: Flask,
    business_id: int,
    *,
    number: str = DEDICATED,
    status: str = "active",
    verified: bool = True,
    sms_setting: str | None = None,
) -> int:
    """Gives the business a dedicated number (rows only) in `status`, verified or pending."""
    with app.app_context():
        business = db.session.get(Business, business_id)
        business.sms_setting = sms_setting or ("two_way" if status == "active" else "do_not_reply")
        row = DedicatedNumber(
            business_id=business_id,
            number=number,
            country=business.country,
            status=status,
            activated_at=datetime(2027, 1, 1, tzinfo=UTC),
        )
        db.session.add(row)
        db.session.flush()
        db.session.add(
            Verification(
                business_id=business_id,
                dedicated_number_id=row.id,
                state="verified" if verified else "pending",
                needs_submission=False,
                registration_id=f"reg-{row.id}",
            )
        )
        db.session.commit()
        return row.id


def text_fields(
    text: str = "Hi, can I move my appointment?",
    *,
    sender: str = PERSON,
    to: str = DEDICATED,
    message_id: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """An inbound SMS as Vonage sends it (unsigned): numbers without the +, strings only."""
    fields = {
        "msisdn": sender.lstrip("+"),
        "to": to.lstrip("+"),
        "messageId": message_id or f"0A0000000{next(_ids):07d}",
        "text": text,
        "type": "text",
        "keyword": (text.split() or [""])[0].upper(),
        "message-timestamp": "2027-01-15 15:00:00",
        "api-key": "sandbox-key",
    }
    fields.update(extra)
    return fields


def concat_fields(parts: list[str], ref: str = "42", **kwargs) -> list[dict[str, str]]:
    """The parts of a long text, in order, each with its concat fields."""
    return [
        text_fields(
            piece,
            concat="true",
            **{"concat-ref": ref, "concat-total": str(len(parts)), "concat-part": str(number)},
            **kwargs,
        )
        for number, piece in enumerate(parts, start=1)
    ]


def deliver(client: FlaskClient, fields: dict[str, str], how: str = "form", **sign) -> int:
    """Posts the text to the webhook signed, as GET query, POST form or POST JSON."""
    params = signed(fields, **sign)
    if how == "get":
        response = client.get(INBOUND_PATH, query_string=params)
    elif how == "json":
        response = client.post(INBOUND_PATH, json=params)
    else:
        response = client.post(INBOUND_PATH, data=params)
    return response.status_code


def stored_parts(app: Flask) -> list[InboundPart]:
    with app.app_context():
        rows = db.session.execute(db.select(InboundPart).order_by(InboundPart.id)).scalars()
        result = list(rows)
        for row in result:
            db.session.expunge(row)
        return result


def inbound_messages(app: Flask) -> list[Message]:
    """Every inbound message (detached, so tests can read its fields)."""
    with app.app_context():
        rows = list(
            db.session.execute(
                db.select(Message).where(Message.direction == "inbound").order_by(Message.id)
            ).scalars()
        )
        for row in rows:
            db.session.expunge(row)
        return rows


def outbound_messages(app: Flask) -> list[Message]:
    with app.app_context():
        rows = list(
            db.session.execute(
                db.select(Message).where(Message.direction == "outbound").order_by(Message.id)
            ).scalars()
        )
        for row in rows:
            db.session.expunge(row)
        return rows


def make_known_client(app: Flask, business_id: int, name: str = "Sam Client", number=PERSON) -> int:
    with app.app_context():
        client = Client(business_id=business_id, name=name, search_text=name.lower())
        client.phones = [ClientPhone(business_id=business_id, number=number, is_primary=True)]
        db.session.add(client)
        db.session.commit()
        return client.id


def handle_at_once(app: Flask, part_ids: list[int]) -> None:
    """Runs each part's handling in its own thread with its own database connection, all
    released together (so each looks before any has stored anything); raises what any raised."""
    start = threading.Barrier(len(part_ids))
    errors: list[BaseException] = []

    def handle(part_id: int) -> None:
        with app.app_context():
            try:
                start.wait()
                inbound.handle_part(part_id, now=utcnow())
            except BaseException as error:
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=handle, args=(part_id,)) for part_id in part_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


def texted_from_system(
    app: Flask,
    business_id: int,
    client_id: int,
    number: str = SYSTEM,
    *,
    kind: str = "transactional",
    body: str = "Reminder: your appointment is tomorrow at 3pm.",
) -> int:
    """An outbound text from a system number to the client, an hour ago (as a reminder or a
    campaign would be): the person's replies to that number belong to this business."""
    with app.app_context():
        message = Message(
            business_id=business_id,
            client_id=client_id,
            channel="text",
            direction="outbound",
            kind=kind,
            body=body,
            sender=number,
            recipient=PERSON,
            status="delivered",
            created_at=utcnow() - timedelta(hours=1),
        )
        db.session.add(message)
        db.session.commit()
        return message.id
