"""Twoway's worker class: each worker's watchman says the worker is alive at every beat, and
the recovery checks run once a beat however many workers there are."""

from __future__ import annotations

from app import worker
from app.extensions import get_redis
from app.services import inbound, queues


def test_a_beat_says_the_worker_is_alive(app):
    worker.watch(app, "w1")
    with app.app_context():
        assert 0 < get_redis().ttl(queues.alive_key("w1")) <= queues.ALIVE_SECONDS


def test_the_recovery_checks_run_once_a_beat_however_many_workers_beat(app, monkeypatch):
    checks: list[object] = []
    monkeypatch.setattr(inbound, "check_recovery", lambda *, now: checks.append(now))

    for name in ("w1", "w2", "w3"):
        worker.watch(app, name)

    assert len(checks) == 1


def test_a_beat_queues_both_sweeps_with_no_text_received_or_sent(app):
    worker.watch(app, "w1")
    with app.app_context():
        queued = sorted(job.func_name for job in queues.get_queue().get_jobs())
    assert queued == ["jobs.inbound.sweep", "jobs.sending.sweep"]
