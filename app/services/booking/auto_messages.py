"""Automatic messages about appointments (issue 11 items 2 and 3, DESIGN.md §1, §4, §7).

**Settings** (Settings → Auto Client Messages and SMS → Auto messages): one
`AutoMessageSetting` row per business and event of `AUTO_EVENTS`; no row means the event's
defaults (`setting_for`): on, except the thank-you; by text, email when the client can't get
texts; the default text of `DEFAULT_TEMPLATES`; one reminder 24 h before. A template is
written in the one template language (`app.services.message_templates`) and is refused on
save when it could render to more than a text may hold (550 characters, less the " Reply C
to confirm." a reminder may end with).

"Reply C to confirm" and "answer a C with thanks" only make sense where a client's reply
reaches the business: two-way texting on a verified number, from which booking texts then go
(`confirm_by_reply`). Elsewhere (the shared number, "Do not reply", "No auto reply") the
editor hides them and says why, a save leaves them as they were, and reminders never ask.

**Sending** (`add_auto_message`): each automatic message is added to the caller's
transaction, so an appointment change and the messages it causes are stored together or not
at all; jobs are queued after the commit (`call_after_commit`). A text is a transactional
text on the one pipeline (`sending.add_text`: parts through the one split function, the
ledger, exactly-once sending, receipts) from `texting.sender_for(..., "transactional")`: the
shared system number until the business's number is verified, then its own.

- A text the balance cannot cover is stored failed ("out of texts", shown on the
  conversation; Resend sends it once texts are bought) and the owner is alerted once a day
  (an in-app notification and an email): the first INSERT of that day's `DailyAlert` row
  wins, so many texts, or many workers at once, alert once.
- A client who opted out (STOP) gets no text: with the channel "text, or email" they get an
  email instead when they have an address; "email" always emails. A client Twoway cannot
  reach by the row's channel gets nothing, and a note on their card says why.
- Dates and times are in the client's zone (their card's, else their number's, else the
  business's), with the zone's abbreviation when it differs from the business's.

The receiver of `appointment_changed` sends the confirmation on "booked", the rescheduled
message on "rescheduled" and the cancellation on "cancelled", each when its row is on.
Reminders and the thank-you are due later: the reminders' scheduler calls `add_auto_message`
for them at their time.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, url_for

from app.extensions import db, insert_on_conflict
from app.models import Business, Client, ClientNote, Notification, User
from app.models.alerts import DailyAlert
from app.models.booking import (
    AUTO_CHANNELS,
    AUTO_EVENTS,
    DEFAULT_CHANNEL,
    DEFAULT_OFF_EVENTS,
    DEFAULT_REMINDER_HOURS,
    MAX_REMINDERS,
    OPEN_STATES,
    REMINDER_OFFSETS_HOURS,
    Appointment,
    AutoMessageSetting,
)
from app.models.messages import Message
from app.services import email_messages, message_templates, notifications, sending, texting
from app.services.after_commit import call_after_commit
from app.services.booking.signals import appointment_changed
from app.services.clients import number_opted_out, surviving_client
from app.services.errors import ServiceError
from app.services.phones import client_time_zone, display_phone
from app.services.queues import enqueue
from app.services.segments import MAX_CHARACTERS

log = logging.getLogger(__name__)

PLACEHOLDERS = message_templates.APPOINTMENT_PLACEHOLDERS
CONFIRM_SUFFIX = " Reply C to confirm."
# Every default fits one GSM-7 text with typical values (tests/test_auto_messages.py).
DEFAULT_TEMPLATES = {
    "booking_confirmation": (
        "Hi {client_first_name}, you're booked at {business_name} for {service} on "
        "{appointment_date} at {appointment_time}. See you then!"
    ),
    "rescheduled": (
        "Hi {client_first_name}, your {service} at {business_name} has moved to "
        "{appointment_date} at {appointment_time}. See you then!"
    ),
    "cancelled": (
        "Hi {client_first_name}, your {service} at {business_name} on {appointment_date} is "
        "cancelled. To book again, call us at {business_phone}."
    ),
    "reminder": (
        "Reminder from {business_name}: {service} on {appointment_date} at "
        "{appointment_time}. See you soon, {client_first_name}!"
    ),
    "thank_you": (
        "Thanks for visiting {business_name} today, {client_first_name}! We hope to see you "
        "again soon."
    ),
}
# The subject of each message when it goes by email ({business} is the business's name).
EMAIL_SUBJECTS = {
    "booking_confirmation": "Your booking with {business}",
    "rescheduled": "Your appointment with {business} has moved",
    "cancelled": "Your appointment with {business} is cancelled",
    "reminder": "Reminder: your appointment with {business}",
    "thank_you": "Thank you from {business}",
}
# Which change of an appointment sends which message (the others are due later).
SENT_ON_CHANGE = {
    "booked": "booking_confirmation",
    "rescheduled": "rescheduled",
    "cancelled": "cancelled",
}
OUT_OF_TEXTS = "out_of_texts"  # DailyAlert and Notification kind
OUT_OF_TEXTS_REASON = (
    "Out of texts: this automatic text was not sent because your balance has no texts left. "
    "Buy more texts in Settings → Plan, then Resend it."
)
ALERT_JOB_TIMEOUT = 60


@dataclass(frozen=True)
class AutoSetting:
    """A business's choice for one automatic message, defaults filled in."""

    event: str
    enabled: bool
    channel: str  # AUTO_CHANNELS
    template: str  # the text in use (the default when not customised)
    customised: bool  # the business wrote its own text
    reminder_hours: tuple[int, ...]  # reminders only, soonest-before last (48, 24, ...)
    ask_to_confirm: bool  # reminders only: end with "Reply C to confirm"
    thank_for_confirming: bool  # reminders only: answer a C with "Thanks, see you then"

    @property
    def label(self) -> str:
        return AUTO_EVENTS[self.event]

    @property
    def default_template(self) -> str:
        return DEFAULT_TEMPLATES[self.event]


