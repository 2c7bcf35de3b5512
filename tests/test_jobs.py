"""RQ jobs: queued by the app, run with their own app context, delayed jobs wait."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rq import get_current_job
from rq.command import PUBSUB_CHANNEL_TEMPLATE
from rq.registry import ScheduledJobRegistry

from app.inprocess_worker import start_inprocess_worker
from app.services.mail import send_email
from app.services.queues import enqueue, get_queue
from jobs.mail import deliver_email


def test_a_queued_job_runs_later_in_its_own_app_context(app, run_jobs, mailbox):
    with app.test_request_context():
        send_email(to="someone@example.com", subject="Hello", body="Hi there")
    assert mailbox() == []  # queued, not sent inline
    run_jobs()
    [email] = mailbox()
    assert (email["To"], email["Subject"]) == ("someone@example.com", "Hello")


def test_every_job_is_queued_with_a_timeout(app):
    with app.app_context():
        job = enqueue(deliver_email, to="a@example.com", subject="s", body="b")
        assert job.timeout and job.timeout > 0
        assert job.args == () and job.kwargs["to"] == "a@example.com"


def test_a_delayed_job_waits_until_it_is_due(app, run_jobs, mailbox):
    with app.app_context():
        job = enqueue(
            deliver_email, to="a@example.com", subject="later", body="b", delay=timedelta(hours=1)
        )
        assert get_queue().count == 0
    run_jobs()
    assert mailbox() == []
    with app.app_context():  # the clock moves on an hour: the job is due
        ScheduledJobRegistry(queue=get_queue()).schedule(
            job, datetime.now(UTC) - timedelta(seconds=1)
        )
    run_jobs()
    assert [email["Subject"] for email in mailbox()] == ["later"]


def test_a_delayed_job_keeps_its_positional_arguments(app):
    with app.app_context():
        job = enqueue(deliver_email, "positional", delay=timedelta(seconds=5), to="a@example.com")
        assert job.args == ("positional",) and job.kwargs == {"to": "a@example.com"}


def test_the_in_process_worker_runs_queued_jobs_in_the_background(app, mailbox):
    worker = start_inprocess_worker(app, poll_seconds=0.05)
    try:
        with app.app_context():
            enqueue(deliver_email, to="a@example.com", subject="background", body="b")
        deadline = time.monotonic() + 10
        while not mailbox() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [email["Subject"] for email in mailbox()] == ["background"]
    assert not worker.thread.is_alive()


def subscribers_to_my_workers_command_channel() -> int:
    """A job: how many listen on the rq command channel of the worker running it."""
    job = get_current_job()
    channel = PUBSUB_CHANNEL_TEMPLATE % job.worker_name
    [(_, subscribers)] = job.connection.pubsub_numsub(channel)
    return subscribers


def test_the_in_process_worker_listens_on_no_command_channel(app, run_jobs):
    """Its pub/sub thread could hold up a stop (or the next jobs) for a minute on real Redis."""
    with app.app_context():
        job = enqueue(subscribers_to_my_workers_command_channel)
    run_jobs()
    job.refresh()
    assert job.is_finished, job.latest_result()
    assert job.return_value() == 0
