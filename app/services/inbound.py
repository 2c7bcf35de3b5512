"""Receiving texts (DESIGN.md §3, §5, §6, §7, §8; issue 6 items 1–4).

The webhook (`app.routes.webhooks.vonage_inbound`) checks the signature, validates the fields
with `parse_inbound`, stores each Vonage message once with `record_part` (the `messageId` is
unique: a retry stores nothing), hands it to the draining job `jobs.inbound.handle_new_parts`
(`queue_part`) and answers. Nothing that calls out happens in the request.

The job (`handle_part`) turns parts into one `Message`:

- A whole text becomes a message at once.
- A part of a long (concatenated) text waits until every part of its group is here: same
  sender, same number texted, same `concat-ref` and `concat-total`, not yet part of a message,
  received within CONCAT_TIMEOUT of each other (concat-ref values are reused over time). The
  last part to arrive assembles them in part order. Taking the parts is a conditional UPDATE
  (`message_id IS NULL`) whose row count must match: of two jobs racing, one wins and the
  other rolls back, so a text becomes one message, exactly once.
- The periodic `sweep` (every minute) assembles groups still missing parts after
  CONCAT_TIMEOUT into a message marked `incomplete` (the gaps show as "…"), and handles again
  any part left unhandled for LOST_JOB_AFTER (its handling failed). A part that arrives after
  its message was shown incomplete fills its gap in. Nothing is ever lost.

Crash recovery takes seconds (issue 10 item 6). A part can be left behind three ways, and the
frequent `check_recovery` (every CHECK_EVERY, run by whichever worker's watchman gets there
first, `app.worker`) finds each:

- A worker killed mid-drain: the parts it had taken are in its own list in Redis
  (`queues.take`) until handled, and its `alive:` key lapses within ALIVE_SECONDS of its death;
  the check puts them back at the front of the hand-over list and wakes a drain
  (`queues.reclaim`). At most ALIVE_SECONDS + CHECK_EVERY, plus a drain's start.
- A web process killed between storing a part and handing it over: the part is unhandled in
  the database and nowhere in Redis. The check looks at the parts received between
  CHECK_LOOKS_BACK and HANDOVER_GRACE ago that are still unhandled (an index range on
  `handled_at, received_at`: on a healthy system a handful, the parts of long texts waiting for
  the rest), leaves out those in Redis (`queues.in_hand`), and hands the rest over again. At
  most HANDOVER_GRACE + CHECK_EVERY. A waiting part of a long text, or one whose handling
  failed, is so handed over again every check until it is CHECK_LOOKS_BACK old (then it is
  the sweep's): a few cheap no-op handlings, and a quick retry after a passing error.
- A drain job lost before it started: its wake flag lapses within WAKE_EXPIRES and the check
  wakes a drain for whatever waits in the list.

The check also queues the sweep when it is due (`periodic.queue_when_due`): a sweep whose job
died holds nothing up, the next check queues the next one on time, with no text needed.
Handing a part over twice, or handling it after it was handled, changes nothing: the
conditional claim (`_claim_parts`) lets exactly one handling make its message.

CONCAT_TIMEOUT is 10 minutes: carriers usually deliver the parts of a text within seconds, but
a handset or network that retries can hold one back for minutes. Ten minutes catches nearly all
of them while staff still see a text soon, and a part that comes later still fills its gap.

Routing (`route`), by the number texted:

- the business's dedicated number, active and verified: shown in the inbox;
- active but not verified yet: `held`, released into the inbox in order when it is verified
  (`release_held`, connected to `verification.number_verified`, and the sweep as a safety net);
- reserved or being released (two-way texting switched off): `logged`, kept, never shown;
- a shared system number: the business that last texted the person from it, `system`, never
  in an inbox; with its "Do not reply" setting the person gets one automatic text saying
  replies are not read and how to reach the business, at most once per person, business and
  system number per DO_NOT_REPLY_EVERY (a day: enough to answer a conversation once, without
  texting back at every "ok", "thanks", "?" they send);
- any other number: logged only (`unknown_number`; or `no_business` for a system number no
  business texted the person from).

Keywords (`app.services.keywords`) act on arrival on every number, whatever the visibility:
STOP and its synonyms opt the number out of the business's texts and confirm once (only when
this STOP newly opted them out); START/UNSTOP/YES opt back in and confirm; HELP/INFO answer
with the business's details, except while opted out (the opt-out blocks every message but the
one STOP confirmation, COMPLIANCE.md). A sentence asking to stop is flagged for staff, who
confirm (the opt-out and its one confirmation) or dismiss it; on a system number or a
deactivated one, where no one reads replies and so no one could confirm, it is honoured at once.

Confirm by reply (`app.services.booking.confirm_by_reply`) comes right after the keywords, in
the same transaction: a C (or CONFIRM) to the verified dedicated number answering a reminder
confirms the client's next appointment; the text still shows in the conversation, but does not
need attention. A new lead's first text raises the staff alert "lead"
(`app.services.booking.staff_alerts`), so each staff member's choice of channels applies.

Automatic answers are saved in the same transaction as the inbound message
(`sending.add_reply`) and queued after the commit, so they are sent exactly when the message
is recorded, and once: `Message.reply_to_id` is unique.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy import bindparam, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.extensions import db, get_redis, insert_on_conflict
from app.models import Business, Client, ClientPhone, Message, Notification, OptOut
from app.models.inbound import InboundPart
from app.models.texting import DedicatedNumber
from app.models.types import utcnow
from app.services import (
    inbox,
    keywords,
    notifications,
    periodic,
    queues,
    sending,
    texting,
    verification,
)
from app.services.booking import confirm_by_reply, staff_alerts
from app.services.clients import (
    find_client_by_number,
    number_opted_out,
    refresh_search_text,
    surviving_client,
)
from app.services.errors import ServiceError
from app.services.phones import display_phone, store_sender

log = logging.getLogger(__name__)

CONCAT_TIMEOUT = timedelta(minutes=10)  # see the module docstring
LOST_JOB_AFTER = timedelta(minutes=1)  # a part unhandled this long: the sweep handles it
SWEEP_EVERY = timedelta(minutes=1)
HANDOVER_GRACE = timedelta(seconds=2)  # a stored part not in Redis this long was never handed over
CHECK_LOOKS_BACK = timedelta(seconds=15)  # older ones are the sweep's (a few missed checks' worth)
DO_NOT_REPLY_EVERY = timedelta(days=1)
RELEASE_CHECK_WINDOW = timedelta(days=1)  # the sweep re-checks numbers verified this recently
JOB_TIMEOUT = 60  # seconds: database work only; replies are sent by their own jobs
SWEEP_TIMEOUT = 300
MAX_CONCAT_TOTAL = 255  # the concatenation header counts parts in one byte
MAX_TEXT_LENGTH = 2000  # one part is at most 160 characters; anything near this is junk
MISSING_PART = "…"  # where a part that never arrived would go
BINARY_BODY = "(A binary message, which can't be shown as text.)"

# --- The webhook's fields -----------------------------------------------------------------


class BadInbound(ValueError):
    """An inbound webhook that is not a text Vonage would send; the message says why."""


@dataclass(frozen=True)
class InboundFields:
    """The fields of one inbound SMS webhook, checked and in the form they are stored."""

    vonage_message_id: str
    sender: str
    to_number: str
    text: str
    type: str
    concat_ref: str | None = None
    concat_total: int | None = None
    concat_part: int | None = None
    sent_at: datetime | None = None


_TYPES = ("text", "unicode", "binary")
_PRINTABLE_ID = re.compile(r"[\x21-\x7e]+\Z")  # visible ASCII, no spaces
_SENDER = re.compile(r"[0-9A-Za-z+][0-9A-Za-z +._&'-]*\Z")
_OUR_NUMBER = re.compile(r"\+?\d{5,15}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _value(params: dict[str, Any], name: str) -> str | None:
    """A field as a string (JSON may carry numbers), or None when absent or empty."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInbound(f"{name} must be a string")
    text = str(value)
    return text if text.strip() else None


