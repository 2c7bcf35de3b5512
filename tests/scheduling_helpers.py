"""Helpers for the scheduling and reminder tests: appointments booked through the signal, and a
stand-in for `app.services.booking.auto_messages.add_auto_message`.

The real `add_auto_message` is written on another branch (issue 11 item 3). The stand-in keeps
its contract: it adds a transactional text about the appointment (message, parts, charge) to
the caller's transaction, queues it after the commit, and returns the Message. The text goes
through the real pipeline (`jobs.sending.send_message`), so the tests see it reach the sandbox.
"""

from __future__ import annotations

import sys
import types
from datetime import datetime

import pytest

from app.extensions import db
from app.models import Appointment, AutoMessageSetting, Client, ClientPhone, Message, MessagePart
from app.services import balance, sending, texting
from app.services.after_commit import call_after_commit
from app.services.booking.signals import appointment_changed
from app.services.segments import check_text

CALLS: list[dict] = []  # what the stand-in was asked for, in order


def stand_in_add_auto_message(
    appointment: Appointment, event: str, *, now: datetime, reminder_number: int | None = None
) -> Message | None:
    """Adds the automatic text `event` about the appointment (see the module's docstring)."""
    CALLS.append(
        {"appointment_id": appointment.id, "event": event, "reminder_number": reminder_number}
    )
    phone = appointment.client.primary_phone
    if phone is None:
        return None
    body = f"{event} {reminder_number or ''}: {appointment.service} at {appointment.starts_at}"
    split = check_text(body)
    message = Message(
        business_id=appointment.business_id,
        client_id=appointment.client_id,
        channel="text",
        direction="outbound",
        kind="transactional",
        body=body,
        sender=texting.sender_for(appointment.business_id, "transactional"),
        recipient=phone.number,
        status="queued",
        auto_event=event,
        appointment_id=appointment.id,
        created_at=now,
        updated_at=now,
    )
    db.session.add(message)
    db.session.flush()
    charge = balance.reserve(appointment.business_id, split.count, now, message_id=message.id)
    for index, text in enumerate(split.parts):
        db.session.add(
            MessagePart(
                message_id=message.id,
                business_id=appointment.business_id,
                index=index,
                text=text,
                unicode=split.encoding == "UCS-2",
                client_ref=f"{message.id}-{index}-{now.timestamp()}",
                status="queued",
                charged_from=charge.source_of(index),
                charged_month=charge.month if charge.source_of(index) == "allowance" else None,
                updated_at=now,
            )
        )
    message_id = message.id
    call_after_commit(lambda: sending._queue(message_id))
    return message


def install_stand_in(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Makes `auto_messages.add_auto_message` the stand-in for this test (the module itself
    may not exist on this branch). Returns the list of its calls."""
    CALLS.clear()
    try:
        from app.services.booking import auto_messages as module
    except ImportError:
        import app.services.booking as package

        module = types.ModuleType("app.services.booking.auto_messages")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(package, "auto_messages", module, raising=False)
    monkeypatch.setattr(module, "add_auto_message", stand_in_add_auto_message, raising=False)
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
