"""RQ queues on the app's Redis, and the one way the app enqueues a job.

**Lanes** (DESIGN.md §10, "Lanes under one rate"). Every text shares the account's Vonage rate
(VONAGE_SMS_PER_SECOND, `app.services.rate_limit`), so a flood of due reminders would make a
staff member's reply wait its turn behind them if every job waited in one queue. Instead jobs
wait in lanes, RQ queues that every worker listens to in priority order (`LANES`): RQ takes
the next job from the first lane that has one, so a job in an earlier lane never waits behind
the backlog of a later one (only behind the jobs workers already have in hand).

1. `DIRECT` ("default", RQ's own name: jobs queued before the lanes existed are still taken):
   texts staff write, Twoway's automatic answers to inbound texts (STOP/START/HELP, "Do not
   reply", the thanks for a confirmation by reply), staff-alert texts, and every job that is
   not bulk sending (inbound drains, sweeps, emails, verification, push...). The texts have a
   person waiting on them and come only as fast as people make them; the other jobs are
   small, and the recovery they do must not wait behind a flood either.
2. `BOOKING`: automatic booking texts (confirmation, rescheduled, cancelled, reminders, the
   thank-you: a `Message.auto_event` of `app.models.booking.AUTO_EVENTS`) and the dispatcher
   of sends for later that makes them (`jobs.scheduling.dispatch`): the clock, not a person,
   makes these, up to tens of thousands at once. Payment texts, when they come, go here too.
3. Campaigns (issue 12) come after booking, as a lane of their own added here: a staff reply
   never waits behind a campaign, and booking texts go before campaign texts.

Which lane a text's sending job goes to is decided in one place, `sending.lane_for`; every
other job goes to `DIRECT` unless its caller names a lane. A job queued again (a retry after a
throttle or an outage, the sweep after a lost job) goes back to its own lane. Workers listen
to every lane in this order: `app.worker.Worker` and the in-process worker
(`app.inprocess_worker`) by default, and so must any worker started by hand.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rq import Queue, Retry, get_current_job
from rq.job import Job

from app.extensions import get_redis

DIRECT = "default"  # lane 1: what people wait on (staff texts, automatic answers, the rest)
BOOKING = "booking"  # lane 2: automatic booking texts and their dispatcher
LANES = (DIRECT, BOOKING)  # in priority order: every worker listens to all of them, in order
DEFAULT_JOB_TIMEOUT = 60  # seconds; every job has one


def get_queue(name: str = DIRECT) -> Queue:
    """The RQ queue of a lane (`LANES`)."""
    if name not in LANES:
        raise ValueError(f"no lane is called {name!r}; the lanes are {LANES}")
    return Queue(name, connection=get_redis())


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str = DIRECT,
    timeout: int = DEFAULT_JOB_TIMEOUT,
    retry: Retry | None = None,
    job_id: str | None = None,
    delay: timedelta | None = None,
    **kwargs: Any,
) -> Job:
    """Queues `func(*args, **kwargs)` in the lane `queue` (see the module docstring), now or
    after `delay`, back in the same lane: arguments are plain ids and values, never models."""
    options: dict[str, Any] = {"job_timeout": timeout, "retry": retry, "job_id": job_id}
    q = get_queue(queue)
    if delay is not None:
        return q.enqueue_in(delay, func, args=args, kwargs=kwargs, **options)
    return q.enqueue_call(
        func, args=args, kwargs=kwargs, timeout=timeout, retry=retry, job_id=job_id
    )


# --- Hand-over lists: many small items, one job draining them ------------------------------
#
# The inbound webhook answers Vonage within milliseconds, under bursts. Queuing one RQ job per
# text costs more than the rest of the request; instead the request appends the item to a
# Redis list and queues a draining job only when none is queued and not yet started (a wake
# flag). The job clears the flag first, then takes items until the list is empty, so an item
# appended at any moment is either taken by a running drain or wakes a new one.
#
# The hand-over is reliable: an item is always in Redis until it has been handled.
# - `take` moves items, atomically, from the list to the taker's own list
#   (`<list>:taken:<taker>`, the taker being the RQ worker's name) and registers the taker;
#   `done` removes an item from it once handled (after the commit: an item handled and not yet
#   acknowledged is simply handled again, which the owner makes a no-op).
# - A taker counts as alive while its `alive:<taker>` key exists: it lapses ALIVE_SECONDS after
#   its last renewal. RQ's own registration cannot tell in seconds: a SimpleWorker running a
#   job sends no heartbeat, and its key lives for the job's timeout plus a minute. So each
#   `take` renews the key, and Twoway's worker class (`app.worker`) renews it every second
#   from a thread of its own, however long the job in hand runs.
# - `reclaim`, called by the frequent recovery check, puts the items of every taker that is no
#   longer alive back at the front of the list, in order, in one atomic step; the check then
#   wakes a drain. A live taker judged gone (its process starved for ALIVE_SECONDS) only
#   costs a second handling of its items; the owner's claim lets one of the two count.
# - A wake flag lives WAKE_EXPIRES: a drain job lost before it started (its worker died, or the
#   web process between the flag and the enqueue) stops blocking new wakes within seconds.

WAKE_EXPIRES = 5  # seconds: a wake flag whose job was lost stops blocking new wakes
ALIVE_SECONDS = 3  # a taker (worker) not heard from for this long is gone (two missed beats)


def _wake_key(list_key: str) -> str:
    return f"{list_key}:wake"


def _taken_key(list_key: str, taker: str) -> str:
    return f"{list_key}:taken:{taker}"


def _takers_key(list_key: str) -> str:
    return f"{list_key}:takers"


def alive_key(taker: str) -> str:
    return f"alive:{taker}"


def hand_over(list_key: str, item: str, drain: Callable[[], Any], *, timeout: int) -> None:
    """Appends `item` to the list and queues `drain()` unless a drain is queued already. One
    Redis round trip; an RQ job only when the list was idle."""
    pipeline = get_redis().pipeline(transaction=False)
    pipeline.rpush(list_key, item)
    pipeline.set(_wake_key(list_key), "1", nx=True, ex=WAKE_EXPIRES)
    _, woken = pipeline.execute()
    if woken:
        enqueue(drain, timeout=timeout)


def wake(list_key: str, drain: Callable[[], Any], *, timeout: int) -> None:
    """Queues another `drain()` unless one is queued (a drain with a backlog asks for help)."""
    if get_redis().set(_wake_key(list_key), "1", nx=True, ex=WAKE_EXPIRES):
        enqueue(drain, timeout=timeout)


def start_draining(list_key: str) -> None:
    """Called by the drain before it takes anything: items appended from now on wake a new
    drain, so none waits for the next one."""
    get_redis().delete(_wake_key(list_key))


def current_taker() -> str:
    """The name items are taken under: the RQ worker running this job, else this process
    (a drain called outside a worker, as tests do)."""
    job = get_current_job()
    if job is not None and job.worker_name:
        return job.worker_name
    return f"{socket.gethostname()}:{os.getpid()}"


def keep_alive(taker: str) -> None:
    """Says the taker (a worker) is alive for another ALIVE_SECONDS."""
    get_redis().set(alive_key(taker), "1", ex=ALIVE_SECONDS)


# KEYS: the list, the taker's list, the takers set, the taker's alive key.
# ARGV: how many, the taker's name, ALIVE_SECONDS.
_TAKE_SCRIPT = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('SET', KEYS[4], '1', 'EX', ARGV[3])
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('SADD', KEYS[3], ARGV[2])
return items
"""


