"""RQ queues on the app's Redis, and the one way the app enqueues a job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rq import Queue, Retry
from rq.job import Job

from app.extensions import get_redis

QUEUE_NAMES = ("default",)
DEFAULT_JOB_TIMEOUT = 60  # seconds; every job has one


def get_queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_redis())


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    timeout: int = DEFAULT_JOB_TIMEOUT,
    retry: Retry | None = None,
    job_id: str | None = None,
    delay: timedelta | None = None,
    **kwargs: Any,
) -> Job:
    """Queues `func(*args, **kwargs)`: arguments are plain ids and values, never models."""
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
# appended at any moment is either taken by a running drain or wakes a new one. An item a
# dying worker had taken is not lost: its owner's periodic sweep finds what was never handled.

WAKE_EXPIRES = 60  # seconds: a wake flag whose job was lost stops blocking new wakes


def _wake_key(list_key: str) -> str:
    return f"{list_key}:wake"


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


def take(list_key: str, count: int) -> list[str]:
    """Up to `count` items from the front of the list (each goes to exactly one taker)."""
    items = get_redis().lpop(list_key, count) or []
    return [item.decode() if isinstance(item, bytes) else item for item in items]
