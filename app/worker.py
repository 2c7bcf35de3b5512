"""Twoway's RQ worker: RQ's SimpleWorker on every lane, in priority order, with a watchman
thread that keeps recovery to seconds.

Production runs `rq worker --with-scheduler --worker-class app.worker.Worker`, naming no queue:
the worker then listens to every lane in priority order (`queues.LANES`, DESIGN.md §10), so a
staff reply is taken before the booking texts queued ahead of it, and a lane added later needs
no new command. (RQ's command passes its "default" queue when none is named, which is also the
first lane's name: a worker given the first lane alone listens to all of them. A worker given
other lanes listens to those, in the order given, and warns about the lanes it leaves out.)
Its scheduler (`--with-scheduler`) moves the delayed jobs of every lane it listens to (retries
after a throttle) back to their own lane when due.

Every second (CHECK_EVERY) the watchman of each worker process

- says its worker is alive (`queues.keep_alive`, under the worker's RQ name, which is also the
  name the worker takes hand-over items under), however long the job in hand runs: RQ's own
  registration cannot tell a dead SimpleWorker from a busy one for minutes;
- runs the recovery checks (`inbound.check_recovery`, which also queues the inbound sweep when
  due, and `sending.queue_sweep_when_due`) and queues the dispatcher of sends for later when a
  row is due (`scheduling.queue_dispatch_when_due`: reminders go within seconds of their time)
  unless another worker's watchman already ran them this second (a Redis key, SET NX with a
  one-second expiry).

A thread, not a job: a periodic job waits for a free worker (all of them may be busy draining
a flood) and for RQ's scheduler, which stops for minutes when the worker holding its lock
dies. A watchman runs wherever a worker process lives, and dies with it; the surviving ones
carry on. The checks are cheap (a few Redis commands and a few index range queries a second,
for all workers together).

The in-process worker of the demo (`app.inprocess_worker`) calls `watch` from its own loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from flask import Flask
from rq import Queue, SimpleWorker

from app.extensions import get_redis
from app.models.types import utcnow
from app.services import inbound, queues, scheduling, sending

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between a watchman's beats, and between recovery checks
CHECK_KEY = "recovery-check"  # held by the watchman that runs this second's checks


def watch(app: Flask, worker_name: str) -> None:
    """One beat: `worker_name` is alive, and the recovery checks run unless another watchman
    ran them less than CHECK_EVERY ago."""
    with app.app_context():
        queues.keep_alive(worker_name)
        if get_redis().set(CHECK_KEY, worker_name, nx=True, px=int(CHECK_EVERY * 1000)):
            now = utcnow()
            inbound.check_recovery(now=now)
            sending.queue_sweep_when_due(now=now)
            scheduling.queue_dispatch_when_due(now=now)


class Watchman:
    """A daemon thread calling `watch` every CHECK_EVERY until stopped (or its process dies)."""

    def __init__(self, app: Flask, worker_name: str):
        self.app = app
        self.worker_name = worker_name
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="twoway-watchman", daemon=True)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                watch(self.app, self.worker_name)
            except Exception:  # Redis or the database away for a moment: try next beat
                log.exception("recovery watchman beat failed")
            self._stopping.wait(CHECK_EVERY)

    def start(self) -> Watchman:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self.thread.join(timeout)


Lanes = str | Queue | Sequence[str | Queue]


def _listed(given: Lanes | None) -> list[str | Queue]:
    return [] if given is None else [given] if isinstance(given, str | Queue) else list(given)


def lanes_to_listen(given: Lanes | None) -> list[str | Queue]:
    """What a worker given `given` listens to: every lane, in priority order, when given none
    or the first lane alone (what `rq worker` passes when no queue is named); else `given`."""
    listed = _listed(given)
    names = [lane if isinstance(lane, str) else lane.name for lane in listed]
    if names in ([], [queues.DIRECT]):
        return list(queues.LANES)  # by name: RQ makes them with the worker's own queue class
    left_out = [lane for lane in queues.LANES if lane not in names]
    if left_out:
        log.warning("this worker leaves out lanes %s: their jobs wait for other workers", left_out)
    return listed


class Worker(SimpleWorker):
    """RQ's SimpleWorker (each job in the worker's own process, which builds the app once) on
    every lane in priority order (`lanes_to_listen`), plus the watchman."""

    def __init__(self, lanes: Lanes | None = None, **kwargs: Any):
        if kwargs.get("connection") is None:  # lanes given by name need one: the queues'
            given = (lane for lane in _listed(lanes) if isinstance(lane, Queue))
            kwargs["connection"] = next((lane.connection for lane in given), None)
        super().__init__(lanes_to_listen(lanes), **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        import jobs

        watchman = Watchman(jobs.job_app(), self.name).start()
        try:
            return super().work(*args, **kwargs)
        finally:
            watchman.stop()