def take(list_key: str, count: int, taker: str) -> list[str]:
    """Up to `count` items from the front of the list (each goes to exactly one taker), moved
    to the taker's own list until `done`, in one atomic step."""
    script = get_redis().register_script(_TAKE_SCRIPT)
    items = script(
        keys=[
            list_key,
            _taken_key(list_key, taker),
            _takers_key(list_key),
            alive_key(taker),
        ],
        args=[count, taker, ALIVE_SECONDS],
    )
    return [item.decode() if isinstance(item, bytes) else item for item in items]


def done(list_key: str, item: str, taker: str) -> None:
    """The taker has handled `item`: it leaves the taker's list."""
    get_redis().lrem(_taken_key(list_key, taker), 1, item)


# KEYS: the list, the takers set. ARGV: the list key (taken lists are named after it).
# Returns how many items went back to the list, and how long the list now is.
_RECLAIM_SCRIPT = """
local moved = 0
for _, taker in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', 'alive:' .. taker) == 0 then
    local taken = ARGV[1] .. ':taken:' .. taker
    local items = redis.call('LRANGE', taken, 0, -1)
    for i = #items, 1, -1 do
      redis.call('LPUSH', KEYS[1], items[i])
    end
    moved = moved + #items
    redis.call('DEL', taken)
    redis.call('SREM', KEYS[2], taker)
  end
end
return {moved, redis.call('LLEN', KEYS[1])}
"""


def reclaim(list_key: str) -> tuple[int, int]:
    """Puts the items of takers that are gone back at the front of the list, in order, in one
    atomic step. Returns how many went back, and how many items the list now holds."""
    script = get_redis().register_script(_RECLAIM_SCRIPT)
    moved, waiting = script(keys=[list_key, _takers_key(list_key)], args=[list_key])
    return int(moved), int(waiting)


# KEYS: the list, the takers set. ARGV: the list key.
_IN_HAND_SCRIPT = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, taker in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  for _, item in ipairs(redis.call('LRANGE', ARGV[1] .. ':taken:' .. taker, 0, -1)) do
    table.insert(items, item)
  end
end
return items
"""


def in_hand(list_key: str) -> set[str]:
    """Every item in Redis, read in one atomic step: waiting in the list, or taken and not yet
    done."""
    script = get_redis().register_script(_IN_HAND_SCRIPT)
    items = script(keys=[list_key, _takers_key(list_key)], args=[list_key])
    return {item.decode() if isinstance(item, bytes) else item for item in items}
