"""Staff alerts (DESIGN.md §1: some transactional messages go to staff; issue 11 item 6).

Each staff member chooses, on their profile (Settings → Profile → Alerts), how they hear of
new bookings, cancellations, confirmations by reply and new leads: in the app (a notification
for them alone, pushed to the devices they turned push on for), by email, and/or by a text to
their own mobile number. With no choice saved: in the app only (`DEFAULT_CHANNELS`).

`alert_staff` is the one place an alert is raised. It adds everything to the caller's
transaction and never commits: one `StaffAlert` row per active staff member who wants it, its
notification, its text (a `Message`), and queues the email, the text's sending job and the
live update after the commit (`app.services.after_commit`), so nothing goes out for an event
that was rolled back. Each row's `event_key` ("booking:appointment:12") is unique per staff
member: a caller whose job runs again, or a signal sent twice, alerts nobody twice.

Texts go from the shared transactional system number (`texting.system_numbers()`), never the
business's own number (they are Twoway talking to staff, not the business to a client), and
are charged to the business's balance like any text (`sending.add_automatic_text`). One the
balance can't cover is not sent: the alert records `out_of_texts`, and the in-app and email
alerts still go. A mobile number that texted STOP to the business's numbers gets no texts.
Alert texts are `kind="transactional"`, `auto_event="staff_alert"`, no client, visibility
`system`: they show in no inbox and no conversation, and a reply to them follows the system
number routing like any reply to a system number (no lead is made: it has no client).

Bookings, cancellations and confirmations by reply come from `appointment_changed` (see
`app.services.booking.signals`): "booked" → booking, "cancelled" → cancellation, "confirmed"
with no user (the client replied C) → confirmation. The staff member who made the change is
not alerted of it. New leads come from the inbound pipeline (`app.services.inbound`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, url_for

from app.extensions import db, insert_on_conflict
from app.models import Appointment, Business, Client, User
from app.models.staff_alerts import (
    ALERT_CHANNELS,
    ALERT_EVENTS,
    DEFAULT_CHANNELS,
    StaffAlert,
    StaffAlertChoice,
)
from app.services import mail, notifications, sending, texting
from app.services.after_commit import call_after_commit
from app.services.booking.signals import appointment_changed
from app.services.clients import number_opted_out
from app.services.errors import ServiceError
from app.services.phones import display_phone, normalise_phone
from app.services.text_input import single_line

# The notification kind of each alert (push titles: `app.services.push.KIND_TITLES`).
NOTIFICATION_KINDS = {
    "booking": "new_booking",
    "cancellation": "booking_cancelled",
    "confirmation": "booking_confirmed",
    "lead": "new_lead",
}
TEXT_LIMIT = 160  # an alert text is one text: it costs one, however long the client's name
EMAIL_SUBJECT_LIMIT = 150


@dataclass(frozen=True)
class Choice:
    """How a staff member hears of one kind of alert."""

    event: str
    in_app: bool
    email: bool
    text: bool

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(channel for channel in ALERT_CHANNELS if getattr(self, channel))


def _default(event: str) -> Choice:
    return Choice(event, *(channel in DEFAULT_CHANNELS for channel in ALERT_CHANNELS))


def choices_of(user: User) -> dict[str, Choice]:
    """The staff member's choice for every kind of alert, in ALERT_EVENTS order."""
    saved = {
        row.event: Choice(row.event, row.in_app, row.email, row.text)
        for row in db.session.execute(
            db.select(StaffAlertChoice).where(StaffAlertChoice.user_id == user.id)
        ).scalars()
    }
    return {event: saved.get(event) or _default(event) for event in ALERT_EVENTS}


