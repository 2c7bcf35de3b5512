"""Email: queued here, delivered by a job through SMTP, or captured in development."""

from __future__ import annotations

from app.services.queues import enqueue


def send_email(
    *, to: str, subject: str, body: str, reply_to: str | None = None, from_name: str | None = None
) -> None:
    """Queues one plain-text email; the job delivers it (SMTP calls out, so never inline)."""
    from jobs.mail import deliver_email

    enqueue(
        deliver_email, to=to, subject=subject, body=body, reply_to=reply_to, from_name=from_name
    )
