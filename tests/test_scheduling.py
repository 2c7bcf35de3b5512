"""One way to send later: rows claimed atomically when due and handled exactly once, whatever
workers race or die; the workers' watchman queues the dispatcher when a row is due."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from rq.registry import StartedJobRegistry

from app.extensions import db, get_redis
from app.models import Message, ScheduledSend
from app.services import scheduling
from app.services.queues import BOOKING, get_queue
from app.worker import watch
from tests.conftest import TEST_DATABASE_URL
from tests.scheduling_helpers import book, install_stand_in, make_client

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
PURPOSE = "test_send"


@pytest.fixture
def handled(monkeypatch):
    """A test purpose whose handler adds a message (tied to its row by the body)."""
    calls: list[int] = []

    def handler(row: ScheduledSend, now: datetime) -> Message:
        calls.append(row.id)
        message = Message(
            business_id=row.business_id,
            channel="text",
            direction="outbound",
            kind="transactional",
            body=f"row {row.id}",
            sender="+18885550000",
            recipient="+15557654321",
            status="queued",
            created_at=now,
            updated_at=now,
        )
        db.session.add(message)
        db.session.flush()
        return message

    monkeypatch.setitem(scheduling._handlers, PURPOSE, handler)
    return calls


@pytest.fixture
def business(make_business):
    return make_business()


def _schedule(business_id: int, due_at: datetime, purpose: str = PURPOSE, **kwargs) -> int:
    row = scheduling.schedule(business_id, purpose, due_at, now=NOW, **kwargs)
    db.session.commit()
    return row.id


def _row(row_id: int) -> ScheduledSend:
    return db.session.get(ScheduledSend, row_id, populate_existing=True)


def _messages() -> list[str]:
    return list(db.session.execute(db.select(Message.body).order_by(Message.id)).scalars())


def test_a_row_is_handled_once_when_due_and_not_before(app, business, handled):
    with app.app_context():
        row_id = _schedule(business["id"], NOW + timedelta(minutes=5))
        assert scheduling.dispatch_due(now=NOW) == 0
        assert scheduling.dispatch_due(now=NOW + timedelta(minutes=5)) == 1
        assert scheduling.dispatch_due(now=NOW + timedelta(minutes=6)) == 0
        row = _row(row_id)
        assert (row.state, row.attempts) == ("done", 1)
        assert _messages() == [f"row {row_id}"]
        assert db.session.get(Message, row.message_id).body == f"row {row_id}"
    assert handled == [row_id]


def test_due_rows_go_earliest_first(app, business, handled):
    with app.app_context():
        later = _schedule(business["id"], NOW - timedelta(minutes=1))
        earlier = _schedule(business["id"], NOW - timedelta(minutes=9))
        scheduling.dispatch_due(now=NOW)
    assert handled == [earlier, later]


def test_a_cancelled_row_never_goes_and_a_moved_one_goes_at_its_new_time(app, business, handled):
    with app.app_context():
        dropped = _schedule(business["id"], NOW, subject_id=7, slot="a")
        moved = _schedule(business["id"], NOW, subject_id=7, slot="b")
        assert scheduling.cancel((PURPOSE,), 7, slot="a", reason="Not wanted.", now=NOW) == 1
        assert scheduling.move(moved, NOW + timedelta(hours=1), now=NOW)
        db.session.commit()
        assert scheduling.dispatch_due(now=NOW + timedelta(minutes=59)) == 0
        assert scheduling.dispatch_due(now=NOW + timedelta(hours=1)) == 1
        assert (_row(dropped).state, _row(dropped).outcome) == ("cancelled", "Not wanted.")
    assert handled == [moved]


def test_a_sent_row_is_neither_moved_nor_cancelled(app, business, handled):
    with app.app_context():
        row_id = _schedule(business["id"], NOW, subject_id=7)
        scheduling.dispatch_due(now=NOW)
        assert scheduling.move(row_id, NOW + timedelta(hours=1), now=NOW) is False
        assert scheduling.cancel((PURPOSE,), 7, now=NOW) == 0
        assert _row(row_id).state == "done"


def test_a_handler_with_nothing_to_send_skips_its_row_with_the_reason(app, business, monkeypatch):
    def nothing(row, now):
        raise scheduling.SkipSend("The client opted out.")

    monkeypatch.setitem(scheduling._handlers, PURPOSE, nothing)
    with app.app_context():
        row_id = _schedule(business["id"], NOW)
        scheduling.dispatch_due(now=NOW)
        assert (_row(row_id).state, _row(row_id).outcome) == ("skipped", "The client opted out.")


def test_a_handler_that_fails_stores_nothing_and_its_row_is_tried_again_later(
    app, business, monkeypatch
):
    def half_then_fail(row, now):
        db.session.add(
            Message(
                business_id=row.business_id,
                channel="text",
                direction="outbound",
                kind="transactional",
                body="half made",
                sender="+18885550000",
                recipient="+15557654321",
            )
        )
        db.session.flush()
        raise RuntimeError("the database blinked")

    monkeypatch.setitem(scheduling._handlers, PURPOSE, half_then_fail)
    with app.app_context():
        row_id = _schedule(business["id"], NOW)
        scheduling.dispatch_due(now=NOW)
        row = _row(row_id)
        assert _messages() == []  # the handler's rows went with its failure
        assert row.state == "pending" and row.due_at == NOW + timedelta(seconds=30)
        assert "the database blinked" in row.outcome
        moment = NOW
        for _ in range(scheduling.MAX_ATTEMPTS - 1):
            moment = _row(row_id).due_at
            scheduling.dispatch_due(now=moment)
        row = _row(row_id)
        assert (row.state, row.attempts) == ("failed", scheduling.MAX_ATTEMPTS)
        assert scheduling.dispatch_due(now=moment + timedelta(days=1)) == 0


def test_a_row_claimed_by_a_worker_that_died_is_taken_back_and_handled_once(app, business, handled):
    with app.app_context():
        row_id = _schedule(business["id"], NOW)
        dead = scheduling.claim_due(now=NOW)  # claimed, then the worker died
        assert dead.row_ids == [row_id] and _row(row_id).state == "claimed"
        assert scheduling.dispatch_due(now=NOW + timedelta(seconds=30)) == 0  # not yet
        taken_back_at = NOW + scheduling.CLAIM_TIMEOUT + timedelta(seconds=1)
        assert scheduling.anything_due(taken_back_at)
        assert scheduling.dispatch_due(now=taken_back_at) == 1
        # The "dead" worker was only slow: its claim no longer holds the row.
        assert scheduling.handle_claimed(row_id, dead.token, now=taken_back_at) is None
        row = _row(row_id)
        assert (row.state, row.attempts) == ("done", 2)
        assert _messages() == [f"row {row_id}"]
    assert handled == [row_id]


def test_a_dispatcher_claims_no_more_than_its_batch_so_a_dead_one_delays_few(app, business):
    # On PostgreSQL this once claimed every due row: the update's `IN (SELECT … LIMIT n FOR
    # UPDATE SKIP LOCKED)` ran its subquery once per candidate row.
    with app.app_context():
        rows = [_schedule(business["id"], NOW - timedelta(seconds=n)) for n in range(12)]
        first = scheduling.claim_due(now=NOW, limit=5)
        second = scheduling.claim_due(now=NOW, limit=5)
        states = Counter(_row(row).state for row in rows)
    assert first.row_ids == rows[11:6:-1]  # the earliest due first
    assert second.row_ids == rows[6:1:-1]
    assert states == {"claimed": 10, "pending": 2}


def test_a_claim_taken_back_while_its_old_worker_finishes_leaves_one_message(
    app, business, handled
):
    with app.app_context():
        row_id = _schedule(business["id"], NOW)
        slow = scheduling.claim_due(now=NOW)
        later = NOW + scheduling.CLAIM_TIMEOUT + timedelta(seconds=1)
        assert scheduling.handle_claimed(row_id, slow.token, now=later) == "done"
        assert scheduling.dispatch_due(now=later) == 0  # the reclaim finds it done
        assert _messages() == [f"row {row_id}"]


# --- The dispatcher in the periodic machinery ------------------------------------------------


def _queued_dispatches() -> int:
    return sum(1 for job in get_queue(BOOKING).jobs if job.func_name == "jobs.scheduling.dispatch")


def test_the_watchman_queues_the_dispatcher_only_when_a_row_is_due(app, business, handled):
    with app.app_context():
        _schedule(business["id"], datetime.now(UTC) + timedelta(hours=1))
        watch(app, "worker-1")
        assert _queued_dispatches() == 0
        _schedule(business["id"], datetime.now(UTC) - timedelta(seconds=1))
        get_redis().delete("recovery-check")  # the next second's beat
        watch(app, "worker-1")
        assert _queued_dispatches() == 1


def test_many_checks_at_once_queue_one_dispatcher(app, business, handled):
    with app.app_context():
        _schedule(business["id"], NOW)
        assert scheduling.queue_dispatch_when_due(now=NOW) is True
        assert scheduling.queue_dispatch_when_due(now=NOW) is False
        assert _queued_dispatches() == 1


def test_the_queued_dispatcher_sends_every_due_row(app, business, handled, run_jobs):
    with app.app_context():
        due = [
            _schedule(business["id"], datetime.now(UTC) - timedelta(seconds=n)) for n in range(45)
        ]
        scheduling.queue_dispatch_when_due(now=datetime.now(UTC))
    run_jobs()
    assert sorted(handled) == sorted(due)
    with app.app_context():
        assert StartedJobRegistry(queue=get_queue(BOOKING)).count == 0


def test_the_demo_worker_sends_a_due_row_within_seconds(app, business, handled):
    from app.inprocess_worker import start_inprocess_worker

    with app.app_context():
        row_id = _schedule(business["id"], datetime.now(UTC) + timedelta(seconds=1))
    worker = start_inprocess_worker(app, poll_seconds=0.05)
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while handled != [row_id] and datetime.now(UTC) < deadline:
            threading.Event().wait(0.1)
    finally:
        worker.stop()
    assert handled == [row_id]
    assert worker.errors == []


# --- Workers racing (PostgreSQL) --------------------------------------------------------------

needs_postgresql = pytest.mark.skipif(
    not (TEST_DATABASE_URL or "").startswith("postgresql"),
    reason="racing workers need PostgreSQL's row locks (SKIP LOCKED); set TEST_DATABASE_URL "
    "to a PostgreSQL database (CI does)",
)


def _race(app, workers: int, rounds: int, now: datetime) -> list[BaseException]:
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with app.app_context():
                start.wait()
                for _ in range(rounds):
                    scheduling.dispatch_due(now=now, limit=1)
                db.session.remove()
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


@needs_postgresql
def test_two_workers_racing_on_one_due_reminder_send_it_once(app, make_business, monkeypatch):
    calls = install_stand_in(monkeypatch)
    business = make_business(time_zone="America/New_York")
    with app.app_context():
        client_id = make_client(business["id"], time_zone="America/New_York").id
    booked = []
    for round_ in range(10):  # ten races, each on one reminder just due
        starts = NOW + timedelta(days=3, hours=round_)
        with app.app_context():
            booked.append(book(business["id"], client_id, starts, now=NOW))
        assert _race(app, workers=2, rounds=2, now=starts - timedelta(hours=24)) == []
    assert [call["appointment_id"] for call in calls] == booked
    with app.app_context():
        reminders = db.select(Message.appointment_id).where(Message.auto_event == "reminder")
        assert sorted(db.session.execute(reminders).scalars()) == booked  # one each


@needs_postgresql
def test_workers_racing_on_many_due_rows_handle_each_exactly_once(app, business, handled):
    with app.app_context():
        rows = [_schedule(business["id"], NOW - timedelta(seconds=n)) for n in range(60)]
    errors = _race(app, workers=4, rounds=40, now=NOW)
    assert errors == []
    assert Counter(handled) == Counter(rows)
    with app.app_context():
        bodies = _messages()
        assert sorted(bodies) == sorted(f"row {row}" for row in rows)
        states = Counter(_row(row).state for row in rows)
    assert states == {"done": 60}