@dataclass(frozen=True)
class ConfirmByReply:
    """Whether a reminder may ask the client to reply C, and if not, why in plain words."""

    offered: bool
    reason: str | None = None


def _check_event(event: str) -> None:
    if event not in AUTO_EVENTS:
        raise ServiceError("There is no such automatic message.")


def _row(business_id: int, event: str) -> AutoMessageSetting | None:
    return db.session.get(AutoMessageSetting, (business_id, event))


def _of(event: str, row: AutoMessageSetting | None) -> AutoSetting:
    if row is None:
        return AutoSetting(
            event=event,
            enabled=event not in DEFAULT_OFF_EVENTS,
            channel=DEFAULT_CHANNEL,
            template=DEFAULT_TEMPLATES[event],
            customised=False,
            reminder_hours=DEFAULT_REMINDER_HOURS if event == "reminder" else (),
            ask_to_confirm=False,
            thank_for_confirming=False,
        )
    return AutoSetting(
        event=event,
        enabled=row.enabled,
        channel=row.channel if row.channel in AUTO_CHANNELS else DEFAULT_CHANNEL,
        template=row.template or DEFAULT_TEMPLATES[event],
        customised=row.template is not None,
        reminder_hours=tuple(sorted(row.reminder_hours or (), reverse=True))
        if event == "reminder"
        else (),
        ask_to_confirm=row.ask_to_confirm,
        thank_for_confirming=row.thank_for_confirming,
    )


def setting_for(business_id: int, event: str) -> AutoSetting:
    """The business's setting for one event of AUTO_EVENTS (its defaults when it has no row).
    Raises ServiceError for an unknown event."""
    _check_event(event)
    return _of(event, _row(business_id, event))


