"""Periodic jobs on plain RQ: one chain however often it is asked for, and a duplicate run
does not start a second one."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry

from app.extensions import get_redis
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
