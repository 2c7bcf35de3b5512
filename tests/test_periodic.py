"""Periodic jobs on plain RQ: one chain however often it is asked for, and a duplicate run
does not start a second one; a job the workers' checks queue when due is queued once a
period, whatever became of its last run."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry

from app.extensions import get_redis
from app.models.types import utcnow
from app.services import periodic
from app.services.queues import get_queue

EVERY = timedelta(hours=1)


def tick() -> None:
    """A job body for the tests (never run)."""


def _scheduled(app) -> list[str]:
    with app.app_context():
        return ScheduledJobRegistry(queue=get_queue()).get_job_ids()


def test_asking_for_a_periodic_job_many_times_schedules_it_once(app):
    with app.app_context():
        assert periodic.ensure_scheduled(tick, EVERY, name="tick") is True
        assert periodic.ensure_scheduled(tick, EVERY, name="tick") is False
        assert periodic.ensure_scheduled(tick, EVERY, name="tick") is False
    assert len(_scheduled(app)) == 1


def test_the_expected_run_schedules_the_next_and_a_duplicate_run_does_not(app, monkeypatch):
    with app.app_context():
        periodic.ensure_scheduled(tick, EVERY, name="tick")
        [expected] = ScheduledJobRegistry(queue=get_queue()).get_job_ids()

        class Running:
            def __init__(self, job_id: str):
                self.id = job_id

        monkeypatch.setattr(periodic, "get_current_job", lambda: Running(expected))
        assert periodic.schedule_next(tick, EVERY, name="tick") is True
        monkeypatch.setattr(periodic, "get_current_job", lambda: Running(expected))
        assert periodic.schedule_next(tick, EVERY, name="tick") is False  # run again: a stray
        monkeypatch.setattr(periodic, "get_current_job", lambda: Running("someone-else"))
        assert periodic.schedule_next(tick, EVERY, name="tick") is False
    assert len(_scheduled(app)) == 2  # the first, and the one its run queued


def test_a_lost_chain_is_started_again(app):
    with app.app_context():
        periodic.ensure_scheduled(tick, EVERY, name="tick")
        get_redis().delete("periodic:tick")  # Redis lost it (or its key expired)
        assert periodic.ensure_scheduled(tick, EVERY, name="tick") is True


def _queued(app) -> int:
    with app.app_context():
        return get_queue().count


def test_a_due_job_is_queued_once_however_many_checks_ask(app):
    now = utcnow()
    with app.app_context():
        assert periodic.queue_when_due(tick, EVERY, name="tick", now=now) is True
        assert periodic.queue_when_due(tick, EVERY, name="tick", now=now) is False
        later = now + EVERY - timedelta(seconds=1)
        assert periodic.queue_when_due(tick, EVERY, name="tick", now=later) is False
    assert _queued(app) == 1


def test_a_due_job_is_queued_again_when_its_period_has_passed_whatever_became_of_the_last(app):
    now = utcnow()
    with app.app_context():
        periodic.queue_when_due(tick, EVERY, name="tick", now=now)
        get_queue().empty()  # its worker took it and died
        assert periodic.queue_when_due(tick, EVERY, name="tick", now=now + EVERY) is True
    assert _queued(app) == 1
