"""Long texts arrive as concatenated parts, in any order, maybe twice, maybe not all: each
becomes one message, whole once every part is here, or marked incomplete after the time-out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import InboundPart
from app.models.types import utcnow
from app.services import inbound
from tests.inbound_helpers import (
    concat_fields,
    dedicated_number,
    deliver,
    handle_at_once,
    inbound_messages,
    make_known_client,
    stored_parts,
    text_fields,
)

PIECES = ["The first part, ", "the second part, ", "and the last part."]


@pytest.fixture
def business(app, make_business):
    made = make_business()
    dedicated_number(app, made["id"])
    made["client_id"] = make_known_client(app, made["id"])
    return made


def test_three_parts_in_order_3_1_2_with_a_duplicate_of_2_make_one_message(
    app, client, business, run_jobs
):
    first, second, third = concat_fields(PIECES)
    for fields in (third, first, second, second):
        assert deliver(client, fields) == 200
        run_jobs()
    (message,) = inbound_messages(app)
    assert message.body == "The first part, the second part, and the last part."
    assert not message.incomplete
    assert len(stored_parts(app)) == 3
    assert {part.message_id for part in stored_parts(app)} == {message.id}


def test_a_long_text_shows_nothing_until_its_last_part_arrives(app, client, business, run_jobs):
    first, second, _ = concat_fields(PIECES)
    deliver(client, first)
    deliver(client, second)
    run_jobs()
    assert inbound_messages(app) == []


def test_parts_in_any_delivery_form_assemble_together(app, client, business, run_jobs):
    for fields, how in zip(concat_fields(PIECES), ["json", "get", "form"], strict=True):
        deliver(client, fields, how)
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.body == "".join(PIECES)


def test_a_reused_concat_ref_from_another_sender_is_another_text(app, client, business, run_jobs):
    make_known_client(app, business["id"], "Alex", "+15550001111")
    mine = concat_fields(["a", "b"], ref="9")
    theirs = concat_fields(["c", "d"], ref="9", sender="+15550001111")
    for fields in (mine[0], theirs[1], theirs[0], mine[1]):
        deliver(client, fields)
    run_jobs()
    assert sorted(m.body for m in inbound_messages(app)) == ["ab", "cd"]


def test_missing_parts_show_incomplete_after_the_time_out_with_gaps(
    app, client, business, run_jobs
):
    first, _, third = concat_fields(PIECES)
    deliver(client, first)
    deliver(client, third)
    run_jobs()
    with app.app_context():
        inbound.sweep(now=utcnow() + inbound.CONCAT_TIMEOUT - timedelta(seconds=5))
    assert inbound_messages(app) == []  # still within the time-out: wait for part 2
    with app.app_context():
        inbound.sweep(now=utcnow() + inbound.CONCAT_TIMEOUT + timedelta(seconds=5))
    (message,) = inbound_messages(app)
    assert message.incomplete
    assert message.body == "The first part, …and the last part."
    assert message.visibility == "inbox"


def test_a_part_that_arrives_after_the_time_out_fills_its_gap(app, client, business, run_jobs):
    first, second, third = concat_fields(PIECES)
    deliver(client, first)
    deliver(client, third)
    run_jobs()
    with app.app_context():
        inbound.sweep(now=utcnow() + inbound.CONCAT_TIMEOUT + timedelta(seconds=5))
    deliver(client, second)
    run_jobs()
    (message,) = inbound_messages(app)
    assert message.body == "".join(PIECES)
    assert not message.incomplete


def test_an_incomplete_text_shows_the_incomplete_note_in_the_conversation(
    app, actions, business, run_jobs
):
    first, _, _ = concat_fields(PIECES)
    deliver(actions.client, first)
    with app.app_context():
        inbound.sweep(now=utcnow() + inbound.CONCAT_TIMEOUT + timedelta(seconds=5))
    actions.sign_in(business["owner"][1])
    page = actions.client.get(f"/messages/clients/{business['client_id']}").get_data(as_text=True)
    assert "Incomplete — some parts did not arrive" in page


def test_a_part_whose_job_was_lost_is_handled_by_the_sweep(app, client, business):
    deliver(client, text_fields("Lost job"))  # its job is never run
    with app.app_context():
        inbound.sweep(now=utcnow() + inbound.LOST_JOB_AFTER - timedelta(seconds=5))
    assert inbound_messages(app) == []
    with app.app_context():
        inbound.sweep(now=utcnow() + inbound.LOST_JOB_AFTER + timedelta(seconds=5))
    assert [m.body for m in inbound_messages(app)] == ["Lost job"]


def test_handling_a_part_twice_changes_nothing(app, client, business, run_jobs):
    deliver(client, text_fields("Twice"))
    (part,) = stored_parts(app)
    with app.app_context():
        inbound.handle_part(part.id, now=utcnow())
        inbound.handle_part(part.id, now=utcnow())
    assert [m.body for m in inbound_messages(app)] == ["Twice"]


def test_jobs_racing_for_the_last_parts_make_one_message(app, client, business):
    """Every part's job runs at once, each in its own thread (its own connection)."""
    for fields in concat_fields(PIECES):
        deliver(client, fields)
    with app.app_context():
        part_ids = list(db.session.execute(db.select(InboundPart.id)).scalars())
    handle_at_once(app, part_ids * 2)
    (message,) = inbound_messages(app)
    assert message.body == "".join(PIECES)
