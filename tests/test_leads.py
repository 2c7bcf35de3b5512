"""Leads (DESIGN.md §6): a text from a number no client of the business has makes a lead
client and tells staff; two texts at the same moment from one new number make one lead."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Client, ClientPhone, Conversation, InboundPart, Notification
from tests.conftest import page_text
from tests.inbound_helpers import (
    dedicated_number,
    deliver,
    handle_at_once,
    inbound_messages,
    make_known_client,
    text_fields,
)

NEW_NUMBER = "+15559870001"


@pytest.fixture
def business(app, make_business):
    made = make_business()
    dedicated_number(app, made["id"])
    return made


def _clients(app, business_id) -> list[Client]:
    with app.app_context():
        rows = list(
            db.session.execute(
                db.select(Client).where(Client.business_id == business_id).order_by(Client.id)
            ).scalars()
        )
        for row in rows:
            db.session.expunge(row)
        return rows


def test_a_text_from_an_unknown_number_makes_a_lead_named_after_the_number(
    app, client, business, run_jobs
):
    deliver(client, text_fields("Do you take new patients?", sender=NEW_NUMBER))
    run_jobs()
    (lead,) = _clients(app, business["id"])
    assert lead.is_lead
    assert lead.source == "inbound_text"
    assert lead.name == "(555) 987-0001"
    with app.app_context():
        assert db.session.execute(
            db.select(ClientPhone.number).where(ClientPhone.client_id == lead.id)
        ).scalars().all() == [NEW_NUMBER]
    (message,) = inbound_messages(app)
    assert message.client_id == lead.id


def test_a_new_lead_alerts_staff_and_needs_attention(app, client, business, run_jobs):
    deliver(client, text_fields("Hi!", sender=NEW_NUMBER))
    run_jobs()
    (lead,) = _clients(app, business["id"])
    with app.app_context():
        alert = db.session.execute(
            db.select(Notification).where(Notification.kind == "new_lead")
        ).scalar_one()
        assert alert.text == "New lead (555) 987-0001: Hi!"
        assert alert.link == f"/clients/{lead.id}?tab=conversation"
        assert db.session.execute(
            db.select(Conversation.needs_attention).where(Conversation.client_id == lead.id)
        ).scalar_one()


def test_a_new_leads_first_text_makes_one_notification_so_staff_get_one_push(
    app, client, business, run_jobs
):
    deliver(client, text_fields("Hi!", sender=NEW_NUMBER))
    run_jobs()
    with app.app_context():
        kinds = db.session.execute(db.select(Notification.kind)).scalars().all()
    assert kinds == ["new_lead"]


def test_a_second_text_from_the_lead_makes_no_second_lead_or_alert(app, client, business, run_jobs):
    for body in ("Hi!", "Are you open Saturday?"):
        deliver(client, text_fields(body, sender=NEW_NUMBER))
        run_jobs()
    assert len(_clients(app, business["id"])) == 1
    with app.app_context():
        alerts = db.session.execute(
            db.select(db.func.count(Notification.id)).where(Notification.kind == "new_lead")
        ).scalar_one()
    assert alerts == 1


def test_a_text_from_a_known_client_makes_no_lead(app, client, business, run_jobs):
    client_id = make_known_client(app, business["id"], number=NEW_NUMBER)
    deliver(client, text_fields("Hi", sender=NEW_NUMBER))
    run_jobs()
    assert [c.id for c in _clients(app, business["id"])] == [client_id]


def test_the_same_number_is_a_lead_of_each_business_it_texts(app, client, make_business, run_jobs):
    first = make_business()
    second = make_business()
    dedicated_number(app, first["id"], number="+18885550201")
    dedicated_number(app, second["id"], number="+18885550202")
    deliver(client, text_fields("Hi", sender=NEW_NUMBER, to="+18885550201"))
    deliver(client, text_fields("Hi", sender=NEW_NUMBER, to="+18885550202"))
    run_jobs()
    assert len(_clients(app, first["id"])) == 1
    assert len(_clients(app, second["id"])) == 1


@pytest.mark.parametrize("sender", ["72975", "ACMEBANK"])
def test_a_short_code_or_sender_name_makes_a_lead_named_as_it_came(
    app, client, business, run_jobs, sender
):
    deliver(client, text_fields("Your code is 1234", sender=sender))
    run_jobs()
    (lead,) = _clients(app, business["id"])
    assert lead.name == sender


def test_two_simultaneous_first_texts_from_one_number_make_one_lead(
    app, client, business, run_jobs
):
    """Each text's job runs in its own thread with its own database connection, released
    together, so both look for the number before either has stored it."""
    for body in ("First text", "Second text", "Third text", "Fourth text"):
        deliver(client, text_fields(body, sender=NEW_NUMBER))
    with app.app_context():
        part_ids = list(db.session.execute(db.select(InboundPart.id)).scalars())
    handle_at_once(app, part_ids)
    (lead,) = _clients(app, business["id"])
    messages = inbound_messages(app)
    assert len(messages) == 4
    assert {m.client_id for m in messages} == {lead.id}
    with app.app_context():
        alerts = db.session.execute(
            db.select(db.func.count(Notification.id)).where(Notification.kind == "new_lead")
        ).scalar_one()
    assert alerts == 1


SCRIPT = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


def test_an_html_payload_in_a_text_shows_as_text_everywhere(app, actions, business, run_jobs):
    deliver(actions.client, text_fields(SCRIPT, sender=NEW_NUMBER))
    run_jobs()
    (lead,) = _clients(app, business["id"])
    actions.sign_in(business["owner"][1])
    pages = {
        "conversation": actions.client.get(f"/messages/clients/{lead.id}"),
        "client card": actions.client.get(f"/clients/{lead.id}"),
        "notifications": actions.client.get("/notifications"),
    }
    for name, response in pages.items():
        raw = response.get_data(as_text=True)
        assert response.status_code == 200, name
        assert "<script>alert" not in raw, name
        assert "<img src=x" not in raw, name
        assert "&lt;script&gt;alert(" in raw, name
        assert SCRIPT in page_text(response), name
