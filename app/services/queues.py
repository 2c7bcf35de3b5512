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