def save_alert_choices(
    user: User, *, mobile_number: str, chosen: dict[str, set[str]], now: datetime
) -> None:
    """Saves the profile's Alerts section: the mobile number (empty: none) and, for each kind
    of alert, the channels ticked. Raises ServiceError, changing nothing, for a number that
    isn't a mobile phone number or texts chosen without a number."""
    raw = single_line(mobile_number or "")
    number = None
    if raw:
        try:
            number = normalise_phone(raw, user.business.country)
        except ServiceError as error:
            raise ServiceError(error.message, field="mobile_number") from None
    for event, channels in chosen.items():
        if event not in ALERT_EVENTS or not channels <= set(ALERT_CHANNELS):
            raise ServiceError("Choose from the alerts and channels shown.", field="alerts")
    if number is None and any("text" in channels for channels in chosen.values()):
        raise ServiceError(
            "Add your mobile number to get alerts by text, or untick Text.",
            field="mobile_number",
        )
    user.mobile_number = number
    existing = {
        row.event: row
        for row in db.session.execute(
            db.select(StaffAlertChoice).where(StaffAlertChoice.user_id == user.id)
        ).scalars()
    }
    for event in ALERT_EVENTS:
        channels = chosen.get(event, set())
        row = existing.get(event)
        if row is None:
            row = StaffAlertChoice(user_id=user.id, event=event, business_id=user.business_id)
            db.session.add(row)
        row.in_app = "in_app" in channels
        row.email = "email" in channels
        row.text = "text" in channels
        row.updated_at = now
    db.session.commit()


def mobile_number_shown(user: User) -> str:
    """The staff member's mobile number as the business writes numbers ("" without one)."""
    if not user.mobile_number:
        return ""
    return display_phone(user.mobile_number, user.business.country)


# --- Raising an alert ----------------------------------------------------------------------


def _event_key(what: str, client_id: int | None, appointment_id: int | None) -> str:
    """What makes this event this event. A confirmation counts per start time: an appointment
    moved and confirmed again is news again."""
    if appointment_id is not None:
        key = f"{what}:appointment:{appointment_id}"
        if what == "confirmation":
            appointment = db.session.get(Appointment, appointment_id)
            if appointment is not None:
                key += f":{appointment.starts_at:%Y%m%d%H%M}"
        return key
    if client_id is not None:
        return f"{what}:client:{client_id}"
    raise ValueError("a staff alert needs the client or the appointment it is about")


def _text_body(business: Business, text: str) -> str:
    body = " ".join(f"{business.name}: {text}".split())
    if len(body) > TEXT_LIMIT:
        body = body[: TEXT_LIMIT - 3].rstrip() + "..."
    return body


def alert_staff(
    business_id: int,
    what: str,
    *,
    text: str,
    link: str,
    now: datetime,
    client_id: int | None = None,
    appointment_id: int | None = None,
    skip_user_id: int | None = None,
) -> list[StaffAlert]:
    """Alerts every active staff member of the business of `what` (a key of ALERT_EVENTS),
    each on the channels they chose, at most once per event (see the module docstring).
    `text` says what happened in one line; `link` is a path in this app. Adds to the caller's
    transaction and does not commit. Returns the alerts it added."""
    if what not in ALERT_EVENTS:
        raise ValueError(f"unknown staff alert: {what!r}")
    business = db.session.get(Business, business_id)
    if business is None:
        return []
    key = _event_key(what, client_id, appointment_id)
    staff = list(
        db.session.execute(
            db.select(User)
            .where(User.business_id == business_id, User.deactivated_at.is_(None))
            .order_by(User.id)
        ).scalars()
    )
    saved = {
        row.user_id: row
        for row in db.session.execute(
            db.select(StaffAlertChoice).where(
                StaffAlertChoice.business_id == business_id, StaffAlertChoice.event == what
            )
        ).scalars()
    }
    added = []
    for user in staff:
        if user.id == skip_user_id:
            continue
        row = saved.get(user.id)
        choice = Choice(what, row.in_app, row.email, row.text) if row else _default(what)
        if not choice.channels:
            continue
        alert_id = db.session.execute(
            insert_on_conflict(StaffAlert)
            .values(
                business_id=business_id,
                user_id=user.id,
                event=what,
                event_key=key,
                client_id=client_id,
                appointment_id=appointment_id,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "event_key"])
            .returning(StaffAlert.id)
        ).scalar_one_or_none()
        if alert_id is None:
            continue  # alerted of this event before
        alert = db.session.get(StaffAlert, alert_id)
        if choice.in_app:
            notification = notifications.notify(
                business_id,
                kind=NOTIFICATION_KINDS[what],
                text=text,
                link=link,
                user_id=user.id,
                now=now,
            )
            notifications.announce_after_commit(notification)
            alert.notification_id = notification.id
        if choice.email:
            alert.email_to = user.email
            _email_after_commit(business, user.email, text, link)
        if choice.text:
            _text(alert, business, user, text, appointment_id, now)
        added.append(alert)
    db.session.flush()
    return added


