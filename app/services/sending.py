"""Sending texts: save first, then send each part exactly once (DESIGN.md §4, issue 5 item 4).

`send_text` checks everything that can refuse a text (its length, the client's phone, an
opt-out, the sender, the balance), then saves the message, its parts and the charge in one
transaction, and queues `jobs.sending.send_message`. Nothing has gone out when it refuses.
`add_text` stores a text Twoway writes itself (an automatic message about an appointment) the
same way, inside the caller's transaction, queued after its commit; a balance that cannot
cover it stores it failed, with the reason, instead of refusing (the caller's change stands).

The job sends the parts in order, each through `Gateway.send_part` with the part's
`client_ref`, under the account-wide rate (`app.services.rate_limit`). A part is never sent
twice:

- Before the call the part is *claimed*: an atomic `queued → sending` UPDATE. A second job (a
  retry, a duplicate, a Resend racing a retry) finds nothing queued and sends nothing.
- After a throttle or an outage the part goes back to `queued` (the request did not go out)
  and the job is queued again after a backoff.
- When the answer was lost (`OutcomeUnknown`) the part becomes `unknown`: it may well have
  gone out, so it is not sent again. Its delivery receipt, found by client-ref, settles it.
- A part left in `sending` (its worker was killed mid-call) is not sent again either:
  `sweep` marks it `unknown` after SENDING_TIMEOUT, unless its receipt has arrived first.
  Staff can Resend an unknown or failed part; that sends it again and charges again.

Vonage refusing a part outright (`PermanentFailure`) fails it with the plain-English reason
and gives its text back (see `app.services.balance`).

Every text shares the account's rate, so its job waits in a lane (`app.services.queues`,
DESIGN.md §10) that `lane_for` picks from the message: automatic booking texts in the booking
lane, behind texts people wait on (staff texts, automatic answers, staff alerts). The job of a
message always goes to the message's lane, however it is queued again (a retry after a
throttle or an outage, a Resend, the sweep after a lost job).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, update

from app.extensions import db
from app.models.booking import AUTO_EVENTS
from app.models.messages import PART_PROGRESS, WORST_FIRST, Message, MessagePart
from app.models.types import utcnow
from app.services import balance, events, inbox, periodic, queues, rate_limit, texting
from app.services.after_commit import call_after_commit
from app.services.clients import client_or_none, number_opted_out, surviving_client
from app.services.errors import ServiceError
from app.services.queues import enqueue
from app.services.segments import SplitText, check_text
from app.services.text_input import multi_line
from app.vonage_gateway import (
    OutcomeUnknown,
    PermanentFailure,
    TemporaryFailure,
    Throttled,
    get_gateway,
)

log = logging.getLogger(__name__)

SEND_JOB_TIMEOUT = 300  # seconds: a 550-character Unicode text is 8 parts, each within the rate
SENDING_TIMEOUT = timedelta(minutes=2)  # a part `sending` this long: its worker died mid-call
LOST_JOB_AFTER = timedelta(minutes=10)  # a part `queued` this long: its job was lost
SWEEP_EVERY = timedelta(minutes=1)
RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300)  # seconds, after each outage in a row
MAX_ATTEMPTS = 100  # calls for one part, throttles included, before it is given up
STATUS_EVENT = "message.status"

UNKNOWN_REASON = (
    "Vonage's answer was lost, so we don't know yet whether this part went out. Its delivery "
    "receipt will tell us; if none arrives, you can resend it (it may then arrive twice)."
)


def retry_delay(failures: int) -> timedelta:
    """How long to wait after the `failures`-th outage in a row (or a throttle: `failures` 0)."""
    index = min(max(failures, 1), len(RETRY_DELAYS)) - 1
    return timedelta(seconds=RETRY_DELAYS[index])


def _new_client_ref(index: int) -> str:
    # Random, so refs never repeat across databases (a dev reset, a restore): a receipt
    # for an old part can never be taken for a new one.
    return f"{secrets.token_hex(10)}-{index}"


def unverified_warning(business_id: int) -> str | None:
    """The composer's warning while direct texts go from a number the carriers have not
    verified yet (DESIGN.md §3); None once it is verified, or when there is no number."""
    current = texting.active_number(business_id)
    if current is None:
        return None
    number, verification = current
    if verification is not None and verification.state == "verified":
        return None
    return (
        "Your texting number is still being verified by the carriers. Texts from it may not "
        "reach clients until it is verified."
    )


def send_text(
    business_id: int,
    client_id: int,
    body: str,
    *,
    user_id: int | None,
    kind: str = "direct",
    now: datetime,
) -> Message:
    """Saves a text to the client and queues it for sending. Raises ServiceError, before
    anything is saved, sent or charged, when it cannot go out. The body is cleaned first
    (`text_input.multi_line`), as the composer's count cleans it."""
    body = multi_line(body)
    split = check_text(body)
    client = client_or_none(business_id, client_id)
    if client is None:
        raise ServiceError("That client does not exist.")
    client = surviving_client(client)
    phone = client.primary_phone
    if phone is None:
        raise ServiceError(f"{client.name} has no phone number to text.")
    if number_opted_out(business_id, phone.number):
        raise ServiceError(
            f"{client.name} has opted out of your texts (they replied STOP), so this text was "
            "not sent. They can reply START to get texts again."
        )
    sender = texting.sender_for(business_id, kind)  # type: ignore[arg-type]
    message = _new_text(
        business_id,
        body,
        client_id=client.id,
        kind=kind,
        sender=sender,
        recipient=phone.number,
        sent_by_id=user_id,
        now=now,
    )
    charge = balance.reserve(business_id, split.count, now, message_id=message.id)
    _add_parts(message, split, charge, now)
    inbox.record_message(message, attention=False, now=now)  # the inbox's latest activity
    db.session.commit()
    _queue(message.id, lane_of(message))
    _publish(message)
    inbox.announce(business_id, message.client_id, message.id)
    return message


