"""The RQ worker and scheduler inside the app's own process, for development and the demo
(production runs `rq worker --with-scheduler --worker-class app.worker.Worker` processes
against real Redis instead). Its loop also beats as a worker's watchman does (`app.worker`),
so the demo recovers from lost hand-overs and runs the inbound sweep too. It listens to every
lane, in priority order (`app.services.queues.LANES`), as production's workers do."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

import jobs
from app.services.queues import LANES
from app.worker import watch

log = logging.getLogger(__name__)


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run outside the main thread: signals belong to the main one, so
    no signal handlers, and job time-outs are enforced by a timer instead of SIGALRM.

    It listens for no commands on rq's pub/sub channel either (`rq`'s shutdown and kill-job
    commands): it is stopped by `InProcessWorker.stop()`. Each burst would otherwise subscribe
    and unsubscribe a pub/sub thread, and stopping that thread can take a minute on real Redis:
    rq reads it with a 60 s timeout, and when the unsubscribe reply wakes it before rq clears
    its running flag it goes back to wait 60 s for a subscription, which redis-py 8's
    `PubSubWorkerThread.stop()` joins. Jobs due meanwhile would wait that long."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    def subscribe(self) -> None:
        pass


def run_pending_jobs(app: Flask) -> bool:
    """Runs every job that is due, in this thread; True if any ran. Tests call this to drive
    jobs deterministically; the background loop below calls it continuously."""
    jobs.use_app(app)
    connection = app.extensions["twoway.redis"]
    queues = [Queue(name, connection=connection) for name in LANES]  # in priority order
    scheduler = RQScheduler(queues, connection=connection, logging_level=logging.WARNING)
    scheduler._connection = connection  # share the in-process stand-in, don't reconnect
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    worker = ThreadWorker(queues, connection=connection)
    ran = False
    while worker.work(burst=True, logging_level="WARNING"):
        ran = True  # a job may have queued another: go round until the queues are empty
    return ran


class InProcessWorker:
    """A daemon thread that runs jobs (and scheduled jobs) as they come due, until stopped."""

    def __init__(self, app: Flask, poll_seconds: float = 0.2):
        self.app = app
        self.poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self.errors: list[Exception] = []  # loop failures, kept for whoever runs it (tests)
        self.thread = threading.Thread(target=self._loop, name="twoway-worker", daemon=True)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                watch(self.app, "in-process")
                run_pending_jobs(self.app)
            except Exception as error:  # keep the worker alive; a job's own failure is in RQ
                log.exception("in-process worker loop failed")
                self.errors.append(error)
            self._stopping.wait(self.poll_seconds)

    def stop(self, timeout: float = 10) -> None:
        """Asks the loop to stop after the job in hand, and waits for it."""
        self._stopping.set()
        self.thread.join(timeout)


def start_inprocess_worker(app: Flask, poll_seconds: float = 0.2) -> InProcessWorker:
    """Starts the in-process worker for `app` and returns it (call `.stop()` to end it)."""
    worker = InProcessWorker(app, poll_seconds)
    worker.thread.start()
    return worker