def _email_after_commit(business: Business, to: str, text: str, link: str) -> None:
    from app.services.accounts import public_url

    subject = " ".join(text.split())
    if len(subject) > EMAIL_SUBJECT_LIMIT:
        subject = subject[: EMAIL_SUBJECT_LIMIT - 1] + "…"
    body = (
        f"{text}\n\nOpen it in Twoway: {current_app.config['PUBLIC_URL'].rstrip('/')}{link}\n\n"
        f"You get this email because you chose email alerts for {business.name}. Change how "
        f"you hear of things in your profile: {public_url('profile.profile')}\n"
    )
    call_after_commit(lambda: mail.send_email(to=to, subject=subject, body=body))


def _text(
    alert: StaffAlert,
    business: Business,
    user: User,
    text: str,
    appointment_id: int | None,
    now: datetime,
) -> None:
    """The alert's text to the staff member's mobile, or why there is none."""
    if not user.mobile_number:
        alert.text_skipped = "no_mobile"
        return
    if number_opted_out(business.id, user.mobile_number):
        alert.text_skipped = "opted_out"
        return
    message = sending.add_automatic_text(
        business.id,
        _text_body(business, text),
        client_id=None,
        sender=texting.system_numbers().transactional,
        recipient=user.mobile_number,
        visibility="system",  # shows in no inbox or conversation (app.models.messages)
        auto_event="staff_alert",
        appointment_id=appointment_id,
        now=now,
    )
    if message is None:
        alert.text_skipped = "out_of_texts"
        return
    alert.text_message_id = message.id
    message_id, lane = message.id, sending.lane_of(message)
    call_after_commit(lambda: sending.queue_text(message_id, lane))


# --- Bookings, cancellations and confirmations by reply -----------------------------------


def card_path(client_id: int) -> str:
    """The client's card, as a path in this app (from a job too)."""
    if has_request_context():
        return url_for("clients.card", client_id=client_id)
    with current_app.test_request_context():
        return url_for("clients.card", client_id=client_id)


def when(starts_at: datetime, business: Business) -> str:
    """“Tue, Mar 4 at 3:07 PM” in the business's time zone."""
    local = starts_at.astimezone(ZoneInfo(business.time_zone))
    return f"{local:%a}, {local:%b} {local.day} at {local:%I:%M %p}".replace(" 0", " ")


_ALERT_OF_CHANGE = {"booked": "booking", "cancelled": "cancellation"}
_SAYS = {
    "booking": "New booking",
    "cancellation": "Cancelled",
    "confirmation": "Confirmed by reply",
}


def _on_appointment_changed(
    appointment: Appointment,
    *,
    change: str,
    now: datetime,
    user_id: int | None = None,
    **_: object,
) -> None:
    """`appointment_changed` receiver: the staff alert of a booking, a cancellation or a
    confirmation by the client's reply."""
    what = _ALERT_OF_CHANGE.get(change)
    if change == "confirmed" and user_id is None:
        what = "confirmation"
    if what is None:
        return
    business = db.session.get(Business, appointment.business_id)
    client = db.session.get(Client, appointment.client_id)
    if business is None or client is None:
        return
    starts = when(appointment.starts_at, business)
    text = f"{_SAYS[what]}: {client.name}, {appointment.service}, {starts}"
    alert_staff(
        business.id,
        what,
        text=text,
        link=f"/appointments/{appointment.id}",  # the appointment, its client one tap away
        now=now,
        client_id=client.id,
        appointment_id=appointment.id,
        skip_user_id=user_id,
    )


appointment_changed.connect(_on_appointment_changed, weak=False)
