"""Web Push jobs: a notification to every device it is for, and a later attempt at one device
whose push service said "later". Safe to run twice (see app.services.push)."""

from __future__ import annotations

from app.services import push
from jobs import app_job


@app_job
def send_push(notification_id: int) -> None:
    """Pushes the notification to the devices of the staff it is for."""
    push.send_push(notification_id)


@app_job
def retry_push(notification_id: int, subscription_id: int, attempt: int) -> None:
    """Tries one device again (attempt 2, 3, …)."""
    push.retry_push(notification_id, subscription_id, attempt)
