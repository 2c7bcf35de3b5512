"""The webhook hands stored parts to a draining job through a Redis list: a burst of texts
queues one job (not one per text), every part is handled exactly once, a part that arrives
while a drain runs never waits for the next burst, and a part a dead worker took is handled
by the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.models.types import utcnow
from app.services import inbound, queues
from tests.inbound_helpers import (
    dedicated_number,
    deliver,
    inbound_messages,
    make_known_client,
    stored_parts,
    text_fields,
)


@pytest.fixture
def business(app, make_business):
    made = make_business()
    dedicated_number(app, made["id"])
    made["client_id"] = make_known_client(app, made["id"])
    return made


def _drain_jobs_queued(app) -> int:
    with app.app_context():
        queue = queues.get_queue()
        return sum(1 for job in queue.get_jobs() if job.func_name.endswith("handle_new_parts"))


def test_a_burst_of_texts_queues_one_drain_that_handles_each_text_once(
    app, client, business, run_jobs
):
    for number in range(30):
        assert deliver(client, text_fields(f"text {number}")) == 200
    assert _drain_jobs_queued(app) == 1

    run_jobs()

    assert sorted(m.body for m in inbound_messages(app)) == sorted(f"text {n}" for n in range(30))
    assert all(part.handled_at is not None for part in stored_parts(app))


def test_a_text_arriving_while_a_drain_runs_wakes_another_drain(app, client, business):
    deliver(client, text_fields("first"))
    with app.app_context():
        queues.start_draining(inbound.NEW_PARTS)  # a drain has started and taken nothing yet
        queues.get_queue().empty()
    deliver(client, text_fields("second, during the drain"))

    assert _drain_jobs_queued(app) == 1


def test_a_drain_with_a_full_batch_asks_another_worker_to_help(app, client, business):
    for number in range(inbound.DRAIN_BATCH + 5):
        deliver(client, text_fields(f"text {number}"))
    with app.app_context():
        queues.get_queue().empty()  # the drain the first text queued, taken by a worker

        handled = inbound.handle_new_parts()

    assert handled == inbound.DRAIN_BATCH + 5
    assert _drain_jobs_queued(app) == 1  # the helper, which will find the list empty


def test_a_part_taken_by_a_worker_that_died_is_handled_by_the_sweep(app, client, business):
    deliver(client, text_fields("taken, then the worker died"))
    with app.app_context():
        queues.start_draining(inbound.NEW_PARTS)
        assert len(queues.take(inbound.NEW_PARTS, 10)) == 1  # …and never handled

        inbound.sweep(now=utcnow() + inbound.LOST_JOB_AFTER + timedelta(seconds=1))

    assert [m.body for m in inbound_messages(app)] == ["taken, then the worker died"]