def all_settings(business_id: int) -> list[AutoSetting]:
    """Every event's setting, in the order the Auto messages tab shows them."""
    rows = {
        row.event: row
        for row in db.session.execute(
            db.select(AutoMessageSetting).where(AutoMessageSetting.business_id == business_id)
        ).scalars()
    }
    return [_of(event, rows.get(event)) for event in AUTO_EVENTS]


def confirm_by_reply(business_id: int, *, sender: str | None = None) -> ConfirmByReply:
    """Whether clients' replies to booking texts reach the business: two-way texting on a
    verified number, which booking texts then go from (DESIGN.md §1, §6). `sender`: the
    booking texts' number (`sender_for(..., "transactional")`) when the caller has it."""
    business = texting.get_business(business_id)
    if sender is None:
        sender = texting.sender_for(business_id, "transactional")
    if sender != texting.system_numbers().transactional:
        return ConfirmByReply(True)
    offer = texting.availability(business)
    if not offer.offered:
        reason = (
            "Your booking texts go from our shared number, and replies to it never reach "
            "your inbox, so clients can't confirm by replying. " + (offer.reason or "")
        ).strip()
    elif business.sms_setting == "do_not_reply":
        reason = (
            "Your SMS setting is “Do not reply” auto message: booking texts go from our "
            "shared number and replies are answered with your Do not reply text, so clients "
            "can't confirm by replying. Turn on two-way texting in SMS Settings."
        )
    elif business.sms_setting == "no_auto_reply":
        reason = (
            "Your SMS setting is No auto reply: booking texts go from our shared number and "
            "replies reach no one, so clients can't confirm by replying. Turn on two-way "
            "texting in SMS Settings."
        )
    else:
        reason = (
            "Until the carriers verify your texting number, booking texts go from our shared "
            "number and replies to it don't reach your inbox. Confirm by reply becomes "
            "available once your number is verified."
        )
    return ConfirmByReply(False, reason)


def template_limit(event: str) -> int:
    """The most characters an event's template may render to: a reminder keeps room for
    the " Reply C to confirm." it may end with."""
    return MAX_CHARACTERS - (len(CONFIRM_SUFFIX) if event == "reminder" else 0)


def save_setting(
    business_id: int,
    event: str,
    *,
    enabled: bool,
    channel: str,
    template: str,
    reminder_hours: list[int] | tuple[int, ...] = (),
    ask_to_confirm: bool | None = None,
    thank_for_confirming: bool | None = None,
    user_id: int | None,
    now: datetime,
) -> AutoSetting:
    """Stores the business's choice for one event and commits. `reminder_hours` (reminders
    only): one or two of REMINDER_OFFSETS_HOURS. `ask_to_confirm` / `thank_for_confirming`
    None, or any value while replies cannot reach the business: left as they were. A text
    equal to the default is stored as "the default" (later improvements to it apply).
    Raises ServiceError, with nothing changed, on bad input."""
    _check_event(event)
    if channel not in AUTO_CHANNELS:
        raise ServiceError("Choose how this message reaches the client.", field="channel")
    cleaned = message_templates.check(
        template, placeholders=PLACEHOLDERS, limit=template_limit(event)
    )
    hours: list[int] = []
    if event == "reminder":
        hours = sorted({int(h) for h in reminder_hours}, reverse=True)
        if any(h not in REMINDER_OFFSETS_HOURS for h in hours):
            raise ServiceError(
                "A reminder goes 1, 2, 24 or 48 hours before the appointment.",
                field="reminder_hours",
            )
        if len(hours) > MAX_REMINDERS:
            raise ServiceError(f"Choose at most {MAX_REMINDERS} reminders.", field="reminder_hours")
        if enabled and not hours:
            raise ServiceError(
                "Choose when the reminder goes, or turn reminders off.", field="reminder_hours"
            )
    row = _row(business_id, event)
    if row is None:
        row = AutoMessageSetting(business_id=business_id, event=event)
        db.session.add(row)
        previous = _of(event, None)
        row.ask_to_confirm, row.thank_for_confirming = False, False
    else:
        previous = _of(event, row)
    row.enabled = bool(enabled)
    row.channel = channel
    row.template = None if cleaned == DEFAULT_TEMPLATES[event] else cleaned
    row.reminder_hours = hours
    if event == "reminder" and confirm_by_reply(business_id).offered:
        if ask_to_confirm is not None:
            row.ask_to_confirm = bool(ask_to_confirm)
        if thank_for_confirming is not None:
            row.thank_for_confirming = bool(thank_for_confirming)
    else:
        row.ask_to_confirm = previous.ask_to_confirm
        row.thank_for_confirming = previous.thank_for_confirming
    row.updated_by_id = user_id
    row.updated_at = now
    db.session.commit()
    return _of(event, row)