def _required(params: dict[str, Any], name: str, max_length: int) -> str:
    value = _value(params, name)
    if value is None:
        raise BadInbound(f"{name} is missing")
    if len(value) > max_length:
        raise BadInbound(f"{name} is longer than {max_length} characters")
    return value.strip()


def _whole_number(params: dict[str, Any], name: str) -> int:
    value = _value(params, name)
    if value is None:
        raise BadInbound(f"{name} is missing")
    if not value.strip().isdigit() or len(value.strip()) > 3:
        raise BadInbound(f"{name} is not a whole number")
    return int(value.strip())


def parse_inbound(params: dict[str, Any]) -> InboundFields:
    """The inbound text's fields, named as in Vonage's SMS API specification (`msisdn`, `to`,
    `messageId`, `text`, `type`, `message-timestamp`, `concat`, `concat-ref`, `concat-total`,
    `concat-part`). Raises BadInbound with the reason."""
    message_id = _required(params, "messageId", 64)
    if not _PRINTABLE_ID.match(message_id):
        raise BadInbound("messageId has characters a message id does not have")
    sender_raw = _required(params, "msisdn", 32)
    if not _SENDER.match(sender_raw):
        raise BadInbound("msisdn is not a phone number, short code or sender name")
    to_raw = _required(params, "to", 32)
    if not _OUR_NUMBER.match(to_raw):
        raise BadInbound("to is not a phone number")
    kind = (_value(params, "type") or "text").strip().lower()
    if kind not in _TYPES:
        raise BadInbound("type must be text, unicode or binary")
    text = params.get("text")
    if kind == "binary":
        text = ""  # its content is in `data`/`udh`; we keep that it came, not the bytes
    elif text is None:
        raise BadInbound("text is missing")
    elif not isinstance(text, str):
        raise BadInbound("text must be a string")
    elif len(text) > MAX_TEXT_LENGTH:
        raise BadInbound(f"text is longer than {MAX_TEXT_LENGTH} characters")
    else:
        # Kept, not refused (Vonage would retry a refused text for a day, and it would be
        # lost): a control character can't be shown, and PostgreSQL can't store NUL.
        text = _CONTROL.sub("\ufffd", text)
    concat_ref = concat_total = concat_part = None
    concat = (_value(params, "concat") or "").strip().lower()
    if concat not in ("", "true", "false"):
        raise BadInbound("concat must be true or false")
    if concat == "true" or any(
        params.get(name) not in (None, "") for name in ("concat-ref", "concat-total", "concat-part")
    ):
        concat_ref = _required(params, "concat-ref", 32)
        if not _PRINTABLE_ID.match(concat_ref):
            raise BadInbound("concat-ref has characters a reference does not have")
        concat_total = _whole_number(params, "concat-total")
        concat_part = _whole_number(params, "concat-part")
        if not 1 <= concat_total <= MAX_CONCAT_TOTAL:
            raise BadInbound(f"concat-total must be between 1 and {MAX_CONCAT_TOTAL}")
        if not 1 <= concat_part <= concat_total:
            raise BadInbound("concat-part must be between 1 and concat-total")
        if concat_total == 1:  # a "long" text of one part is a whole text
            concat_ref = concat_total = concat_part = None
    sent_at = None
    stamp = _value(params, "message-timestamp")
    if stamp is not None:
        try:
            sent_at = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise BadInbound("message-timestamp is not YYYY-MM-DD HH:MM:SS") from None
    return InboundFields(
        vonage_message_id=message_id,
        sender=store_sender(sender_raw),
        to_number="+" + to_raw.lstrip("+"),
        text=text,
        type=kind,
        concat_ref=concat_ref,
        concat_total=concat_total,
        concat_part=concat_part,
        sent_at=sent_at,
    )


