"""The webhook hands stored parts to a draining job through a Redis list: a burst of texts
queues one job (not one per text), every part is handled exactly once, a part that arrives
while a drain runs never waits for the next burst, and the frequent recovery check hands over
again what a dead worker had taken or a dead web process never handed over (moving the clock
here; tests/test_crash_recovery.py kills real worker processes)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import get_redis
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


def _take_as(worker: str) -> list[str]:
    """What a drain running on `worker` does first: it takes the waiting parts."""
    queues.start_draining(inbound.NEW_PARTS)
    return queues.take(inbound.NEW_PARTS, 10, worker)


def test_a_part_taken_by_a_worker_that_is_gone_is_handed_over_again_by_the_check(
    app, client, business, run_jobs
):
    deliver(client, text_fields("taken, then the worker died"))
    with app.app_context():
        queues.get_queue().empty()
        assert len(_take_as("worker-1")) == 1  # …and never handled
        get_redis().delete(queues.alive_key("worker-1"))  # its watchman stopped: it is gone

        inbound.check_recovery(now=utcnow())

    run_jobs()
    assert [m.body for m in inbound_messages(app)] == ["taken, then the worker died"]


def test_a_part_in_the_hands_of_a_live_worker_is_left_to_it(app, client, business):
    deliver(client, text_fields("being handled"))
    with app.app_context():
        queues.get_queue().empty()
        _take_as("worker-1")  # alive: the take said so, and its watchman keeps saying it

        inbound.check_recovery(now=utcnow() + inbound.HANDOVER_GRACE + timedelta(seconds=1))

        assert get_redis().llen(inbound.NEW_PARTS) == 0
    assert _drain_jobs_queued(app) == 0
    assert inbound_messages(app) == []


def test_a_handled_part_leaves_the_workers_hands(app, client, business, run_jobs):
    deliver(client, text_fields("handled"))
    run_jobs()
    with app.app_context():
        assert queues.in_hand(inbound.NEW_PARTS) == set()


def test_a_part_stored_but_never_handed_over_is_handed_over_by_the_check(
    app, client, business, run_jobs, monkeypatch
):
    with monkeypatch.context() as patch:
        patch.setattr(inbound, "queue_part", lambda part_id: None)  # the web process died here
        deliver(client, text_fields("stored, never queued"))
    with app.app_context():
        inbound.check_recovery(now=utcnow())  # too soon to tell from a hand-over under way
    run_jobs()
    assert inbound_messages(app) == []

    with app.app_context():
        inbound.check_recovery(now=utcnow() + inbound.HANDOVER_GRACE + timedelta(seconds=1))
    run_jobs()

    assert [m.body for m in inbound_messages(app)] == ["stored, never queued"]


def test_a_part_waiting_in_the_list_is_not_handed_over_again(app, client, business):
    deliver(client, text_fields("waiting for a worker"))
    with app.app_context():
        inbound.check_recovery(now=utcnow() + inbound.HANDOVER_GRACE + timedelta(seconds=1))

        assert get_redis().llen(inbound.NEW_PARTS) == 1


def test_a_drain_job_lost_before_it_started_is_replaced_by_the_check(app, client, business):
    deliver(client, text_fields("its drain was lost"))
    with app.app_context():
        queues.get_queue().empty()  # a worker took the drain job and died before it started
        inbound.check_recovery(now=utcnow())
        assert _drain_jobs_queued(app) == 0  # its wake flag says a drain is coming…
        get_redis().delete(inbound.NEW_PARTS + ":wake")  # …until the flag lapses

        inbound.check_recovery(now=utcnow())

    assert _drain_jobs_queued(app) == 1


def _sweeps_queued(app) -> int:
    with app.app_context():
        return sum(1 for job in queues.get_queue().get_jobs() if job.func_name.endswith(".sweep"))


def test_the_check_queues_the_sweep_once_a_minute_without_any_text(app):
    with app.app_context():
        now = utcnow()
        inbound.check_recovery(now=now)
        inbound.check_recovery(now=now + inbound.SWEEP_EVERY - timedelta(seconds=1))
        assert _sweeps_queued(app) == 1

        inbound.check_recovery(now=now + inbound.SWEEP_EVERY)

    assert _sweeps_queued(app) == 2