def reset_template(
    business_id: int, event: str, *, user_id: int | None, now: datetime
) -> AutoSetting:
    """Puts the event's default text back (its other choices stay) and commits."""
    _check_event(event)
    row = _row(business_id, event)
    if row is not None:
        row.template = None
        row.updated_by_id = user_id
        row.updated_at = now
        db.session.commit()
    return _of(event, row)


def preview(business_id: int, event: str, template: str, *, ask_to_confirm: bool = False):
    """The editor's live preview: the template with sample data and the business's own name
    and phone, ending as the reminder would, with its part count through the one split
    function (`message_templates.preview`)."""
    _check_event(event)
    business = texting.get_business(business_id)
    suffix = ""
    if event == "reminder" and ask_to_confirm and confirm_by_reply(business_id).offered:
        suffix = CONFIRM_SUFFIX
    return message_templates.preview(
        template,
        placeholders=PLACEHOLDERS,
        limit=template_limit(event),
        suffix=suffix,
        business_name=business.name,
        business_phone=_business_phone(business) or "(555) 010-1234",
    )


# --- What a message says ------------------------------------------------------------------


def _business_phone(business: Business) -> str:
    """How clients reach the business by phone: its contact phone, else its texting number."""
    number = business.contact_phone
    if not number:
        current = texting.active_number(business.id)
        number = current[0].number if current is not None else ""
    return display_phone(number, business.country) if number else ""


def _time(moment: datetime) -> str:
    return f"{moment:%I:%M %p}".lstrip("0")