def _new_text(business_id: int, body: str, *, now: datetime, **fields) -> Message:
    """Adds an outbound text's message row (no parts yet) to the session and flushes it, so
    its id can be charged and its parts written. `fields`: client, kind, numbers, and what
    else the message records (sent_by_id, visibility, reply_to_id, auto_event, …)."""
    message = Message(
        business_id=business_id,
        channel="text",
        direction="outbound",
        body=body,
        status="queued",
        created_at=now,
        updated_at=now,
        **fields,
    )
    db.session.add(message)
    db.session.flush()
    return message


def _add_parts(
    message: Message,
    split: SplitText,
    charge: balance.Charge | None,
    now: datetime,
    *,
    failed: tuple[str, str] | None = None,
) -> None:
    """Adds the message's parts (one per text it is sent as), each with where its text was
    charged from (`charge`; None: not charged). `failed`: (err_code, reason) of a text that
    will not go out as it is, stored failed so the conversation says why (Resend can still
    send it once the reason is gone)."""
    for index, text in enumerate(split.parts):
        source = charge.source_of(index) if charge is not None else None
        db.session.add(
            MessagePart(
                message_id=message.id,
                business_id=message.business_id,
                index=index,
                text=text,
                unicode=split.encoding == "UCS-2",
                client_ref=_new_client_ref(index),
                status="failed" if failed else "queued",
                err_code=failed[0] if failed else None,
                reason=failed[1] if failed else None,
                charged_from=source,
                charged_month=charge.month
                if charge is not None and source == "allowance"
                else None,
                updated_at=now,
            )
        )


