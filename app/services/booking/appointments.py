"""Appointments (issue 11 item 1): booking, rescheduling, cancelling and marking a client's
appointment, and the agenda that lists them.

Rules (DESIGN.md §1, the states in `app.models.booking`):

- An appointment belongs to one business, one of its clients (a merged card's survivor: the
  card that lives on, `clients.surviving_client`) and optionally one of its active staff. A
  service is one line of free text (`text_input.single_line`, at most MAX_SERVICE_LENGTH
  characters); a duration is MIN_DURATION to MAX_DURATION minutes.
- A start is an aware UTC instant. Forms give a local date and time in the business's zone:
  `start_from_local` reads them, refusing a time that does not exist there (the hour skipped
  when clocks go forward) and taking the first of a time that happens twice (the hour repeated
  when they go back), which is the one a person means when booking ahead.
- An appointment must not be over when it is booked or moved (a walk-in that started a
  moment ago is fine), nor more than MAX_AHEAD ahead.
- States: booked → confirmed (staff, or the client replying C) → completed or no_show;
  cancelled from booked or confirmed. Only an open appointment (booked or confirmed) can be
  moved, cancelled or confirmed, and only until it is over; completed and no-show need it to
  have started, and one can be corrected into the other (a mis-tap). A cancelled appointment
  stays cancelled. Moving a confirmed appointment makes it booked again: the client confirmed
  the old time, not the new one.
- Bad input raises ServiceError with a plain-English message, before anything changes.

Every change goes through `_save`: it flushes, sends `signals.appointment_changed` inside the
transaction (receivers add their rows: the automatic messages, reminder rows, staff alerts),
registers the live event `appointment.changed` (EVENT) for after the commit, and commits once.
So the change and everything it causes are stored together, and open agendas and client cards
refresh only for what was stored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Appointment, Business, Client, User
from app.models.booking import APPOINTMENT_STATES, OPEN_STATES
from app.models.types import is_row_id
from app.services import events
from app.services.after_commit import call_after_commit
from app.services.booking.signals import appointment_changed
from app.services.clients import client_or_none, surviving_client
from app.services.errors import ServiceError
from app.services.phones import time_zone_for_number
from app.services.text_input import multi_line, single_line

EVENT = "appointment.changed"  # after every change; data: the ids, the state, the change
MIN_DURATION = 5  # minutes
MAX_DURATION = 720
DURATION_CHOICES = (15, 30, 45, 60, 75, 90, 120, 180, 240)  # what the form's select offers
MAX_SERVICE_LENGTH = 120  # the column's length
MAX_LOCATION_LENGTH = 200
MAX_NOTE_LENGTH = 2000
MAX_AHEAD = timedelta(days=2 * 366)
# Dates a form or an address may name (far beyond any booking, well inside what datetime
# arithmetic and zone conversions handle: 9999-12-31 plus a day is an error).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)
LIST_LIMIT = 100  # rows the Upcoming and Past lists show
MARKS = {
    "confirmed": ("booked",),
    "completed": ("booked", "confirmed", "no_show"),
    "no_show": ("booked", "confirmed", "completed"),
}  # state marked -> the states it may be marked from


# --- Reading a start from a form ---------------------------------------------------------


def start_from_local(time_zone: str, day: str, clock: str) -> datetime:
    """The UTC instant of a local date ("2026-03-08") and time ("14:30") in `time_zone`.
    Refuses a time the clocks skip there; of a time that happens twice, the first."""
    try:
        local_day = date.fromisoformat(day.strip())
    except ValueError:
        local_day = None
    if local_day is None or not FIRST_DAY <= local_day <= LAST_DAY:
        raise ServiceError("Choose the appointment's date.", field="date")
    try:
        local_time = time.fromisoformat(clock.strip())
    except ValueError:
        raise ServiceError("Choose the appointment's time.", field="time") from None
    zone = ZoneInfo(time_zone)
    naive = datetime.combine(
        local_day, local_time.replace(second=0, microsecond=0, tzinfo=None)
    )  # a time typed with an offset ("14:00+05:00") is still read as the zone's local time
    first = naive.replace(tzinfo=zone, fold=0)  # fold=0: the earlier of a repeated time
    start = first.astimezone(UTC)
    if start.astimezone(zone).replace(tzinfo=None) != naive:  # it came back another time
        raise ServiceError(
            f"{local_time:%H:%M} doesn't exist on {local_day:%b} {local_day.day}: the clocks "
            "go forward then. Choose a time after the change.",
            field="time",
        )
    return start


def local_day_bounds(time_zone: str, day: date) -> tuple[datetime, datetime]:
    """The UTC instants where the local `day` begins and the next begins (23 or 25 hours
    apart on the days the clocks change)."""
    zone = ZoneInfo(time_zone)
    begins = datetime.combine(day, time()).replace(tzinfo=zone).astimezone(UTC)
    ends = datetime.combine(day + timedelta(days=1), time()).replace(tzinfo=zone).astimezone(UTC)
    return begins, ends


def client_time_zone(client: Client) -> str | None:
    """The client's own zone: the card's, else the one their number's area code gives (None
    when neither says; a toll-free or foreign number names no single zone)."""
    if client.time_zone:
        return client.time_zone
    phone = client.primary_phone
    return time_zone_for_number(phone.number) if phone else None


# --- Checking what was typed -------------------------------------------------------------


def _business(business_id: int) -> Business:
    business = db.session.get(Business, business_id)
    if business is None:
        raise ServiceError("That business does not exist.")
    return business


def _client(business_id: int, client_id: int | None) -> Client:
    client = client_or_none(business_id, client_id) if is_row_id(client_id) else None
    if client is None:
        raise ServiceError("Choose a client for the appointment.", field="client_id")
    return surviving_client(client)


def _staff_id(business_id: int, staff_id: int | None) -> int | None:
    if staff_id is None:
        return None
    staff = db.session.get(User, staff_id) if is_row_id(staff_id) else None
    if staff is None or staff.business_id != business_id or staff.deactivated_at is not None:
        raise ServiceError("Choose someone from your team, or nobody.", field="staff_id")
    return staff.id


def _service(text: str) -> str:
    service = single_line(text or "")
    if not service:
        raise ServiceError("Enter the service, e.g. “Haircut”.", field="service")
    if len(service) > MAX_SERVICE_LENGTH:
        raise ServiceError(
            f"Keep the service to {MAX_SERVICE_LENGTH} characters (it has {len(service)}).",
            field="service",
        )
    return service


def _duration(minutes: int | None) -> int:
    if (
        not isinstance(minutes, int)
        or isinstance(minutes, bool)
        or not MIN_DURATION <= minutes <= MAX_DURATION
    ):
        raise ServiceError(
            f"Choose a duration from {MIN_DURATION} minutes to {MAX_DURATION // 60} hours.",
            field="duration_minutes",
        )
    return minutes


def _start(starts_at: datetime, duration_minutes: int, now: datetime) -> datetime:
    if not isinstance(starts_at, datetime) or starts_at.tzinfo is None:
        raise ServiceError("Choose the appointment's date and time.", field="date")
    starts_at = starts_at.astimezone(UTC).replace(second=0, microsecond=0)
    if starts_at + timedelta(minutes=duration_minutes) <= now:
        raise ServiceError("That time has already passed. Choose a time from now on.", field="date")
    if starts_at > now + MAX_AHEAD:
        raise ServiceError("Choose a date within the next two years.", field="date")
    return starts_at


def _limited(text: str, limit: int, what: str, field: str) -> str:
    if len(text) > limit:
        raise ServiceError(f"Keep the {what} to {limit} characters.", field=field)
    return text


# --- Changes -----------------------------------------------------------------------------


def _appointment(business_id: int, appointment_id: int) -> Appointment:
    appointment = get_appointment(business_id, appointment_id)
    if appointment is None:
        raise ServiceError("That appointment does not exist.")
    return appointment


def _save(
    appointment: Appointment,
    change: str,
    *,
    user_id: int | None,
    now: datetime,
    previous_starts_at: datetime | None = None,
    commit: bool = True,
) -> Appointment:
    """Stores a change: the signal inside the transaction, the live event after its commit."""
    appointment.updated_at = now
    db.session.add(appointment)
    try:
        db.session.flush()
        appointment_changed.send(
            appointment,
            change=change,
            previous_starts_at=previous_starts_at,
            user_id=user_id,
            now=now,
        )
        business_id, data = appointment.business_id, _event_data(appointment, change)
        call_after_commit(lambda: events.publish(business_id, EVENT, data))
        if commit:
            db.session.commit()
    except Exception:
        # A receiver refused (or the database did): the change and all it caused go.
        if commit:
            db.session.rollback()
        raise
    return appointment


def _event_data(appointment: Appointment, change: str) -> dict:
    return {
        "appointment_id": appointment.id,
        "client_id": appointment.client_id,
        "state": appointment.state,
        "change": change,
    }


def create_appointment(
    business_id: int,
    *,
    client_id: int,
    service: str,
    starts_at: datetime,
    duration_minutes: int,
    staff_id: int | None = None,
    location: str = "",
    note: str = "",
    user_id: int | None,
    now: datetime,
) -> Appointment:
    """Books the client in (state booked) and tells whoever must act on it (`booked`)."""
    _business(business_id)
    client = _client(business_id, client_id)
    staff = _staff_id(business_id, staff_id)
    service = _service(service)
    location = _limited(single_line(location or ""), MAX_LOCATION_LENGTH, "location", "location")
    note = _limited(multi_line(note or "").strip(), MAX_NOTE_LENGTH, "note", "note")
    duration = _duration(duration_minutes)
    start = _start(starts_at, duration, now)
    appointment = Appointment(
        business_id=business_id,
        client_id=client.id,
        staff_id=staff,
        service=service,
        starts_at=start,
        duration_minutes=duration,
        location=location,
        note=note,
        state="booked",
        created_by_id=user_id,
        created_at=now,
    )
    return _save(appointment, "booked", user_id=user_id, now=now)


def _refuse_unless_open(appointment: Appointment, now: datetime, doing: str) -> None:
    if appointment.state == "cancelled":
        raise ServiceError(f"This appointment was cancelled, so it can't be {doing}.")
    if appointment.state not in OPEN_STATES:
        raise ServiceError(
            f"This appointment is marked {_state_label(appointment)}, so it can't be {doing}."
        )
    if appointment.ends_at <= now:
        raise ServiceError(
            f"This appointment is over, so it can't be {doing}. Mark it completed or no-show."
        )


def _state_label(appointment: Appointment) -> str:
    return APPOINTMENT_STATES[appointment.state].lower()


def reschedule(
    business_id: int,
    appointment_id: int,
    *,
    starts_at: datetime,
    duration_minutes: int | None = None,
    user_id: int | None,
    now: datetime,
) -> Appointment:
    """Moves an open appointment (`rescheduled`, with the old start). A confirmed one is
    booked again. Refuses a move that changes nothing."""
    appointment = _appointment(business_id, appointment_id)
    _refuse_unless_open(appointment, now, "moved")
    duration = _duration(
        appointment.duration_minutes if duration_minutes is None else duration_minutes
    )
    start = _start(starts_at, duration, now)
    if start == appointment.starts_at and duration == appointment.duration_minutes:
        raise ServiceError("That's the time it already has. Choose a new date or time.")
    previous = appointment.starts_at
    appointment.starts_at = start
    appointment.duration_minutes = duration
    if appointment.state == "confirmed":
        appointment.state = "booked"
        appointment.confirmed_via = None
        appointment.confirmed_at = None
    return _save(appointment, "rescheduled", user_id=user_id, now=now, previous_starts_at=previous)


def cancel(business_id: int, appointment_id: int, *, user_id: int | None, now: datetime):
    """Cancels an open appointment that isn't over yet (`cancelled`)."""
    appointment = _appointment(business_id, appointment_id)
    _refuse_unless_open(appointment, now, "cancelled")
    appointment.state = "cancelled"
    appointment.cancelled_at = now
    return _save(appointment, "cancelled", user_id=user_id, now=now)


