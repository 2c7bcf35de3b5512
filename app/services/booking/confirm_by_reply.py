"""Confirm by reply (issue 11 item 5): a client answers a reminder with C and their next
appointment is confirmed.

A text confirms when all of these hold (`confirm_if_asked`, called by the inbound pipeline
in the transaction that records the text, after the compliance keywords, which come first):

- it reached the business's dedicated number with two-way texting on and the number verified
  (the text shows in the inbox: replies to a shared system number follow the system-number
  routing and confirm nothing; held and logged texts confirm nothing);
- the business's reminder setting asks to confirm (`AutoMessageSetting.ask_to_confirm`);
- the whole text is C or CONFIRM: any case, spaces and punctuation around it ignored ("c",
  "Confirm!", " C. "), as compliance keywords are read;
- that number got a reminder text from that dedicated number, to this client's card, in the
  last REMINDER_WINDOW (created or sent then);
- the client's card (the surviving one, after merges, and the cards merged into it) has an
  open appointment ahead: the first one is confirmed. One already
  confirmed stays as it is (nothing changes, nothing is sent: the C is answered already).

Confirming (`confirm_appointment`) is one conditional UPDATE (booked → confirmed, via
"reply", at `now`), so two C's handled at once confirm once. It links the inbound text to the
appointment (`Message.appointment_id`: the conversation shows "Confirmed … by replying" under
the bubble), sends `appointment_changed` with change "confirmed" and no user inside the
transaction (staff alerts hear of it there), and publishes `appointment.changed` after the
commit for open agendas. With `thank_for_confirming`, the client gets one "Thanks, see you
then" (`sending.add_reply`, purpose "confirm_thanks": at most one answer per inbound text,
however often Vonage delivers it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_

from app.extensions import db
from app.models import Appointment, AutoMessageSetting, Client, Message, MessagePart
from app.services import keywords, sending
from app.services.booking import appointments
from app.services.errors import ServiceError

REMINDER_WINDOW = timedelta(hours=48)
CONFIRM_WORDS = frozenset({"C", "CONFIRM"})
THANKS = "Thanks, see you then"
APPOINTMENT_EVENT = appointments.EVENT  # SSE: an appointment's state or time changed


@dataclass(frozen=True)
class Confirmation:
    """What a C did: the appointment it is about, whether this text confirmed it (False:
    it was confirmed already), and the thanks added, if any."""

    appointment: Appointment
    confirmed_now: bool
    thanks: Message | None


def is_confirmation(text: str) -> bool:
    """True when the whole text is C or CONFIRM (any case, punctuation and spaces ignored)."""
    words = keywords.words_of(text)
    return len(words) == 1 and words[0] in CONFIRM_WORDS


def _asks_to_confirm(business_id: int) -> AutoMessageSetting | None:
    setting = db.session.get(AutoMessageSetting, (business_id, "reminder"))
    if setting is None or not setting.enabled or not setting.ask_to_confirm:
        return None
    return setting


def card_ids(client: Client) -> list[int]:
    """The client's card and every card merged into it (a merge moves rows to the kept card;
    this also covers a row stored for the old card while the merge was committing)."""
    ids = [client.id]
    frontier = [client.id]
    while frontier:
        frontier = list(
            db.session.execute(
                db.select(Client.id).where(
                    Client.business_id == client.business_id,
                    Client.merged_into_id.in_(frontier),
                )
            ).scalars()
        )
        ids.extend(frontier)
    return ids


def _had_reminder(inbound: Message, client_ids: list[int], now: datetime) -> bool:
    since = now - REMINDER_WINDOW
    sent_recently = (
        db.select(MessagePart.id)
        .where(MessagePart.message_id == Message.id, MessagePart.sent_at >= since)
        .exists()
    )
    return (
        db.session.execute(
            db.select(Message.id)
            .where(
                Message.business_id == inbound.business_id,
                Message.client_id.in_(client_ids),
                Message.direction == "outbound",
                Message.channel == "text",
                Message.auto_event == "reminder",
                Message.sender == inbound.recipient,
                Message.recipient == inbound.sender,
                or_(Message.created_at >= since, sent_recently),
            )
            .limit(1)
        ).first()
        is not None
    )


def next_open_appointment(business_id: int, client_ids: list[int], now: datetime):
    """The client's first appointment ahead that is booked or confirmed."""
    return db.session.execute(
        db.select(Appointment)
        .where(
            Appointment.business_id == business_id,
            Appointment.client_id.in_(client_ids),
            Appointment.state.in_(("booked", "confirmed")),
            Appointment.starts_at > now,
        )
        .order_by(Appointment.starts_at, Appointment.id)
        .limit(1)
    ).scalar_one_or_none()


def confirm_appointment(appointment: Appointment, *, now: datetime) -> bool:
    """Booked → confirmed by the client's reply, in the caller's transaction, through the
    appointments service (the state, the signal, the live update after the commit). False
    (nothing changed) when it was not booked any more."""
    if appointment.state != "booked":
        return False
    try:
        return appointments.confirm_by_reply(appointment, now=now, commit=False)
    except ServiceError:  # it ended or was cancelled since it was picked
        return False


def confirm_if_asked(inbound: Message, client: Client, *, now: datetime) -> Confirmation | None:
    """Confirms the client's next appointment when the inbound text is a C that answers a
    reminder (see the module docstring); None when it is not one. Adds to the caller's
    transaction; the caller commits and queues the thanks (`sending.queue_reply`)."""
    if inbound.visibility != "inbox" or inbound.keyword is not None or inbound.revocation:
        return None
    if not is_confirmation(inbound.body):
        return None
    setting = _asks_to_confirm(inbound.business_id)
    if setting is None:
        return None
    ids = card_ids(client)
    if not _had_reminder(inbound, ids, now):
        return None
    appointment = next_open_appointment(inbound.business_id, ids, now)
    if appointment is None:
        return None
    confirmed_now = appointment.state == "booked" and confirm_appointment(appointment, now=now)
    if not confirmed_now:
        db.session.refresh(appointment)  # another C, or staff, may have just changed it
        if appointment.state != "confirmed":
            return None
    inbound.appointment_id = appointment.id
    thanks = None
    if confirmed_now and setting.thank_for_confirming:
        thanks = sending.add_reply(
            inbound,
            THANKS,
            purpose="confirm_thanks",
            auto_event="confirm_thanks",
            appointment_id=appointment.id,
            now=now,
        )
    return Confirmation(appointment, confirmed_now, thanks)