def add_text(
    business_id: int,
    client_id: int,
    body: str,
    *,
    sender: str,
    recipient: str,
    kind: str,
    now: datetime,
    auto_event: str | None = None,
    appointment_id: int | None = None,
    uncovered_reason: str,
) -> Message:
    """Adds a text that Twoway itself sends (an automatic message) to the caller's transaction:
    the message, its parts and its charge, exactly as `send_text` stores them; its job is
    queued, and open pages told, after the caller commits (`call_after_commit`). The caller
    has checked the recipient (a phone number that has not opted out).

    When the balance cannot cover every part, nothing is charged or sent: the message is
    stored `failed`, each part with `uncovered_reason`, its conversation put in Require your
    attention, and a Resend sends it once texts are bought. Raises ServiceError (nothing
    added) for a body `check_text` refuses."""
    split = check_text(body)
    message = _new_text(
        business_id,
        body,
        client_id=client_id,
        kind=kind,
        sender=sender,
        recipient=recipient,
        auto_event=auto_event,
        appointment_id=appointment_id,
        now=now,
    )
    # Locks the balance row for the caller's transaction: concurrent sends cannot both take
    # the last texts, and a shortfall changes nothing (no rollback of the caller's work).
    charge = balance.try_reserve(business_id, split.count, now, message_id=message.id)
    if charge is None:
        message.status = "failed"
        _add_parts(message, split, None, now, failed=("balance", uncovered_reason))
    else:
        _add_parts(message, split, charge, now)
    inbox.record_message(message, attention=charge is None, now=now)
    reason = uncovered_reason if charge is None else None
    _after_commit(message, [(index, message.status, reason) for index in range(split.count)])
    return message


def _after_commit(message: Message, parts: list[tuple[int, str, str | None]]) -> None:
    """Queues the message's job (when it is to go out) and tells open pages, once the
    caller's transaction has committed: with values captured now, as after the commit the
    session cannot be asked (see `app.services.after_commit`)."""
    message_id, business_id, client_id = message.id, message.business_id, message.client_id
    status, lane = message.status, lane_of(message)
    payload = {
        "message_id": message_id,
        "client_id": client_id,
        "status": status,
        "parts": [{"index": i, "status": s, "reason": r} for i, s, r in parts],
    }

    def after() -> None:
        if status == "queued":
            _queue(message_id, lane)
        if client_id is not None:
            inbox.announce(business_id, client_id, message_id)
        events.publish(business_id, STATUS_EVENT, payload)

    call_after_commit(after)


