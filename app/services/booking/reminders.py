"""Reminders and the thank-you for appointments (issue 11 item 4), sent later through the one
way to send later (`app.services.scheduling`).

When an appointment is booked, each of the business's reminders (hours before the start, from
its "reminder" AutoMessageSetting, else DEFAULT_REMINDER_HOURS; none when the reminder is off)
and the thank-you (THANK_YOU_AFTER the end; only when it is on, and it is off by default)
become scheduled sends, in the booking's own transaction. Rescheduling moves the pending ones
(and schedules again the ones already sent for the old time, when the new time calls for
them); cancelling, or a no-show, drops the pending ones; completing drops pending reminders
but keeps the thank-you.

When each goes, in the client's time zone (`client_zone`: the card's zone, else the zone of the
number's area code, else the business's):

- A reminder of whole days (24 h, 48 h) goes at the appointment's local clock time that many
  days before, so a 10:00 appointment is reminded at 10:00 the day before even across a
  daylight-saving change; shorter ones go that many real hours before.
- Quiet hours: no reminder goes from 21:00 to 08:00 local. One due then goes at 08:00 when that
  is still before the appointment, else at 20:59 the evening before.
- The thank-you keeps to the same quiet hours: one due at night goes at 08:00.
- A send whose time has already passed when the appointment is booked (or moved) is not sent
  late: it is stored as skipped, with why ("Booked 30 minutes before: too late for the 24-hour
  reminder"), and the appointment shows it (`reminder_status`).

At its time the handler checks the appointment again (still open, not started yet) and makes
the text with `auto_messages.add_auto_message`, inside the dispatcher's transaction, so the
message and the row's `done` are stored together, exactly once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.extensions import db
from app.models.accounts import Business
from app.models.booking import (
    OPEN_STATES,
    THANK_YOU_AFTER,
    Appointment,
)
from app.models.messages import Message
from app.models.scheduling import ScheduledSend
from app.services import scheduling
from app.services.booking import auto_messages
from app.services.booking.signals import appointment_changed
from app.services.phones import time_zone_for_number

REMINDER = "appointment_reminder"
THANK_YOU = "appointment_thank_you"
PURPOSES = (REMINDER, THANK_YOU)
THANK_YOU_SLOT = "thank_you"
QUIET_STARTS = time(21, 0)  # no reminder from this local time ...
QUIET_ENDS = time(8, 0)  # ... until this one
LAST_BEFORE_QUIET = time(20, 59)
QUIET_NOTE = "moved out of the client's quiet hours, 9 PM to 8 AM their time"


# --- Settings ---------------------------------------------------------------------------------


def event_enabled(business_id: int, event: str) -> bool:
    """Is the automatic message `event` on for the business (its row, else the default)?"""
    return auto_messages.setting_for(business_id, event).enabled


def reminder_hours(business_id: int) -> tuple[int, ...]:
    """The business's reminders, as hours before the start, in their order (reminder 1 the
    furthest before, as `auto_messages` numbers them); none when the reminder is off."""
    setting = auto_messages.setting_for(business_id, "reminder")
    return setting.reminder_hours if setting.enabled else ()


# --- Time zones and due times -----------------------------------------------------------------


def client_zone(appointment: Appointment) -> ZoneInfo:
    """The client's time zone: the card's, else the one of their number's area code, else the
    business's."""
    client = appointment.client
    if client is not None and client.time_zone:
        return ZoneInfo(client.time_zone)
    phone = client.primary_phone if client is not None else None
    zone = time_zone_for_number(phone.number) if phone is not None else None
    if zone:
        return ZoneInfo(zone)
    return ZoneInfo(db.session.get(Business, appointment.business_id).time_zone)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _in_quiet_hours(local: datetime) -> bool:
    clock = local.time()
    return clock >= QUIET_STARTS or clock < QUIET_ENDS


def out_of_quiet_hours(
    due_at: datetime, zone: ZoneInfo, *, before: datetime | None = None
) -> datetime:
    """`due_at`, or, when it falls in the quiet hours in `zone`, 08:00 after them; when that is
    not before `before` (the appointment), 20:59 the evening the quiet hours began."""
    local = due_at.astimezone(zone)
    if not _in_quiet_hours(local):
        return due_at
    evening = local.date() if local.time() >= QUIET_STARTS else local.date() - timedelta(days=1)
    morning = _at(evening + timedelta(days=1), QUIET_ENDS, zone)
    if before is None or morning < before:
        return morning
    return _at(evening, LAST_BEFORE_QUIET, zone)