_PART_COLUMNS = (
    "vonage_message_id",
    "sender",
    "to_number",
    "text",
    "type",
    "concat_ref",
    "concat_total",
    "concat_part",
    "sent_at",
    "received_at",
)
_insert_part_statements: dict[str, Any] = {}


def _insert_part_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (vonage_message_id) DO NOTHING RETURNING id, built once per
    dialect (the webhook is the hottest path: no statement building per request)."""
    statement = _insert_part_statements.get(dialect)
    if statement is None:
        table = InboundPart.__table__
        statement = (
            insert_on_conflict(table)
            .values({name: bindparam(name, type_=table.c[name].type) for name in _PART_COLUMNS})
            .on_conflict_do_nothing(index_elements=["vonage_message_id"])
            .returning(table.c.id)
        )
        _insert_part_statements[dialect] = statement
    return statement


def record_part(fields: InboundFields, *, now: datetime) -> int | None:
    """Stores the part and queues its handling; None when Vonage delivered it before (then
    nothing is stored or queued). One INSERT … ON CONFLICT DO NOTHING, so a retry costs no
    error and no rollback. Runs on a connection of its own, not the ORM session: the statement
    needs none of the session's bookkeeping, and this is the webhook's hot path."""
    engine = db.engine
    statement = _insert_part_statement(engine.dialect.name)
    values = {name: getattr(fields, name) for name in _PART_COLUMNS if name != "received_at"}
    with engine.begin() as connection:
        part_id = connection.execute(statement, {**values, "received_at": now}).scalar_one_or_none()
    if part_id is None:
        return None
    queue_part(part_id)
    return part_id


NEW_PARTS = "inbound:new-parts"  # the hand-over list from the webhook to `handle_new_parts`
DRAIN_BATCH = 50  # parts taken from the list at a time
DRAIN_SECONDS = 20.0  # a drain hands a longer backlog on to a fresh job (and other workers)


def queue_part(part_id: int) -> None:
    """Hands the part to the draining job (see `queues.hand_over`: one Redis round trip, an
    RQ job only when none is queued)."""
    from jobs.inbound import handle_new_parts

    queues.hand_over(NEW_PARTS, str(part_id), handle_new_parts, timeout=JOB_TIMEOUT)


def handle_new_parts() -> int:
    """The draining job: handles the parts the webhook handed over, oldest first, until none
    are left; returns how many it took. Each part stays in this worker's list in Redis until it
    is handled, so a worker killed mid-drain loses none (see `check_recovery`). A full batch
    wakes a second drain, so a burst is shared between workers; after DRAIN_SECONDS the rest is
    left to that drain (the job's timeout is never reached). A part that fails is logged and
    left to the recovery check and the sweep."""
    from jobs.inbound import handle_new_parts as drain_job

    queues.start_draining(NEW_PARTS)
    taker = queues.current_taker()
    started = time.monotonic()
    taken = 0
    while True:
        batch = queues.take(NEW_PARTS, DRAIN_BATCH, taker)
        if not batch:
            return taken
        if len(batch) == DRAIN_BATCH:
            queues.wake(NEW_PARTS, drain_job, timeout=JOB_TIMEOUT)
        for part_id in batch:
            try:
                handle_part(int(part_id), now=utcnow())
            except Exception:  # tried again by the check, then by the sweep
                db.session.rollback()
                log.exception("inbound part %s could not be handled; tried again later", part_id)
            queues.done(NEW_PARTS, part_id, taker)
        taken += len(batch)
        if time.monotonic() - started > DRAIN_SECONDS:
            queues.wake(NEW_PARTS, drain_job, timeout=JOB_TIMEOUT)
            return taken


def check_recovery(*, now: datetime) -> None:
    """The frequent check (see the module docstring): parts a dead worker had taken go back to
    the hand-over list, parts stored but never handed over are handed over, a drain is woken
    for whatever waits, and the sweep is queued when due. Cheap when nothing is wrong: three
    Redis scripts and one index range query returning no rows."""
    from jobs.inbound import handle_new_parts as drain_job
    from jobs.inbound import sweep as sweep_job

    moved, waiting = queues.reclaim(NEW_PARTS)
    if moved:
        log.warning("%s inbound parts taken by a worker that is gone were handed over again", moved)
    for part_id in _parts_never_handed_over(now):
        log.warning("inbound part %s was stored but never handed over; handing it over", part_id)
        queues.hand_over(NEW_PARTS, str(part_id), drain_job, timeout=JOB_TIMEOUT)
    if waiting:
        queues.wake(NEW_PARTS, drain_job, timeout=JOB_TIMEOUT)
    periodic.queue_when_due(
        sweep_job, SWEEP_EVERY, name="inbound-sweep", now=now, timeout=SWEEP_TIMEOUT
    )


def _parts_never_handed_over(now: datetime) -> list[int]:
    """Unhandled parts received between CHECK_LOOKS_BACK and HANDOVER_GRACE ago that are
    nowhere in Redis: waiting in the list or in a worker's hands is not lost."""
    recent = list(
        db.session.execute(
            db.select(InboundPart.id)
            .where(
                InboundPart.handled_at.is_(None),
                InboundPart.received_at >= now - CHECK_LOOKS_BACK,
                InboundPart.received_at < now - HANDOVER_GRACE,
            )
            .order_by(InboundPart.received_at, InboundPart.id)
        ).scalars()
    )
    if not recent:
        return []
    in_hand = queues.in_hand(NEW_PARTS)
    return [part_id for part_id in recent if str(part_id) not in in_hand]


# --- Routing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where an inbound text goes: a business and how it shows, or an outcome without one."""

    outcome: str  # "message", "unknown_number" or "no_business"
    business_id: int | None = None
    visibility: str | None = None  # VISIBILITIES
    client_id: int | None = None  # the client a system-number reply belongs to


def route(to_number: str, sender: str) -> Route:
    """Which business a text to `to_number` from `sender` belongs to, and how it shows."""
    number = texting.find_dedicated_number(to_number)
    if number is not None:
        if number.status != "active":
            return Route("message", number.business_id, "logged")
        checked = number.verification
        verified = checked is not None and checked.state == "verified"
        return Route("message", number.business_id, "inbox" if verified else "held")
    if to_number in texting.system_numbers():
        last = db.session.execute(
            db.select(Message.business_id, Message.client_id)
            .where(
                Message.direction == "outbound",
                Message.channel == "text",
                Message.sender == to_number,
                Message.recipient == sender,
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        ).first()
        if last is None:
            return Route("no_business")
        return Route("message", last.business_id, "system", last.client_id)
    return Route("unknown_number")


# --- The job: parts into messages ----------------------------------------------------------


def handle_part(part_id: int, *, now: datetime) -> None:
    """Handles one stored part (the job). Safe to run twice, or at once with the jobs of the
    other parts of its text."""
    part = db.session.get(InboundPart, part_id)
    if part is None or part.handled_at is not None:
        return
    if part.concat_ref is None:
        _take([part], now=now, total=None, incomplete=False)
        return
    gapped = _incomplete_message_waiting_for(part)
    if gapped is not None:
        _fill_gap(gapped, part, now=now)
        return
    group = _group_of(part)
    if len(group) == part.concat_total:
        _take(group, now=now, total=part.concat_total, incomplete=False)


def _group_of(part: InboundPart) -> list[InboundPart]:
    """The unhandled parts of the part's text, one per part number (the earliest), in order."""
    rows = db.session.execute(
        db.select(InboundPart)
        .where(
            InboundPart.to_number == part.to_number,
            InboundPart.sender == part.sender,
            InboundPart.concat_ref == part.concat_ref,
            InboundPart.concat_total == part.concat_total,
            InboundPart.handled_at.is_(None),
            InboundPart.received_at >= part.received_at - CONCAT_TIMEOUT,
            InboundPart.received_at <= part.received_at + CONCAT_TIMEOUT,
        )
        .order_by(InboundPart.concat_part, InboundPart.received_at, InboundPart.id)
    ).scalars()
    by_number: dict[int, InboundPart] = {}
    for row in rows:
        by_number.setdefault(row.concat_part, row)  # type: ignore[arg-type]
    return [by_number[number] for number in sorted(by_number)]


def _assemble(parts: list[InboundPart], total: int | None) -> str:
    """The text of the parts in order, "…" where a part is missing."""
    if any(part.type == "binary" for part in parts):
        return BINARY_BODY
    if total is None:
        return parts[0].text
    by_number = {part.concat_part: part.text for part in parts}
    pieces: list[str] = []
    for number in range(1, total + 1):
        piece = by_number.get(number)
        if piece is None:
            if not pieces or pieces[-1] != MISSING_PART:
                pieces.append(MISSING_PART)
        else:
            pieces.append(piece)
    return "".join(pieces)


def _claim_parts(parts: list[InboundPart], now: datetime, **values: Any) -> bool:
    """Marks the parts handled, only if none was handled meanwhile (a racing job). Does not
    commit; False (and rolled back) when another job got any of them first."""
    ids = [part.id for part in parts]
    taken = db.session.execute(
        update(InboundPart)
        .where(
            InboundPart.id.in_(ids),
            InboundPart.handled_at.is_(None),
            InboundPart.message_id.is_(None),
        )
        .values(handled_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != len(ids):
        db.session.rollback()
        return False
    return True


@dataclass
class _AfterCommit:
    """What to tell and queue once the transaction is committed."""

    announce_message: bool = False
    notifications: list[Notification] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)


def _take(
    parts: list[InboundPart], *, now: datetime, total: int | None, incomplete: bool
) -> Message | None:
    """Turns the parts into one message (or records why there is none), exactly once."""
    first = parts[0]
    where = route(first.to_number, first.sender)
    if where.outcome != "message":
        if _claim_parts(parts, now, outcome=where.outcome):
            db.session.commit()
            log.info(
                "inbound text to %s from %s: %s (Vonage message ids %s)",
                first.to_number,
                first.sender,
                where.outcome.replace("_", " "),
                ", ".join(part.vonage_message_id for part in parts),
            )
        return None
    business = db.session.get(Business, where.business_id)
    assert business is not None
    received_at = min(part.received_at for part in parts)
    after = _AfterCommit()
    client, is_new_lead = _client_for(business, first.sender, where, now)
    message = Message(
        business_id=business.id,
        client_id=client.id if client is not None else None,
        channel="text",
        direction="inbound",
        kind="direct",
        body=_assemble(parts, total),
        sender=first.sender,
        recipient=first.to_number,
        status="received",
        visibility=where.visibility,
        incomplete=incomplete,
        created_at=received_at,
        updated_at=now,
    )
    db.session.add(message)
    db.session.flush()
    if not _claim_parts(parts, now, outcome="message", message_id=message.id):
        return None  # another job made the message
    _act_on_words(message, business, after, now)
    if message.visibility == "inbox" and client is not None:
        confirmation = confirm_by_reply.confirm_if_asked(message, client, now=now)
        if confirmation is not None and confirmation.thanks is not None:
            after.replies.append(confirmation.thanks)
        _show_in_inbox(
            message, client, after, now, new_lead=is_new_lead, confirmed=confirmation is not None
        )
    elif message.visibility == "system":
        _answer_system_reply(message, business, after, now)
    _commit_keeping_state()
    _tell(message, after)
    return message


def _commit_keeping_state() -> None:
    """Commits without expiring what this job just wrote, so telling pages about the new rows
    afterwards costs no SELECTs to read them back (the job is on the path to a live update)."""
    session = db.session()
    expires = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expires


def _client_for(
    business: Business, sender: str, where: Route, now: datetime
) -> tuple[Client | None, bool]:
    """The client the text is from, and whether it is a new lead made for it. Texts that reach
    (or will reach) the inbox from an unknown number make a lead (DESIGN.md §6); a logged or
    system text only finds the client it belongs to."""
    if where.visibility == "system":
        client = db.session.get(Client, where.client_id) if where.client_id else None
        return (surviving_client(client) if client is not None else None), False
    found = find_client_by_number(business.id, sender)
    if found is not None:
        return surviving_client(found), False
    if where.visibility == "logged":
        return None, False
    return _create_lead(business, sender, now)


def _create_lead(business: Business, sender: str, now: datetime) -> tuple[Client, bool]:
    """A lead client for a number the business does not know. Two texts from the same new
    number handled at once end with one lead: the phone number is unique per business, so
    the second insert fails, and the second job takes the first one's lead."""
    client = Client(
        business_id=business.id,
        name=display_phone(sender, business.country),
        source="inbound_text",
        is_lead=True,
        created_at=now,
        updated_at=now,
    )
    client.phones = [ClientPhone(business_id=business.id, number=sender, is_primary=True)]
    refresh_search_text(client)
    try:
        with db.session.begin_nested():
            db.session.add(client)
    except IntegrityError:
        found = find_client_by_number(business.id, sender)
        if found is None:  # pragma: no cover - the unique row that refused us must exist
            raise
        return surviving_client(found), False
    return client, True


def _conversation_path(client_id: int) -> str:
    """The client's conversation, as a path in this app (from a job too)."""
    if has_request_context():
        return url_for("clients.card", client_id=client_id, tab="conversation")
    with current_app.test_request_context():
        return url_for("clients.card", client_id=client_id, tab="conversation")


def _show_in_inbox(
    message: Message,
    client: Client,
    after: _AfterCommit,
    now: datetime,
    *,
    new_lead: bool,
    confirmed: bool = False,
) -> None:
    """The text in its conversation, in the folder Require your attention, and staff told:
    one notification (so one push) per text; a new lead's first text is a staff alert
    (`alert_staff`: each staff member's choice of in-app and push, email, text). A C that
    confirmed an appointment (`confirmed`) shows in the conversation without needing
    attention, and staff hear of it through the confirmation alert instead."""
    inbox.record_message(message, attention=not confirmed, now=now)
    after.announce_message = True
    if confirmed:
        return
    preview = " ".join(message.body.split())
    if len(preview) > 80:
        preview = preview[:79] + "…"
    link = _conversation_path(client.id)
    if new_lead:
        staff_alerts.alert_staff(
            message.business_id,
            "lead",
            text=f"New lead {client.name}: {preview}",
            link=link,
            now=now,
            client_id=client.id,
        )
        return
    after.notifications.append(
        notifications.notify(
            message.business_id,
            kind="text_received",
            text=f"{client.name}: {preview}",
            link=link,
            now=now,
        )
    )


def _tell(message: Message, after: _AfterCommit) -> None:
    """After the commit: open pages, push, and the automatic answers' sending jobs."""
    if after.announce_message and message.client_id is not None:
        inbox.announce(message.business_id, message.client_id, message.id)
    for notification in after.notifications:
        notifications.announce(notification)
    for reply in after.replies:
        sending.queue_reply(reply)


# --- Keywords, opt-outs, automatic answers ------------------------------------------------


def opt_out(business_id: int, number: str, now: datetime) -> bool:
    """Opts the number out of the business's texts (in the caller's transaction). True when
    this newly opted it out (two STOPs at once: one of them is new)."""
    added = db.session.execute(
        insert_on_conflict(OptOut)
        .values(business_id=business_id, number=number, opted_out_at=now)
        .on_conflict_do_nothing(index_elements=["business_id", "number"])
        .returning(OptOut.id)
    ).scalar_one_or_none()
    return added is not None


def _opt_in(business_id: int, number: str) -> bool:
    return (
        db.session.execute(
            delete(OptOut).where(OptOut.business_id == business_id, OptOut.number == number)
        ).rowcount
        > 0
    )


def _contact_details(business: Business) -> str:
    """How to reach the business, from its Business info."""
    ways = []
    if business.contact_phone:
        ways.append("call " + display_phone(business.contact_phone, business.country))
    if business.contact_email:
        ways.append("email " + business.contact_email)
    if business.website:
        ways.append("visit " + business.website.removeprefix("https://").removeprefix("http://"))
    if not ways:
        return ""
    if len(ways) > 1:
        ways[-1] = "or " + ways[-1]
    return ", ".join(ways) if len(ways) > 2 else " ".join(ways)


def stop_confirmation(business: Business) -> str:
    return f"You're unsubscribed from {business.name}. No more texts. Reply START to resubscribe."


def start_confirmation(business: Business) -> str:
    return (
        f"You're resubscribed to texts from {business.name}. Msg & data rates may apply. "
        "Reply STOP to opt out."
    )


def help_answer(business: Business) -> str:
    details = _contact_details(business)
    reach = f" To reach us, {details}." if details else ""
    return f"{business.name}:{reach} Msg & data rates may apply. Reply STOP to opt out."


def do_not_reply_answer(business: Business) -> str:
    details = _contact_details(business)
    reach = f" To reach {business.name}, {details}." if details else ""
    return f"Replies to this number aren't read.{reach}"


def _act_on_words(message: Message, business: Business, after: _AfterCommit, now: datetime):
    """Keywords and free-text opt-out requests, whatever number the text came to."""
    opted_out = number_opted_out(business.id, message.sender)
    keyword = keywords.keyword_of(message.body, opted_out=opted_out)
    if keyword is not None:
        message.keyword = keyword
    if keyword == "stop":
        if opt_out(business.id, message.sender, now):
            _reply(message, stop_confirmation(business), "stop", after, now)
    elif keyword == "start":
        if _opt_in(business.id, message.sender):
            _reply(message, start_confirmation(business), "start", after, now)
    elif keyword == "help":
        if not opted_out:
            _reply(message, help_answer(business), "help", after, now)
    elif not opted_out and keywords.is_revocation(message.body):
        if message.visibility in ("system", "logged"):
            # No one reads replies to this number, so no one could confirm the request:
            # honour it at once (the FCC's rule is that a revocation must be honoured).
            message.revocation = "confirmed"
            if opt_out(business.id, message.sender, now):
                _reply(message, stop_confirmation(business), "stop", after, now)
        else:
            message.revocation = "flagged"  # staff confirm or dismiss it on the bubble


def _reply(message: Message, body: str, purpose: str, after: _AfterCommit, now: datetime):
    reply = sending.add_reply(message, body, purpose=purpose, now=now)
    if reply is not None:
        after.replies.append(reply)


def _answer_system_reply(
    message: Message, business: Business, after: _AfterCommit, now: datetime
) -> None:
    """The "Do not reply" automatic text, when the business chose it and the person has not
    had one from this system number in the last DO_NOT_REPLY_EVERY."""
    if message.keyword is not None or business.sms_setting != "do_not_reply":
        return
    answered = aliased(Message)
    recent = db.session.execute(
        db.select(Message.id)
        .join(answered, answered.id == Message.reply_to_id)
        .where(
            Message.business_id == business.id,
            Message.direction == "outbound",
            Message.sender == message.recipient,
            Message.recipient == message.sender,
            Message.created_at > now - DO_NOT_REPLY_EVERY,
            answered.keyword.is_(None),
        )
        .limit(1)
    ).first()
    if recent is None and _first_answer_in_a_while(business.id, message, now):
        _reply(message, do_not_reply_answer(business), "do_not_reply", after, now)


# Atomically: has this key's moment (ARGV[1], unix seconds) come DO_NOT_REPLY_EVERY (ARGV[2])
# after the last one stored? If so store it (expiring after ARGV[2]) and say yes.
_ANSWER_ONCE_SCRIPT = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


def _first_answer_in_a_while(business_id: int, message: Message, now: datetime) -> bool:
    """Two texts from one person handled at the same moment both find no recent answer in the
    database; this atomic check in Redis lets only one of them answer. (Should the answering
    job then die before its commit, that person gets no answer this time: never two.)"""
    key = f"do-not-reply:{business_id}:{message.recipient}:{message.sender}"
    every = int(DO_NOT_REPLY_EVERY.total_seconds())
    return bool(get_redis().eval(_ANSWER_ONCE_SCRIPT, 1, key, int(now.timestamp()), every))


# --- Late and incomplete texts --------------------------------------------------------------


def _incomplete_message_waiting_for(part: InboundPart) -> Message | None:
    """An incomplete message of the same text that lacks this part number, if one was shown."""
    sibling = aliased(InboundPart)
    return db.session.execute(
        db.select(Message)
        .join(sibling, sibling.message_id == Message.id)
        .where(
            Message.incomplete.is_(True),
            sibling.to_number == part.to_number,
            sibling.sender == part.sender,
            sibling.concat_ref == part.concat_ref,
            sibling.concat_total == part.concat_total,
            sibling.received_at >= part.received_at - 3 * CONCAT_TIMEOUT,
            ~db.select(InboundPart.id)
            .where(
                InboundPart.message_id == Message.id,
                InboundPart.concat_part == part.concat_part,
            )
            .exists(),
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _fill_gap(message: Message, part: InboundPart, *, now: datetime) -> None:
    """A part that came after its text was shown incomplete: its gap is filled in, and the
    message is whole again when it was the last one missing."""
    if not _claim_parts([part], now, outcome="message", message_id=message.id):
        return
    parts = list(
        db.session.execute(
            db.select(InboundPart).where(InboundPart.message_id == message.id)
        ).scalars()
    )
    total = part.concat_total
    message.body = _assemble(parts, total)
    message.incomplete = len({p.concat_part for p in parts}) < (total or 1)
    message.updated_at = now
    db.session.commit()
    if message.visibility == "inbox" and message.client_id is not None:
        inbox.announce(message.business_id, message.client_id, message.id)


def sweep(*, now: datetime) -> None:
    """The periodic safety net: texts whose parts did not all come within CONCAT_TIMEOUT are
    shown incomplete; parts whose job was lost are handled; held texts of numbers verified
    meanwhile are released."""
    overdue = db.session.execute(
        db.select(InboundPart.id)
        .where(InboundPart.handled_at.is_(None), InboundPart.received_at < now - LOST_JOB_AFTER)
        .order_by(InboundPart.received_at, InboundPart.id)
    ).scalars()
    for part_id in list(overdue):
        try:
            _sweep_part(part_id, now)
        except Exception:  # one bad part must not stop the others; it is tried next time
            db.session.rollback()
            log.exception("inbound part %s could not be handled; trying again later", part_id)
    for business_id in _businesses_with_releasable_texts(now):
        release_held(business_id, now=now)


def _sweep_part(part_id: int, now: datetime) -> None:
    part = db.session.get(InboundPart, part_id)
    if part is None or part.handled_at is not None:
        return
    handle_part(part_id, now=now)
    db.session.refresh(part)
    if part.handled_at is None and part.received_at < now - CONCAT_TIMEOUT:
        # Its text's other parts did not all come in time: show what came, with gaps.
        _take(_group_of(part), now=now, total=part.concat_total, incomplete=True)


# --- Held texts released on verification ---------------------------------------------------


def _businesses_with_releasable_texts(now: datetime) -> list[int]:
    """Businesses whose number was verified in the last RELEASE_CHECK_WINDOW and that still
    have held texts (their release job was lost, or a text came in as it was verified). Only
    recent verifications are looked at, so the check stays small however many messages and
    businesses there are."""
    from app.models.texting import Verification

    held = (
        db.select(Message.id)
        .where(Message.business_id == DedicatedNumber.business_id, Message.visibility == "held")
        .exists()
    )
    return list(
        db.session.execute(
            db.select(DedicatedNumber.business_id)
            .join(Verification, Verification.dedicated_number_id == DedicatedNumber.id)
            .where(
                DedicatedNumber.status == "active",
                Verification.state == "verified",
                Verification.decided_at >= now - RELEASE_CHECK_WINDOW,
                held,
            )
            .distinct()
        ).scalars()
    )


def release_held(business_id: int, *, now: datetime) -> int:
    """Moves the business's held texts (they came before its number was verified), and the
    automatic answers to them, into the inbox in the order they came, each exactly once.
    Returns how many moved."""
    current = texting.active_number(business_id)
    if current is None or current[1] is None or current[1].state != "verified":
        return 0
    held = list(
        db.session.execute(
            db.select(Message)
            .where(Message.business_id == business_id, Message.visibility == "held")
            .order_by(Message.created_at, Message.id)
        ).scalars()
    )
    released = []
    after = _AfterCommit()
    # A lead made by a held text is new to staff when its first text shows: alert them then.
    shown_before = set(
        db.session.execute(
            db.select(Message.client_id).where(
                Message.business_id == business_id,
                Message.visibility == "inbox",
                Message.client_id.in_({m.client_id for m in held if m.client_id}),
            )
        ).scalars()
    )
    for message in held:
        moved = db.session.execute(
            update(Message)
            .where(Message.id == message.id, Message.visibility == "held")
            .values(visibility="inbox", updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != 1:
            continue
        db.session.refresh(message)
        client = db.session.get(Client, message.client_id) if message.client_id else None
        if client is None:
            continue
        client = surviving_client(client)
        if message.direction == "outbound":  # an automatic answer (a STOP confirmation)
            inbox.record_message(message, attention=False, now=now)
        else:
            new_lead = client.is_lead and client.source == "inbound_text"
            _show_in_inbox(
                message, client, after, now, new_lead=new_lead and client.id not in shown_before
            )
        shown_before.add(client.id)
        released.append(message)
    db.session.commit()
    for message in released:
        inbox.announce(message.business_id, message.client_id, message.id)  # type: ignore[arg-type]
    for notification in after.notifications:
        notifications.announce(notification)
    return len(released)


def _on_number_verified(sender: object, *, business_id: int, **_: Any) -> None:
    """Texts held while the number was pending go to the inbox, in a job of their own."""
    from jobs.inbound import release_held_texts

    queues.enqueue(release_held_texts, business_id, timeout=JOB_TIMEOUT)


verification.number_verified.connect(_on_number_verified, weak=False)


# --- Staff confirming or dismissing a free-text opt-out ------------------------------------


def confirm_revocation(business_id: int, message_id: int, *, now: datetime) -> Message:
    """Staff confirm a flagged "please stop texting me": the number is opted out and gets the
    one confirmation (unless it was already opted out). A second click changes nothing.
    Raises ServiceError."""
    message = _flagged(business_id, message_id)
    if not _settle_revocation(message, "confirmed", now):
        return message
    business = db.session.get(Business, business_id)
    after = _AfterCommit()
    if opt_out(business_id, message.sender, now):
        _reply(message, stop_confirmation(business), "stop", after, now)
    db.session.commit()
    _tell(message, after)
    _announce_change(message)
    return message


def dismiss_revocation(business_id: int, message_id: int, *, now: datetime) -> Message:
    """Staff decide a flagged text was not an opt-out request. Raises ServiceError."""
    message = _flagged(business_id, message_id)
    if _settle_revocation(message, "dismissed", now):
        db.session.commit()
        _announce_change(message)
    return message


def _flagged(business_id: int, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.business_id != business_id:
        raise ServiceError("That message does not exist.")
    if message.revocation is None:
        raise ServiceError("That text was not flagged as a request to stop texts.")
    return message


def _settle_revocation(message: Message, state: str, now: datetime) -> bool:
    moved = db.session.execute(
        update(Message)
        .where(Message.id == message.id, Message.revocation == "flagged")
        .values(revocation=state, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(message)
    return moved == 1


def _announce_change(message: Message) -> None:
    if message.client_id is not None:
        inbox.announce(message.business_id, message.client_id, message.id)