def resend(business_id: int, message_id: int, *, now: datetime) -> Message:
    """Sends a message's failed and unknown parts again, charging for them again. An unknown
    part may have gone out already, so the client may get it twice. Raises ServiceError."""
    message = db.session.get(Message, message_id)
    if message is None or message.business_id != business_id:
        raise ServiceError("That message does not exist.")
    again = [part for part in message.parts if part.status in ("failed", "unknown")]
    if not again:
        raise ServiceError("Nothing to resend: every part of this text went out.")
    charge = balance.reserve(business_id, len(again), now, message_id=message.id)
    for number, part in enumerate(again):
        moved = db.session.execute(
            update(MessagePart)
            .where(MessagePart.id == part.id, MessagePart.status.in_(("failed", "unknown")))
            .values(
                status="queued",
                client_ref=_new_client_ref(part.index),
                vonage_message_id=None,
                err_code=None,
                reason=None,
                failures=0,
                claimed_at=None,
                charged_from=charge.source_of(number),
                charged_month=charge.month if charge.source_of(number) == "allowance" else None,
                refunded=False,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != 1:  # a receipt settled it meanwhile: nothing to resend, nothing to pay
            db.session.rollback()
            raise ServiceError("This text's status just changed. Look again before resending.")
    _update_message_status(message.id, now)
    db.session.commit()
    _queue(message.id, lane_of(message))
    _publish(message)
    return message


def lane_for(kind: str, auto_event: str | None) -> str:
    """The lane a text's sending job waits in (`app.services.queues`, DESIGN.md §10): an
    automatic booking text (confirmation, rescheduled, cancelled, reminder, thank-you) in the
    booking lane; every other text in the direct lane, first: what staff write, Twoway's
    answers to inbound texts (STOP, HELP, "Do not reply", the thanks for a C) and staff
    alerts, each one a person is waiting on, as many as people make. (A staff alert tells of
    a booking, but it is one text per event for the staff who asked, and it is worth nothing
    ten minutes late behind the day's reminders.) Marketing texts (campaigns, issue 12) will
    get the campaigns lane after booking; until it exists they wait in the last lane."""
    if kind == "marketing":
        return queues.LANES[-1]
    if auto_event in AUTO_EVENTS:
        return queues.BOOKING
    return queues.DIRECT


def lane_of(message: Message) -> str:
    """The lane of this message's sending job (`lane_for`)."""
    return lane_for(message.kind, message.auto_event)


def _queue(message_id: int, lane: str, delay: timedelta | None = None) -> None:
    """Queues the message's sending job in its lane (`lane_of`), now or after `delay`."""
    from jobs.sending import send_message

    enqueue(send_message, message_id, queue=lane, timeout=SEND_JOB_TIMEOUT, delay=delay)


def queue_sweep_when_due(*, now: datetime) -> None:
    """Queues the sweep every SWEEP_EVERY (the workers' watchman asks every second,
    `app.worker`): a sweep whose job died is followed by the next one on time."""
    from jobs.sending import sweep

    periodic.queue_when_due(
        sweep, SWEEP_EVERY, name="sending-sweep", now=now, timeout=SEND_JOB_TIMEOUT
    )


# --- The job ----------------------------------------------------------------------------------


def _claim(part_id: int, now: datetime) -> bool:
    claimed = db.session.execute(
        update(MessagePart)
        .where(MessagePart.id == part_id, MessagePart.status == "queued")
        .values(
            status="sending",
            claimed_at=now,
            attempts=MessagePart.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def _settle(part_id: int, now: datetime, *, only_from: tuple[str, ...], **values) -> bool:
    """Moves a part on from one of `only_from` (a receipt may have moved it further already)."""
    return (
        db.session.execute(
            update(MessagePart)
            .where(MessagePart.id == part_id, MessagePart.status.in_(only_from))
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def send_message(message_id: int, *, now: datetime | None = None) -> None:
    """Sends the message's queued parts in order (the job). Safe to run twice or at once."""
    message = db.session.get(Message, message_id)
    if message is None or message.channel != "text":
        return
    lane = lane_of(message)  # a retry goes back to the message's own lane
    sender, recipient = message.sender, message.recipient  # read once: each claim commits
    gateway = get_gateway()
    gateway.prepare()
    part_ids = db.session.execute(
        db.select(MessagePart.id)
        .where(MessagePart.message_id == message_id, MessagePart.status == "queued")
        .order_by(MessagePart.index)
    ).scalars()
    for part_id in list(part_ids):
        moment = now or utcnow()
        if not _claim(part_id, moment):
            continue  # another job has it, or it is no longer queued
        # The slot is taken last, right before the call, so the calls reach Vonage spaced as
        # the limiter spaced them.
        if not rate_limit.acquire_send_slot():
            # Very busy: nothing went out, so the part goes back to the queue for a moment.
            _settle(part_id, moment, only_from=("sending",), status="queued", claimed_at=None)
            db.session.commit()
            _queue(message_id, lane, delay=timedelta(seconds=1))
            break
        part = db.session.get(MessagePart, part_id, populate_existing=True)
        try:
            sent = gateway.send_part(
                sender=sender,
                to=recipient,
                text=part.text,
                unicode=part.unicode,
                client_ref=part.client_ref,
                callback_url=None,  # receipts go to the account's status URL (README)
            )
        except (Throttled, TemporaryFailure) as error:
            if _retry_later(part, error, isinstance(error, Throttled), now or utcnow(), lane):
                break  # later parts wait, so the client gets them in order
            continue
        except OutcomeUnknown as error:
            log.warning("part %s: %s", part_id, error)
            _settle(
                part_id,
                now or utcnow(),
                only_from=("sending",),
                status="unknown",
                reason=UNKNOWN_REASON,
                claimed_at=None,
            )
        except PermanentFailure as error:
            moment = now or utcnow()
            if _settle(
                part_id,
                moment,
                only_from=("sending",),
                status="failed",
                err_code=str(error.code)[:32],
                reason=error.reason,
                claimed_at=None,
            ):
                balance.refund_part(part_id, moment)
        else:
            moment = now or utcnow()
            # One statement: Vonage's id always; "sent" only from sending or unknown (a receipt
            # may have moved the part further already). The CASEs read the row as it was.
            not_further = MessagePart.status.in_(("sending", "unknown"))
            db.session.execute(
                update(MessagePart)
                .where(MessagePart.id == part_id)
                .values(
                    vonage_message_id=sent.message_id,
                    sent_at=moment,
                    failures=0,
                    claimed_at=None,
                    updated_at=moment,
                    status=case((not_further, "sent"), else_=MessagePart.status),
                    reason=case((not_further, None), else_=MessagePart.reason),
                )
                .execution_options(synchronize_session=False)
            )
        _finish_part(message_id, now or utcnow())


def _retry_later(
    part: MessagePart, error: Exception, throttled: bool, now: datetime, lane: str
) -> bool:
    """After a throttle or an outage (the request did not go out): back to queued and the job
    again after a backoff, in the message's `lane`, or failed when it has been tried too
    often. True if retrying."""
    failures = part.failures + (0 if throttled else 1)
    if part.attempts >= MAX_ATTEMPTS or failures > len(RETRY_DELAYS):
        if _settle(
            part.id,
            now,
            only_from=("sending",),
            status="failed",
            err_code="retries",
            reason="Vonage, our texting provider, did not accept this part after many tries "
            "over several minutes. Nothing was charged for it; you can resend it.",
            claimed_at=None,
            failures=failures,
        ):
            balance.refund_part(part.id, now)
        _finish_part(part.message_id, now)
        return False
    log.info("part %s: %s; retrying", part.id, error)
    _settle(
        part.id, now, only_from=("sending",), status="queued", claimed_at=None, failures=failures
    )
    db.session.commit()
    _queue(part.message_id, lane, delay=retry_delay(failures))
    _finish_part(part.message_id, now)
    return True


def _finish_part(message_id: int, now: datetime) -> None:
    """Commits a part's change with its message's status, then tells open pages. A message
    that has just failed for good puts its conversation in Require your attention."""
    change = _update_message_status(message_id, now)
    failed_now = change is not None and change.worst == "failed" and change.before != "failed"
    if failed_now and change.client_id is not None:
        inbox.flag_client(change.business_id, change.client_id, now)
    db.session.commit()
    if change is not None:
        _publish_status(change.business_id, message_id, change.client_id)
        if failed_now and change.client_id is not None:
            inbox.announce(change.business_id, change.client_id)


@dataclass(frozen=True)
class _StatusChange:
    business_id: int
    client_id: int | None
    before: str
    worst: str


def _worst(statuses: set[str]) -> str:
    return next(status for status in WORST_FIRST if status in statuses)


def _update_message_status(message_id: int, now: datetime) -> _StatusChange | None:
    """The message's status becomes the worst of its parts' (in the caller's transaction; one
    read and, when it changes, one update: this runs once or twice for every part sent). None
    for a message without parts."""
    rows = db.session.execute(
        db.select(Message.business_id, Message.client_id, Message.status, MessagePart.status)
        .join(MessagePart, MessagePart.message_id == Message.id)
        .where(Message.id == message_id)
    ).all()
    if not rows:
        return None
    business_id, client_id, before, _ = rows[0]
    worst = _worst({part_status for *_, part_status in rows})
    if worst != before:
        db.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=worst, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return _StatusChange(business_id, client_id, before, worst)


def _publish(message: Message) -> None:
    _publish_status(message.business_id, message.id, message.client_id, message.status)


def _publish_status(
    business_id: int, message_id: int, client_id: int | None, status: str | None = None
) -> None:
    """Tells open pages the message's status and its parts' (read after the commit, so the
    event is never older than what is stored). `status` None: the worst of the parts'."""
    parts = db.session.execute(
        db.select(MessagePart.index, MessagePart.status, MessagePart.reason)
        .where(MessagePart.message_id == message_id)
        .order_by(MessagePart.index)
    ).all()
    events.publish(
        business_id,
        STATUS_EVENT,
        {
            "message_id": message_id,
            "client_id": client_id,
            "status": status if status is not None else _worst({p.status for p in parts}),
            "parts": [{"index": p.index, "status": p.status, "reason": p.reason} for p in parts],
        },
    )


# --- Delivery receipts ------------------------------------------------------------------------

RECEIPT_STATUSES = {
    "delivered": "delivered",
    "accepted": "sent",
    "buffered": "sent",
    "failed": "failed",
    "rejected": "failed",
    "expired": "failed",
}


def record_receipt(
    *,
    client_ref: str | None,
    vonage_message_id: str | None,
    status: str,
    err_code: str | None,
    now: datetime,
) -> MessagePart | None:
    """Applies a delivery receipt to its part (found by client-ref, else Vonage's message id).
    Moves the part forward only, so repeated and out-of-order receipts change nothing wrong.
    Returns the part, or None when the receipt is for no part of ours."""
    part = None
    if client_ref:
        part = db.session.execute(
            db.select(MessagePart).where(MessagePart.client_ref == client_ref)
        ).scalar_one_or_none()
    if part is None and vonage_message_id:
        part = db.session.execute(
            db.select(MessagePart).where(MessagePart.vonage_message_id == vonage_message_id)
        ).scalar_one_or_none()
    if part is None:
        return None
    new_status = RECEIPT_STATUSES.get(status.lower())
    if new_status is None:  # "unknown": the carrier said nothing useful; keep what we know
        return part
    earlier = [s for s, rank in PART_PROGRESS.items() if rank < PART_PROGRESS[new_status]]
    values: dict = {"status": new_status, "claimed_at": None}
    if vonage_message_id:
        values["vonage_message_id"] = vonage_message_id[:64]
    if new_status == "failed":
        code = (err_code or "1").strip()[:32]
        values["err_code"] = code
        values["reason"] = _delivery_reason(code)
    elif new_status in ("sent", "delivered"):
        values["reason"] = None
    if part.sent_at is None:
        values["sent_at"] = now
    moved = _settle(part.id, now, only_from=tuple(earlier), **values)
    if moved:
        _finish_part(part.message_id, now)
    else:
        db.session.commit()
    db.session.refresh(part)
    return part


def _delivery_reason(err_code: str) -> str:
    from app.vonage_gateway import delivery_failure_reason

    return delivery_failure_reason(err_code)


# --- The sweep (periodic job) -----------------------------------------------------------------


def sweep(*, now: datetime) -> None:
    """Settles what dead jobs left: parts `sending` for too long become `unknown` (never sent
    blindly again; their receipt can still settle them), and messages with parts `queued` for
    too long are queued again (their job was lost)."""
    stale = db.session.execute(
        db.select(MessagePart.id, MessagePart.message_id).where(
            MessagePart.status == "sending", MessagePart.claimed_at < now - SENDING_TIMEOUT
        )
    ).all()
    for part_id, message_id in stale:
        if _settle(
            part_id,
            now,
            only_from=("sending",),
            status="unknown",
            reason=UNKNOWN_REASON,
            claimed_at=None,
        ):
            _finish_part(message_id, now)
    lost = db.session.execute(
        db.select(MessagePart.message_id, Message.kind, Message.auto_event)
        .join(Message, Message.id == MessagePart.message_id)
        .where(MessagePart.status == "queued", MessagePart.updated_at < now - LOST_JOB_AFTER)
        .distinct()
    ).all()
    for message_id, kind, auto_event in lost:
        _queue(message_id, lane_for(kind, auto_event))  # back to its own lane
    db.session.commit()


# --- Automatic answers to inbound texts (issue 6) -----------------------------------------

# What an automatic answer is for. Compliance answers (carriers require them) go out even when
# the balance is empty, uncharged; the others ("Do not reply", the thanks for a confirmation)
# are charged and skipped when the balance cannot cover it.
COMPLIANCE_REPLIES = ("stop", "start", "help")
# "confirm_thanks": "Thanks, see you then" to a client who confirmed by replying C.
REPLY_PURPOSES = (*COMPLIANCE_REPLIES, "do_not_reply", "confirm_thanks")


def add_reply(
    inbound: Message,
    body: str,
    *,
    purpose: str,
    now: datetime,
    auto_event: str | None = None,
    appointment_id: int | None = None,
) -> Message | None:
    """Adds Twoway's automatic answer to an inbound text to the caller's transaction (the
    caller commits, then calls `queue_reply`). It goes from the number they texted to the
    number they texted from, as a transactional text of the inbound's client, shown where the
    inbound shows. None, with nothing added, when no answer may go: a sender that is not a
    phone number (short code, sender name), an opted-out number (except for the STOP
    confirmation itself), a balance that can't cover a charged answer (not a compliance one),
    or an inbound already answered (`reply_to_id` is unique)."""
    if purpose not in REPLY_PURPOSES:
        raise ValueError(f"unknown purpose of an automatic answer: {purpose!r}")
    if not inbound.sender.startswith("+"):
        return None  # short codes and sender names cannot receive texts
    if purpose != "stop" and number_opted_out(inbound.business_id, inbound.sender):
        return None
    already = db.session.execute(
        db.select(Message.id).where(Message.reply_to_id == inbound.id)
    ).first()
    if already is not None:
        return None
    reply = add_automatic_text(
        inbound.business_id,
        body,
        client_id=inbound.client_id,
        sender=inbound.recipient,
        recipient=inbound.sender,
        visibility="inbox" if inbound.visibility == "inbox" else inbound.visibility,
        reply_to_id=inbound.id,
        auto_event=auto_event,
        appointment_id=appointment_id,
        free_when_short=purpose in COMPLIANCE_REPLIES,
        now=now,
    )
    if reply is None:
        log.info("no %s answer to message %s: balance too low", purpose, inbound.id)
        return None
    if reply.visibility == "inbox" and reply.client_id is not None:
        inbox.record_message(reply, attention=False, now=now)
    return reply


def add_automatic_text(
    business_id: int,
    body: str,
    *,
    client_id: int | None,
    sender: str,
    recipient: str,
    visibility: str,
    now: datetime,
    reply_to_id: int | None = None,
    auto_event: str | None = None,
    appointment_id: int | None = None,
    free_when_short: bool = False,
) -> Message | None:
    """Adds a transactional text that Twoway itself sends (an automatic answer, a staff
    alert) to the caller's transaction, with its parts and their charge; the caller commits,
    then queues it (`queue_reply`, or `queue_text`). None, with nothing added, when the
    balance can't cover it, unless `free_when_short` (compliance answers carriers require:
    then it goes uncharged). The caller has checked the recipient may get it."""
    split = check_text(body)
    left = balance.balance_for(business_id, now).total
    covered = left is None or left >= split.count
    if not covered and not free_when_short:
        return None
    message = _new_text(
        business_id,
        body,
        client_id=client_id,
        kind="transactional",
        sender=sender,
        recipient=recipient,
        visibility=visibility,
        reply_to_id=reply_to_id,
        auto_event=auto_event,
        appointment_id=appointment_id,
        now=now,
    )
    # Checked above in this transaction; a concurrent send that takes the last texts between
    # the check and here makes `reserve` raise, and the caller's job is retried.
    charge = None
    if covered:
        charge = balance.reserve(business_id, split.count, now, message_id=message.id)
    _add_parts(message, split, charge, now)
    return message


def queue_text(message_id: int, lane: str) -> None:
    """After the commit: sends a text saved by `add_automatic_text` that shows in no
    conversation (a staff alert), in its `lane` (`lane_of`, taken before the commit)."""
    _queue(message_id, lane)


def queue_reply(reply: Message) -> None:
    """After the commit: sends an answer saved by `add_reply`, and shows it on open pages."""
    _queue(reply.id, lane_of(reply))
    if reply.visibility == "inbox" and reply.client_id is not None:
        inbox.announce(reply.business_id, reply.client_id, reply.id)
    _publish(reply)
