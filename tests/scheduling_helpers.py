"""Helpers for the scheduling and reminder tests: appointments booked through the signal, and
a recorder of what the reminders' handlers ask `auto_messages.add_auto_message` for (the real
one then adds the text, which goes through the real pipeline to the sandbox)."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.extensions import db
from app.models import Appointment, AutoMessageSetting, Client, ClientPhone, Message
from app.services.booking.signals import appointment_changed

CALLS: list[dict] = []  # what the stand-in was asked for, in order


def stand_in_add_auto_message(
    appointment: Appointment,
    event: str,
    *,
    now: datetime,
    reminder_number: int | None = None,
    **kwargs,
) -> Message | None:
    """Records what the reminders' handler asked for, then adds it as the product does."""
    from app.services.booking import auto_messages

    CALLS.append(
        {"appointment_id": appointment.id, "event": event, "reminder_number": reminder_number}
    )
    return auto_messages.add_auto_message(
        appointment, event, now=now, reminder_number=reminder_number, **kwargs
    )


def install_stand_in(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Records what the reminders' handlers ask `auto_messages.add_auto_message` for, in this
    test. Returns the list of those calls."""
    from app.services.booking import reminders

    CALLS.clear()
    monkeypatch.setattr(reminders, "_add_auto_message", stand_in_add_auto_message)
    return CALLS


def make_client(
    business_id: int, *, phone: str | None = "+15557654321", time_zone: str | None = None
) -> Client:
    """A client (inside an app context), committed."""
    client = Client(
        business_id=business_id, name="Sam Client", search_text="sam client", time_zone=time_zone
    )
    db.session.add(client)
    if phone:
        db.session.add(
            ClientPhone(business_id=business_id, client=client, number=phone, is_primary=True)
        )
    db.session.commit()
    return client


def set_auto_message(business_id: int, event: str, **values) -> None:
    """The business's AutoMessageSetting for `event` (inside an app context), committed."""
    row = db.session.get(AutoMessageSetting, (business_id, event))
    if row is None:
        row = AutoMessageSetting(business_id=business_id, event=event)
        db.session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    db.session.commit()


def book(business_id: int, client_id: int, starts_at: datetime, *, now: datetime, **values) -> int:
    """Books an appointment as the appointments service does: the row, the signal in the same
    transaction, one commit. Returns its id."""
    appointment = Appointment(
        business_id=business_id,
        client_id=client_id,
        service=values.pop("service", "Haircut"),
        starts_at=starts_at,
        duration_minutes=values.pop("duration_minutes", 60),
        created_at=now,
        updated_at=now,
        **values,
    )
    db.session.add(appointment)
    db.session.flush()
    appointment_changed.send(appointment, change="booked", user_id=None, now=now)
    db.session.commit()
    return appointment.id


def change(appointment_id: int, what: str, *, now: datetime, starts_at: datetime | None = None):
    """Reschedules (with `starts_at`), cancels, marks a no-show or completes an appointment
    as the appointments service does, with the signal in the same transaction."""
    appointment = db.session.get(Appointment, appointment_id)
    previous = appointment.starts_at
    if what == "rescheduled":
        appointment.starts_at = starts_at
    elif what == "cancelled":
        appointment.state, appointment.cancelled_at = "cancelled", now
    elif what in ("no_show", "completed", "confirmed"):
        appointment.state = what
    appointment.updated_at = now
    db.session.flush()
    appointment_changed.send(
        appointment,
        change=what,
        previous_starts_at=previous if what == "rescheduled" else None,
        user_id=None,
        now=now,
    )
    db.session.commit()
