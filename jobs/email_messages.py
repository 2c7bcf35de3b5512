"""Delivers an email to a client (see app.services.email_messages)."""

from __future__ import annotations

from app.models.types import utcnow
from jobs import app_job


@app_job
def deliver_email_message(message_id: int) -> None:
    from app.services import email_messages

    email_messages.deliver(message_id, utcnow())
