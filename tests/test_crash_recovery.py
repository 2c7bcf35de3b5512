"""Crash recovery in seconds (issue 10 item 6), with real processes: `rq worker` processes
started here exactly as in production (`--with-scheduler --worker-class app.worker.Worker`),
on real Redis and the suite's database, and killed here with SIGKILL (each with its scheduler
process, as when its machine or container dies). Every text must become a message exactly
once, within RECOVERY_BOUND of the crash. These tests need real Redis: worker processes can't
share the in-process stand-in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, update

from app.extensions import db, get_redis
from app.models import InboundPart, Message
from app.models.types import utcnow
from app.services import inbound, queues
from tests.conftest import TEST_REDIS_URL
from tests.inbound_helpers import (
    dedicated_number,
    deliver,
    inbound_messages,
    make_known_client,
    text_fields,
)

pytestmark = pytest.mark.skipif(
    not TEST_REDIS_URL, reason="needs real Redis (TEST_REDIS_URL): worker processes share it"
)

ROOT = Path(__file__).resolve().parent.parent
RQ = str(Path(sys.executable).parent / "rq")  # this virtualenv's rq
RECOVERY_BOUND = 10.0  # seconds from a crash until every text it left behind is a message
START_BOUND = 60.0  # seconds a worker may take to start (it builds the app) on a busy machine


class Workers:
    """`rq worker` processes of this test, each in its own process group (the worker and the
    scheduler process it forks), logging to a file each."""

    def __init__(self, database_url: str, logs: Path):
        self.database_url = database_url
        self.logs = logs
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, *names: str) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": TEST_REDIS_URL or "",
            "SECRET_KEY": "test-secret-key",
            "SANDBOX": "1",
        }
        for name in names:
            log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
            self.processes[name] = subprocess.Popen(
                [RQ, "worker", "--with-scheduler", "--worker-class", "app.worker.Worker"]
                + ["--url", TEST_REDIS_URL or "", "--name", name, *queues.LANES],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()  # the child holds its own copy
        redis = get_redis()
        _wait_until(
            lambda: all(redis.exists(queues.alive_key(name)) for name in names),
            START_BOUND,
            lambda: "workers did not start:\n" + self.output(),
        )

    def kill(self, name: str) -> None:
        """SIGKILL for the worker and its scheduler process, as a crash would."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(self.logs.iterdir())
        )

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):  # killed by the test already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def workers(app, database_url, tmp_path) -> Iterator[Workers]:
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    started = Workers(database_url, logs)
    with app.app_context():
        yield started
        started.stop()


@pytest.fixture
def business(app, make_business):
    made = make_business()
    dedicated_number(app, made["id"])
    made["client_id"] = make_known_client(app, made["id"])
    return made


def _wait_until(done: Callable[[], bool], seconds: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, message()
        time.sleep(0.02)


def _messages_made(app) -> int:
    with app.app_context():
        count = db.session.scalar(db.select(func.count()).select_from(Message))
        db.session.rollback()  # a fresh snapshot next time
        return count or 0


def _parts_handled(app) -> int:
    with app.app_context():
        count = db.session.scalar(
            db.select(func.count())
            .select_from(InboundPart)
            .where(InboundPart.handled_at.is_not(None))
        )
        db.session.rollback()
        return count or 0


def _assert_each_text_became_one_message(app, bodies: list[str]) -> None:
    made = sorted(message.body for message in inbound_messages(app))
    assert made == sorted(bodies)  # every text once: none lost, none twice


def test_parts_a_killed_worker_had_taken_are_handled_within_seconds(app, client, business, workers):
    bodies = [f"text {number}" for number in range(120)]
    for body in bodies:
        assert deliver(client, text_fields(body)) == 200
    redis = get_redis()
    workers.start("w1", "w2")
    in_hand: dict[str, int] = {}

    def someone_took_parts() -> bool:
        for name in ("w1", "w2"):
            in_hand[name] = redis.llen(f"{inbound.NEW_PARTS}:taken:{name}")
        return any(in_hand.values())

    _wait_until(someone_took_parts, START_BOUND, lambda: "no drain ran:\n" + workers.output())
    victim = max(in_hand, key=in_hand.__getitem__)
    workers.kill(victim)
    crashed_at = time.monotonic()
    left_in_its_hands = redis.llen(f"{inbound.NEW_PARTS}:taken:{victim}")
    assert left_in_its_hands > 0  # killed mid-drain, with parts taken and not handled

    _wait_until(
        lambda: _messages_made(app) >= len(bodies),
        RECOVERY_BOUND - (time.monotonic() - crashed_at),
        lambda: f"{_messages_made(app)} of {len(bodies)} texts handled\n" + workers.output(),
    )
    _assert_each_text_became_one_message(app, bodies)


def test_a_part_stored_by_a_web_process_that_died_before_queuing_it_is_handled_within_seconds(
    app, client, business, workers, monkeypatch
):
    workers.start("w1")
    with monkeypatch.context() as patch:
        patch.setattr(inbound, "queue_part", lambda part_id: None)  # the web process died here
        assert deliver(client, text_fields("stored, never queued")) == 200
    crashed_at = time.monotonic()

    _wait_until(
        lambda: _messages_made(app) >= 1,
        RECOVERY_BOUND - (time.monotonic() - crashed_at),
        lambda: "the text was not handled\n" + workers.output(),
    )
    _assert_each_text_became_one_message(app, ["stored, never queued"])


def _running_sweep_worker() -> str | None:
    registry = StartedJobRegistry(queue=queues.get_queue())
    for job_id in registry.get_job_ids():
        job = Job.fetch(job_id, connection=get_redis())
        if job.func_name == "jobs.inbound.sweep" and job.worker_name:
            return job.worker_name
    return None


def test_a_sweep_killed_mid_run_is_queued_again_by_the_next_check_without_a_text(
    app, client, business, workers, monkeypatch
):
    bodies = [f"overdue {number}" for number in range(150)]
    with monkeypatch.context() as patch:
        patch.setattr(inbound, "queue_part", lambda part_id: None)  # only the sweep finds them
        for body in bodies:
            deliver(client, text_fields(body))
    with app.app_context():
        db.session.execute(  # received two minutes ago: the sweep's, not the frequent check's
            update(InboundPart).values(received_at=utcnow() - timedelta(minutes=2))
        )
        db.session.commit()
    workers.start("w1", "w2")  # the first check queues the sweep at once: it was never run
    sweeper: list[str] = []

    def sweep_under_way() -> bool:
        name = _running_sweep_worker()
        if name and _parts_handled(app) > 0:
            sweeper.append(name)
        return bool(sweeper)

    _wait_until(sweep_under_way, START_BOUND, lambda: "no sweep ran:\n" + workers.output())
    workers.kill(sweeper[0])
    assert _parts_handled(app) < len(bodies)  # killed mid-sweep

    # A minute passes (the clock moved, in Redis) and no text comes: the survivor's check
    # queues the next sweep, which handles the rest.
    get_redis().set("periodic:inbound-sweep:due", utcnow().timestamp())
    _wait_until(
        lambda: _messages_made(app) >= len(bodies),
        RECOVERY_BOUND,
        lambda: f"{_messages_made(app)} of {len(bodies)} texts handled\n" + workers.output(),
    )
    _assert_each_text_became_one_message(app, bodies)
