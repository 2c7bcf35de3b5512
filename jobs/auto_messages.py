"""Automatic messages' jobs (see app.services.booking.auto_messages)."""

from __future__ import annotations

from jobs import app_job


@app_job
def tell_owner_out_of_texts(notification_id: int) -> None:
    from app.services.booking import auto_messages

    auto_messages.tell_owner_out_of_texts(notification_id)
