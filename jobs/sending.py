"""Sending jobs: one message's parts, and the periodic sweep after dead jobs. Both are safe to
run twice (see app.services.sending)."""

from __future__ import annotations

from datetime import datetime

from app.models.types import utcnow
from app.services import sending
from jobs import app_job


@app_job
def send_message(message_id: int) -> None:
    """Sends the message's queued parts through Vonage, in order, under the account's rate."""
    sending.send_message(message_id)


@app_job
def sweep(now: str | None = None) -> None:
    """Every minute (queued by the workers' watchman, `sending.queue_sweep_when_due`): parts
    whose worker died mid-send become unknown (never sent blindly again), and messages whose
    job was lost are queued again."""
    sending.sweep(now=datetime.fromisoformat(now) if now else utcnow())
