"""Jobs that run again and again (checking verifications, releasing numbers), on plain RQ.

A periodic job is a chain: each run queues the next one with `enqueue(..., delay=every)`, which
`rq worker --with-scheduler` (or the in-process worker) runs when it comes due. Redis holds the
id of the run the chain expects next under `periodic:<name>`, so however many places call
`ensure_scheduled`, and however often a run is retried, one chain goes on:

- `ensure_scheduled` starts a chain only when none is expected (SET NX).
- `schedule_next`, called by a run, queues the next run only when the run is the one expected
  (or none is), in one atomic step; a stray run (a retry, a duplicate) does its work and stops.
- The key expires a few periods after the expected run was due, so a chain lost with a Redis
  restart or a dead worker is started again by the next `ensure_scheduled`.

A chain stalls when a run dies (its key blocks a new chain until it expires) and when the
worker holding RQ's scheduler lock dies (no delayed job runs until another worker takes the
lock, minutes later). A job that must not wait on either is queued by the workers' frequent
recovery check instead (`queue_when_due`, asked every second by `app.worker`): the next due
time is stored under `periodic:<name>:due`, and whichever check finds it passed moves it on
and queues a run at once, in one atomic step. A run that dies holds nothing up: the next one
is queued when its time comes. Such runs may overlap when one lasts longer than its period,
so their jobs must be safe to run at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rq import get_current_job

from app.extensions import get_redis
from app.services.queues import enqueue

# Take over the chain when this run is the one expected (or nothing is), in one step.
_TAKE_OVER_SCRIPT = """
local expected = redis.call('GET', KEYS[1])
if expected == false or expected == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _key(name: str) -> str:
    return f"periodic:{name}"


def _ttl_seconds(every: timedelta) -> int:
    # Long enough that a busy worker running late does not look like a lost chain.
    return int(every.total_seconds() * 3) + 300


def _new_job_id(name: str) -> str:
    return f"periodic-{name}-{uuid.uuid4().hex}"


def ensure_scheduled(
    func: Callable[..., Any], every: timedelta, *, name: str, timeout: int = 300
) -> bool:
    """Queues `func` to run in `every` unless a run of the chain `name` is already expected.
    True if this call started the chain."""
    job_id = _new_job_id(name)
    if not get_redis().set(_key(name), job_id, nx=True, ex=_ttl_seconds(every)):
        return False
    enqueue(func, delay=every, job_id=job_id, timeout=timeout)
    return True


def schedule_next(
    func: Callable[..., Any], every: timedelta, *, name: str, timeout: int = 300
) -> bool:
    """Called by a run of the chain `name`: queues the next run in `every`, unless another run
    is the one expected (this run is a duplicate). True if it queued the next run."""
    current = get_current_job()
    job_id = _new_job_id(name)
    take_over = get_redis().register_script(_TAKE_OVER_SCRIPT)
    if not take_over(
        keys=[_key(name)], args=[current.id if current else "", job_id, _ttl_seconds(every)]
    ):
        return False
    enqueue(func, delay=every, job_id=job_id, timeout=timeout)
    return True


# Is the run due (no due time stored, or ARGV[1] at or past it)? Then store the next due time.
_DUE_SCRIPT = """
local due = redis.call('GET', KEYS[1])
if due and tonumber(due) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def queue_when_due(
    func: Callable[..., Any],
    every: timedelta,
    *,
    name: str,
    now: datetime,
    timeout: int = 300,
) -> bool:
    """Queues `func` now if `every` has passed since the last run of `name` was queued (or none
    ever was), once however many callers ask at the same moment. True if it queued one."""
    due = get_redis().register_script(_DUE_SCRIPT)
    moment = now.timestamp()
    if not due(keys=[f"{_key(name)}:due"], args=[moment, moment + every.total_seconds()]):
        return False
    enqueue(func, timeout=timeout)
    return True