def mark(
    business_id: int, appointment_id: int, state: str, *, user_id: int | None, now: datetime
) -> Appointment:
    """Marks an appointment confirmed (by staff), completed or no-show (see the module's
    rules); sends the change named after the new state."""
    if state not in MARKS:
        raise ServiceError("Mark it confirmed, completed or no-show.")
    appointment = _appointment(business_id, appointment_id)
    if appointment.state == state:
        raise ServiceError(f"This appointment is already marked {_state_label(appointment)}.")
    if state == "confirmed":
        _refuse_unless_open(appointment, now, "confirmed")
        appointment.confirmed_via = "staff"
        appointment.confirmed_at = now
    else:
        if appointment.state not in MARKS[state]:
            raise ServiceError(
                f"This appointment is marked {_state_label(appointment)}, so it can't be "
                f"marked {'completed' if state == 'completed' else 'no-show'}."
            )
        if appointment.starts_at > now:
            raise ServiceError("This appointment hasn't started yet.")
    appointment.state = state
    return _save(appointment, state, user_id=user_id, now=now)


def confirm_by_reply(appointment: Appointment, *, now: datetime, commit: bool = True) -> bool:
    """The client confirmed by replying C (`confirmed`, confirmed_via "reply", user None);
    True when this call confirmed it. Already confirmed: nothing changes and nothing is sent
    (False). Refuses an appointment that is not open or is over. With `commit=False` the
    caller commits (its own rows with it).

    The change is one conditional UPDATE (booked → confirmed), so two replies handled at
    once (two texts, two workers) confirm it once: the one that loses changes nothing."""
    if appointment.state == "confirmed":
        return False
    _refuse_unless_open(appointment, now, "confirmed")
    moved = db.session.execute(
        update(Appointment)
        .where(Appointment.id == appointment.id, Appointment.state == "booked")
        .values(state="confirmed", confirmed_via="reply", confirmed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(appointment)
    if moved != 1:
        return False
    _save(appointment, "confirmed", user_id=None, now=now, commit=commit)
    return True


# --- The agenda ----------------------------------------------------------------------------


def get_appointment(business_id: int, appointment_id: int) -> Appointment | None:
    """The business's appointment with this id, or None."""
    if not is_row_id(appointment_id):
        return None
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.business_id != business_id:
        return None
    return appointment


def _listed(statement) -> list:
    return list(db.session.execute(statement).scalars())


def agenda_for_day(business_id: int, day: date) -> list[Appointment]:
    """Every appointment starting on `day` (a date in the business's zone), cancelled ones
    too, by start."""
    begins, ends = local_day_bounds(_business(business_id).time_zone, day)
    return _listed(
        select(Appointment)
        .where(
            Appointment.business_id == business_id,
            Appointment.starts_at >= begins,
            Appointment.starts_at < ends,
        )
        .order_by(Appointment.starts_at, Appointment.id)
    )


def upcoming(business_id: int, *, now: datetime, limit: int = LIST_LIMIT) -> list[Appointment]:
    """Appointments not over yet and not cancelled (under way first), soonest first."""
    not_cancelled = (Appointment.business_id == business_id, Appointment.state != "cancelled")
    under_way = [
        appointment
        for appointment in _listed(
            select(Appointment)
            .where(
                *not_cancelled,
                Appointment.starts_at >= now - timedelta(minutes=MAX_DURATION),
                Appointment.starts_at < now,
            )
            .order_by(Appointment.starts_at, Appointment.id)
        )
        if appointment.ends_at > now
    ]
    ahead = _listed(
        select(Appointment)
        .where(*not_cancelled, Appointment.starts_at >= now)
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(limit)
    )
    return (under_way + ahead)[:limit]


def past(business_id: int, *, now: datetime, limit: int = LIST_LIMIT) -> list[Appointment]:
    """Appointments that have started, cancelled ones too, latest first."""
    return _listed(
        select(Appointment)
        .where(Appointment.business_id == business_id, Appointment.starts_at < now)
        .order_by(Appointment.starts_at.desc(), Appointment.id.desc())
        .limit(limit)
    )


def for_client(
    business_id: int, client_id: int, *, now: datetime
) -> tuple[list[Appointment], list[Appointment]]:
    """The client's appointments: (not over yet, soonest first; over, latest first). A merge
    moves appointments to the kept card, so the surviving card has them all."""
    rows = _listed(
        select(Appointment)
        .where(Appointment.business_id == business_id, Appointment.client_id == client_id)
        .order_by(Appointment.starts_at, Appointment.id)
    )
    ahead = [a for a in rows if a.ends_at > now]
    over = [a for a in reversed(rows) if a.ends_at <= now]
    return ahead, over


def counts_by_day(business_id: int, days: list[date]) -> dict[date, int]:
    """How many appointments (not cancelled) start on each of `days`, for the week strip."""
    time_zone = _business(business_id).time_zone
    zone = ZoneInfo(time_zone)
    begins = local_day_bounds(time_zone, min(days))[0]
    ends = local_day_bounds(time_zone, max(days))[1]
    counts = dict.fromkeys(days, 0)
    for (starts_at,) in db.session.execute(
        select(Appointment.starts_at).where(
            Appointment.business_id == business_id,
            Appointment.starts_at >= begins,
            Appointment.starts_at < ends,
            Appointment.state != "cancelled",
        )
    ):
        local_day = starts_at.astimezone(zone).date()
        if local_day in counts:
            counts[local_day] += 1
    return counts


def week_of(day: date) -> list[date]:
    """The seven days, Monday to Sunday, of the week holding `day`."""
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=i) for i in range(7)]


def recent_services(business_id: int, limit: int = 8) -> list[str]:
    """The services the business booked most recently, each once: what the form offers."""
    latest = func.max(Appointment.created_at)
    return list(
        db.session.execute(
            select(Appointment.service)
            .where(Appointment.business_id == business_id)
            .group_by(Appointment.service)
            .order_by(latest.desc())
            .limit(limit)
        ).scalars()
    )


def bookable_staff(business_id: int) -> list[User]:
    """The team members an appointment can be with (active staff), by name."""
    return _listed(
        select(User)
        .where(User.business_id == business_id, User.deactivated_at.is_(None))
        .order_by(User.name, User.id)
    )