def _duration(minutes: int) -> str:
    hours, rest = divmod(max(minutes, 0), 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def appointment_context(
    appointment: Appointment, *, zone: str, uses: Collection[str] | None = None
) -> dict[str, str]:
    """The placeholders' values for a message about this appointment, its times in `zone`
    (with the zone's abbreviation when it is not the business's). `uses`: the placeholders the
    template uses, when known: the ones that cost a query (the business's phone, the staff
    member's name) are looked up only if used."""
    business = db.session.get(Business, appointment.business_id)
    client = surviving_client(appointment.client)
    local_zone = ZoneInfo(zone)
    starts, ends = (
        appointment.starts_at.astimezone(local_zone),
        appointment.ends_at.astimezone(local_zone),
    )
    abroad = zone != business.time_zone
    start_time, end_time = _time(starts), _time(ends)
    if abroad:
        start_time += f" {starts.tzname()}"
        end_time += f" {ends.tzname()}"
    staff = (
        db.session.get(User, appointment.staff_id)
        if appointment.staff_id and (uses is None or "staff_name" in uses)
        else None
    )
    name = " ".join(client.name.split())
    return {
        "client_first_name": name.split(" ")[0] if name else "",
        "client_name": name,
        "business_name": business.name,
        "business_phone": (
            _business_phone(business) if uses is None or "business_phone" in uses else ""
        ),
        "business_website": business.website,
        "service": appointment.service,
        "appointment_date": f"{starts:%A}, {starts:%B} {starts.day}",
        "appointment_time": start_time,
        "appointment_end_time": end_time,
        "duration": _duration(appointment.duration_minutes),
        "staff_name": staff.name if staff is not None else "",
        "location": appointment.location,
    }


# --- Sending ------------------------------------------------------------------------------


def add_auto_message(
    appointment: Appointment,
    event: str,
    *,
    now: datetime,
    reminder_number: int | None = None,
    setting: AutoSetting | None = None,
) -> Message | None:
    """Adds the automatic message `event` about `appointment` to the caller's transaction
    (no commit; jobs are queued after it commits) and returns it, or None when none goes:

    - the event is off for the business;
    - a reminder (`reminder_number`: 1 for the one furthest before the start, 2 for the
      next, as `AutoSetting.reminder_hours` lists them) for an appointment no longer open
      (cancelled, completed, no-show) or already started, or beyond the reminders the
      business now has;
    - a thank-you for a cancelled or no-show appointment;
    - the client can't be reached by the row's channel (a note on the card says why).

    A text goes as a transactional text (see the module docstring), the reminder ending with
    "Reply C to confirm" when the setting asks for it and replies reach the business. A text
    the balance cannot cover is returned stored failed (the owner alerted once a day).
    `setting`: the business's setting for `event` when the caller has just read it."""
    if setting is None:
        setting = setting_for(appointment.business_id, event)
    if not setting.enabled:
        return None
    if event == "reminder":
        if reminder_number is not None and not 1 <= reminder_number <= MAX_REMINDERS:
            raise ValueError(f"reminder_number must be 1 to {MAX_REMINDERS}")
        if reminder_number is not None and reminder_number > len(setting.reminder_hours):
            return None
        if appointment.state not in OPEN_STATES or appointment.starts_at <= now:
            return None
    elif event == "thank_you" and appointment.state in ("cancelled", "no_show"):
        return None
    business_id = appointment.business_id
    business = db.session.get(Business, business_id)
    client = surviving_client(appointment.client)
    phone = client.primary_phone
    number = phone.number if phone is not None else None
    zone = client_time_zone(client.time_zone, number, business.time_zone)
    uses = set(message_templates.placeholders_in(setting.template))
    context = appointment_context(appointment, zone=zone, uses=uses)
    body = message_templates.render(setting.template, context, placeholders=PLACEHOLDERS)

    textable = number is not None and number.startswith("+")
    opted_out = textable and number_opted_out(business_id, number)  # type: ignore[arg-type]
    use_text = setting.channel in ("text", "text_or_email") and textable and not opted_out
    email = None
    if not use_text and setting.channel in ("email", "text_or_email"):
        email = client.primary_email.email if client.primary_email is not None else None
    use_email = not use_text and email

    if use_text:
        sender = texting.sender_for(business_id, "transactional")
        if (
            event == "reminder"
            and setting.ask_to_confirm
            and confirm_by_reply(business_id, sender=sender).offered
        ):
            body += CONFIRM_SUFFIX
        message = sending.add_text(
            business_id,
            client.id,
            body,
            sender=sender,
            recipient=number,  # type: ignore[arg-type]
            kind="transactional",
            now=now,
            auto_event=event,
            appointment_id=appointment.id,
            uncovered_reason=OUT_OF_TEXTS_REASON,
        )
        if message.status == "failed":
            _alert_out_of_texts(business, now)
        return message
    if use_email:
        return email_messages.add_email_message(
            business_id,
            client.id,
            email,  # type: ignore[arg-type]
            EMAIL_SUBJECTS[event].format(business=business.name),
            body,
            now=now,
            auto_event=event,
            appointment_id=appointment.id,
        )
    _note_not_sent(client, setting, context, why=_why_unreachable(client, setting, opted_out))
    return None


def _why_unreachable(client: Client, setting: AutoSetting, opted_out: bool) -> str:
    first = client.name
    if setting.channel == "email":
        return f"{first} has no email address"
    if opted_out:
        return f"{first} opted out of your texts" + (
            " and has no email address" if setting.channel == "text_or_email" else ""
        )
    if setting.channel == "text":
        return f"{first} has no phone number to text"
    return f"{first} has no phone number or email address"


def _note_not_sent(client: Client, setting: AutoSetting, context: dict, *, why: str) -> None:
    """Records on the client's card that an automatic message could not go, and why."""
    log.info("%s for client %s not sent: %s", setting.event, client.id, why)
    db.session.add(
        ClientNote(
            business_id=client.business_id,
            client_id=client.id,
            author_id=None,
            kind="auto_message",
            body=f"{setting.label} for {context['service']} on {context['appointment_date']} "
            f"not sent: {why}.",
        )
    )


def _alert_out_of_texts(business: Business, now: datetime) -> None:
    """Tells the owner, once a day (in the business's zone), that automatic texts are not
    going out. The first INSERT of the day's row wins: concurrent senders cannot both alert
    (ON CONFLICT DO NOTHING waits for, then yields to, a concurrent insert of the same key).
    In the caller's transaction: rolled back with it, so a day is never marked without its
    alert."""
    day = now.astimezone(ZoneInfo(business.time_zone)).date().isoformat()
    # RETURNING says whether this INSERT stored the row (rowcount is not reliable for ON
    # CONFLICT DO NOTHING across drivers).
    inserted = db.session.execute(
        insert_on_conflict(DailyAlert)
        .values(business_id=business.id, kind=OUT_OF_TEXTS, day=day, created_at=now)
        .on_conflict_do_nothing()
        .returning(DailyAlert.day)
    ).first()
    if inserted is None:
        return
    notification = notifications.notify(
        business.id,
        kind=OUT_OF_TEXTS,
        text="You're out of texts: automatic texts to clients (booking confirmations, "
        "reminders) are not being sent. Buy more texts, then Resend them from each "
        "conversation.",
        link=_settings_path(),
        now=now,
    )
    db.session.flush()
    notification_id = notification.id
    call_after_commit(lambda: enqueue(tell_owner_job(), notification_id, timeout=ALERT_JOB_TIMEOUT))


def _settings_path() -> str:
    if has_request_context():
        return url_for("shell.settings")
    with current_app.test_request_context():
        return url_for("shell.settings")


def tell_owner_job():
    from jobs.auto_messages import tell_owner_out_of_texts

    return tell_owner_out_of_texts


def tell_owner_out_of_texts(notification_id: int) -> None:
    """The alert's job: the notification live on open pages (and push), and an email to the
    owner."""
    from app.services.accounts import public_url
    from app.services.mail import send_email

    notification = db.session.get(Notification, notification_id)
    if notification is None:
        return
    notifications.announce(notification)
    business = db.session.get(Business, notification.business_id)
    owners = db.session.execute(
        db.select(User.email).where(
            User.business_id == business.id, User.role == "owner", User.deactivated_at.is_(None)
        )
    ).scalars()
    for email in owners:
        send_email(
            to=email,
            subject=f"{business.name} is out of texts: automatic texts are not being sent",
            body=(
                f"{business.name} has no texts left, so Twoway could not send today's "
                "automatic texts to your clients (booking confirmations, reminders). Each one "
                "is shown as failed in its conversation.\n\n"
                "Buy more texts, then Resend the failed texts from each conversation: "
                f"{public_url('shell.settings')}\n\n"
                "You'll get at most one of these emails a day.\n"
            ),
        )


# --- The appointments service's changes ---------------------------------------------------


def _on_appointment_changed(
    appointment: Appointment,
    *,
    change: str,
    now: datetime,
    previous_starts_at: datetime | None = None,
    **_: object,
) -> None:
    """`appointment_changed` receiver: the message that change sends, if its row is on. A
    change of length alone (the start unchanged) tells the client nothing new: no text."""
    event = SENT_ON_CHANGE.get(change)
    if change == "rescheduled" and previous_starts_at == appointment.starts_at:
        return
    if event is not None:
        add_auto_message(appointment, event, now=now)


appointment_changed.connect(_on_appointment_changed, weak=False)