def _nominal_reminder(starts_at: datetime, hours: int, zone: ZoneInfo) -> datetime:
    if hours % 24 == 0:  # whole days: the same local clock time, days before
        local = starts_at.astimezone(zone).replace(tzinfo=None) - timedelta(days=hours // 24)
        return local.replace(tzinfo=zone).astimezone(UTC)
    return starts_at - timedelta(hours=hours)


def reminder_due(starts_at: datetime, hours: int, zone: ZoneInfo) -> datetime:
    """When the reminder `hours` before an appointment goes, for a client in `zone`."""
    return out_of_quiet_hours(_nominal_reminder(starts_at, hours, zone), zone, before=starts_at)


def thank_you_due(appointment: Appointment, zone: ZoneInfo) -> datetime:
    return out_of_quiet_hours(appointment.ends_at + THANK_YOU_AFTER, zone)


def _how_long(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{hours // 24} days"


# --- Planning ---------------------------------------------------------------------------------


def _slot(number: int, hours: int) -> str:
    return f"reminder-{number}:{hours}h"


def _slot_hours(slot: str) -> tuple[int, int]:
    """(reminder number, hours before) of a reminder's slot."""
    number, hours = slot.removeprefix("reminder-").rstrip("h").split(":")
    return int(number), int(hours)


def _planned(appointment: Appointment) -> list[tuple[str, str, datetime, str, str]]:
    """What the appointment should have: (purpose, slot, due at, note, what it is called)."""
    zone = client_zone(appointment)
    plan = []
    for number, hours in enumerate(reminder_hours(appointment.business_id), start=1):
        due = reminder_due(appointment.starts_at, hours, zone)
        note = QUIET_NOTE if due != _nominal_reminder(appointment.starts_at, hours, zone) else ""
        plan.append((REMINDER, _slot(number, hours), due, note, f"{hours}-hour reminder"))
    if event_enabled(appointment.business_id, "thank_you"):
        due = thank_you_due(appointment, zone)
        note = QUIET_NOTE if due != appointment.ends_at + THANK_YOU_AFTER else ""
        plan.append((THANK_YOU, THANK_YOU_SLOT, due, note, "thank-you"))
    return plan


def plan_sends(appointment: Appointment, *, verb: str = "Booked", now: datetime) -> None:
    """Brings the appointment's scheduled sends in line with its time and the business's
    settings, in the caller's transaction: pending ones move, missing ones are scheduled (a
    reminder already sent for an earlier time is scheduled again for the new one), ones
    whose time has passed are stored as skipped with why, and pending ones no longer wanted
    are cancelled."""
    rows = scheduling.rows_for(PURPOSES, appointment.id)
    pending = {row.slot: row for row in rows if row.state == "pending"}
    wanted = set()
    for purpose, slot, due, note, name in _planned(appointment):
        wanted.add(slot)
        too_late = due <= now
        row = pending.get(slot)
        if too_late:
            reason = (
                f"{verb} {_how_long(appointment.starts_at - now)} before: too late for the {name}."
            )
            if purpose == THANK_YOU:
                reason = f"{verb} after the appointment: too late for the thank-you."
            if row is not None:
                scheduling.cancel(PURPOSES, appointment.id, slot=slot, reason=reason, now=now)
            scheduling.record_skip(
                appointment.business_id,
                purpose,
                due,
                reason,
                subject_id=appointment.id,
                slot=slot,
                now=now,
            )
        elif row is not None:
            scheduling.move(row.id, due, note=note, now=now)
        else:
            scheduling.schedule(
                appointment.business_id,
                purpose,
                due,
                subject_id=appointment.id,
                slot=slot,
                note=note,
                now=now,
            )
    for slot in set(pending) - wanted:
        scheduling.cancel(
            PURPOSES, appointment.id, slot=slot, reason="No longer in the settings.", now=now
        )


def drop_pending(appointment: Appointment, reason: str, *, purposes=PURPOSES, now: datetime) -> int:
    """Cancels the appointment's pending sends (of `purposes`), with why."""
    return scheduling.cancel(purposes, appointment.id, reason=reason, now=now)


DROP_REASONS = {
    "cancelled": "The appointment was cancelled.",
    "no_show": "The client did not come (no-show).",
    "completed": "The appointment was completed.",
}


@appointment_changed.connect
def on_appointment_changed(
    appointment: Appointment,
    *,
    change: str,
    now: datetime,
    previous_starts_at: datetime | None = None,
    user_id: int | None = None,
    **_: object,
) -> None:
    """The receiver of `appointment_changed` (in the change's own transaction)."""
    if change == "booked":
        plan_sends(appointment, verb="Booked", now=now)
    elif change == "rescheduled":
        plan_sends(appointment, verb="Moved", now=now)
    elif change in ("cancelled", "no_show"):
        drop_pending(appointment, DROP_REASONS[change], now=now)
    elif change == "completed":  # no more reminders; the thank-you still goes
        drop_pending(appointment, DROP_REASONS[change], purposes=(REMINDER,), now=now)
    db.session.flush()


# --- Handlers (at the due time, inside the dispatcher's transaction) -------------------------


def _add_auto_message(appointment: Appointment, event: str, **kwargs) -> Message | None:
    return auto_messages.add_auto_message(appointment, event, **kwargs)


def _appointment(row: ScheduledSend) -> Appointment:
    appointment = db.session.get(Appointment, row.subject_id)
    if appointment is None or appointment.business_id != row.business_id:
        raise scheduling.SkipSend("The appointment no longer exists.")
    return appointment


def _replaced(row: ScheduledSend) -> bool:
    """Was the appointment moved while this row was claimed, so a newer row of its slot is
    waiting for the new time?"""
    newer = db.session.execute(
        db.select(ScheduledSend.id).where(
            ScheduledSend.purpose == row.purpose,
            ScheduledSend.subject_id == row.subject_id,
            ScheduledSend.slot == row.slot,
            ScheduledSend.state == "pending",
            ScheduledSend.id > row.id,
        )
    ).first()
    return newer is not None


def send_reminder(row: ScheduledSend, now: datetime) -> Message | None:
    """The handler of REMINDER rows."""
    appointment = _appointment(row)
    if appointment.state not in OPEN_STATES:
        raise scheduling.SkipSend(
            DROP_REASONS.get(appointment.state, "The appointment is no longer open.")
        )
    if appointment.starts_at <= now:
        raise scheduling.SkipSend("The appointment had already started.")
    setting = auto_messages.setting_for(appointment.business_id, "reminder")
    if not setting.enabled:
        raise scheduling.SkipSend("Reminders were turned off.")
    if _replaced(row):
        raise scheduling.SkipSend("Replaced by the reminder for the appointment's new time.")
    number, _hours = _slot_hours(row.slot)
    return _add_auto_message(
        appointment, "reminder", now=now, reminder_number=number, setting=setting
    )


def send_thank_you(row: ScheduledSend, now: datetime) -> Message | None:
    """The handler of THANK_YOU rows."""
    appointment = _appointment(row)
    if appointment.state in ("cancelled", "no_show"):
        raise scheduling.SkipSend(DROP_REASONS[appointment.state])
    setting = auto_messages.setting_for(appointment.business_id, "thank_you")
    if not setting.enabled:
        raise scheduling.SkipSend("The thank-you was turned off.")
    return _add_auto_message(appointment, "thank_you", now=now, setting=setting)


scheduling.register_handler(REMINDER, send_reminder)
scheduling.register_handler(THANK_YOU, send_thank_you)


# --- What the appointment shows ---------------------------------------------------------------


def _when(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return f"{local:%a}, {local:%b} {local.day}, {local:%I:%M %p}".replace(" 0", " ")


def _label(row: ScheduledSend) -> str:
    if row.purpose == THANK_YOU:
        hours = int(THANK_YOU_AFTER.total_seconds() // 3600)
        return f"Thank-you {hours} h after"
    _number, hours = _slot_hours(row.slot)
    return f"Reminder {hours} h before"


def _line(row: ScheduledSend, zone: ZoneInfo, theirs: ZoneInfo) -> str:
    label = _label(row)
    if row.state == "pending":
        line = f"{label}: due {_when(row.due_at, zone)}"
        if row.due_at.astimezone(theirs).utcoffset() != row.due_at.astimezone(zone).utcoffset():
            local = row.due_at.astimezone(theirs)
            line += f" ({local:%I:%M %p} their time)".replace("(0", "(")
        return f"{line}, {row.note}" if row.note else line
    if row.state == "claimed":
        return f"{label}: sending now"
    if row.state == "done":
        return f"{label}: sent {_when(row.finished_at or row.due_at, zone)}"
    return f"{label}: {row.state}: {row.outcome or ''}".rstrip(": ")


def reminder_status(appointment: Appointment) -> list[str]:
    """The appointment's reminders and thank-you in plain English, one line each, in the
    business's time zone: "Reminder 24 h before: due Tue, Dec 3, 10:00 AM", "…: sent …",
    "…: skipped: Booked 30 minutes before: too late for the 24-hour reminder"."""
    zone = ZoneInfo(db.session.get(Business, appointment.business_id).time_zone)
    latest: dict[tuple[str, str], ScheduledSend] = {}
    for row in scheduling.rows_for(PURPOSES, appointment.id):
        latest[(row.purpose, row.slot)] = row  # oldest first: the last one stands
    ordered = sorted(latest.values(), key=lambda row: (row.purpose != REMINDER, row.slot))
    theirs = client_zone(appointment)
    return [_line(row, zone, theirs) for row in ordered]
