"""One way to send later (DESIGN.md §10): reminders, payment reminders, scheduled texts and
campaign recipients waiting for their quiet hours are all `ScheduledSend` rows with a due time.

The database is the only place a future send lives. Redis carries only the nudge that makes a
worker look ("something is due"), never the send itself, so a Redis flush or a worker restart
loses nothing: the next look finds every row still due.

How a row goes, exactly once:

- `schedule` adds a pending row (in the caller's transaction), `move` changes a pending row's
  due time, `cancel` drops pending rows, `record_skip` stores one that will never go and why.
- Every second the workers' watchman (`app.worker.watch`, also the demo's in-process worker)
  calls `queue_dispatch_when_due`: one index query asks whether any row is due; if one is, a
  dispatch job is queued (at most one waiting at a time: a wake flag in Redis). The job runs
  `dispatch_due` until nothing is due, so rows go within a second or two of their time.
  The job waits in the booking lane (`queues.BOOKING`, DESIGN.md §10): what it makes are
  booking texts, so neither it nor they wait ahead of a text a person is waiting on.
- `dispatch_due` *claims* a batch of due rows in one short transaction: an UPDATE of rows
  chosen by `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (two dispatchers never wait on,
  or take, each other's rows); on SQLite the same conditional UPDATE (`WHERE state =
  'pending'`) under SQLite's single writer. Each claim carries a fresh token.
- Then each claimed row is handled in its own transaction, which first re-takes the row with
  a conditional UPDATE to `done` *only while its own claim stands* (state `claimed`, same
  token; on PostgreSQL the UPDATE also locks the row until the commit). The purpose's handler
  runs inside that transaction and adds its rows (the message, its parts, its charge); the
  message and the row's `done` commit together or not at all.
- A dispatcher that dies between claim and handling leaves its rows `claimed`; after
  CLAIM_TIMEOUT `dispatch_due` puts them back to pending (a conditional UPDATE on the state
  and the claim's time, with a new token at the next claim). If the "dead" dispatcher was only
  slow, its handling finds its token gone and does nothing; if it is handling the row at that
  very moment, the reclaim waits on its row lock and then finds the row `done`. Either way one
  message, and `message_id` is unique: one row's message is never another's.
- A handler that raises rolls back its own work; the row goes back to pending after a backoff
  (its `outcome` says what went wrong), and fails for good after MAX_ATTEMPTS claims.

A handler is `fn(row, now) -> Message | None`, registered by purpose with `register_handler`.
It returns the message it added (the row is `done`), or raises `SkipSend(reason)`, before it
adds anything, when there is nothing to send any more (the row is `skipped`, with the
reason). None also skips, with NOTHING_SENT as the reason.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, update

from app.extensions import db, get_redis
from app.models.messages import Message
from app.models.scheduling import ScheduledSend
from app.models.types import utcnow
from app.services.queues import BOOKING, enqueue

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=2)  # a row claimed this long: its dispatcher died
BATCH = 20  # rows claimed at a time: few enough that a dead dispatcher delays few
RETRY_DELAYS = (30, 60, 300, 900, 3600)  # seconds before a row whose handler raised goes again
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
DISPATCH_JOB_TIMEOUT = 300  # seconds
DISPATCH_RUNS_FOR = timedelta(seconds=60)  # then the job ends; the next check queues another
WAKE_KEY = "scheduling:dispatch:wake"  # set while a dispatch job is queued and not started
WAKE_EXPIRES = 5  # seconds: a wake flag whose job was lost stops blocking new jobs
NOTHING_SENT = "Nothing was sent: there was nothing to send any more."


class SkipSend(Exception):  # noqa: N818 (not an error: a row with nothing left to send)
    """Raised by a handler: this row has nothing to send; `reason` says why, in plain English."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


Handler = Callable[[ScheduledSend, datetime], Message | None]
_handlers: dict[str, Handler] = {}


def register_handler(purpose: str, handler: Handler) -> None:
    """Makes `handler` the one that sends the rows of `purpose` (registering again replaces)."""
    _handlers[purpose] = handler


def handler_for(purpose: str) -> Handler | None:
    return _handlers.get(purpose)


# --- Rows -------------------------------------------------------------------------------------


def schedule(
    business_id: int,
    purpose: str,
    due_at: datetime,
    *,
    subject_id: int | None = None,
    slot: str = "",
    note: str = "",
    now: datetime,
) -> ScheduledSend:
    """Adds a pending send to the caller's transaction (the caller commits)."""
    row = ScheduledSend(
        business_id=business_id,
        purpose=purpose,
        subject_id=subject_id,
        slot=slot,
        note=note,
        due_at=due_at,
        state="pending",
        created_at=now,
        updated_at=now,
    )
    db.session.add(row)
    return row


def record_skip(
    business_id: int,
    purpose: str,
    due_at: datetime,
    outcome: str,
    *,
    subject_id: int | None = None,
    slot: str = "",
    now: datetime,
) -> ScheduledSend:
    """Stores a send that will never go (too late for it, say), with why, so people can see it."""
    row = schedule(business_id, purpose, due_at, subject_id=subject_id, slot=slot, now=now)
    row.state = "skipped"
    row.outcome = outcome
    row.finished_at = now
    return row


def rows_for(purposes: tuple[str, ...], subject_id: int) -> list[ScheduledSend]:
    """The subject's rows of these purposes, oldest first."""
    return list(
        db.session.execute(
            db.select(ScheduledSend)
            .where(ScheduledSend.purpose.in_(purposes), ScheduledSend.subject_id == subject_id)
            .order_by(ScheduledSend.created_at, ScheduledSend.id)
        ).scalars()
    )


def move(row_id: int, due_at: datetime, *, note: str | None = None, now: datetime) -> bool:
    """Gives a pending row a new due time. False when it is no longer pending (claimed, sent,
    cancelled): a send already on its way is not moved."""
    values: dict = {"due_at": due_at, "updated_at": now}
    if note is not None:
        values["note"] = note
    return (
        db.session.execute(
            update(ScheduledSend)
            .where(ScheduledSend.id == row_id, ScheduledSend.state == "pending")
            .values(**values)
            .execution_options(synchronize_session="fetch")
        ).rowcount
        == 1
    )


def cancel(
    purposes: tuple[str, ...],
    subject_id: int,
    *,
    slot: str | None = None,
    reason: str | None = None,
    now: datetime,
) -> int:
    """Cancels the subject's pending rows of these purposes (only `slot`'s, if given), in the
    caller's transaction. Returns how many. A row already claimed is not stopped here: its
    handler checks the subject again before it sends."""
    query = update(ScheduledSend).where(
        ScheduledSend.purpose.in_(purposes),
        ScheduledSend.subject_id == subject_id,
        ScheduledSend.state == "pending",
    )
    if slot is not None:
        query = query.where(ScheduledSend.slot == slot)
    return db.session.execute(
        query.values(
            state="cancelled", outcome=reason, finished_at=now, updated_at=now
        ).execution_options(synchronize_session="fetch")
    ).rowcount


# --- The dispatcher ---------------------------------------------------------------------------


def _due(now: datetime):
    """Rows a dispatcher may claim now: pending and due."""
    return db.select(ScheduledSend.id).where(
        ScheduledSend.state == "pending", ScheduledSend.due_at <= now
    )


def _stale(now: datetime):
    return db.select(ScheduledSend.id).where(
        ScheduledSend.state == "claimed", ScheduledSend.claimed_at < now - CLAIM_TIMEOUT
    )


def anything_due(now: datetime) -> bool:
    """Is any row due, or any claim stale? (Two index lookups; asked every second.)"""
    return bool(
        db.session.execute(
            db.select(or_(exists(_due(now).limit(1)), exists(_stale(now).limit(1))))
        ).scalar()
    )


def reclaim_stale(*, now: datetime) -> int:
    """Puts rows whose dispatcher died (claimed longer than CLAIM_TIMEOUT) back to pending, and
    commits. Returns how many."""
    moved = db.session.execute(
        update(ScheduledSend)
        .where(ScheduledSend.state == "claimed", ScheduledSend.claimed_at < now - CLAIM_TIMEOUT)
        .values(state="pending", claim_token=None, claimed_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if moved:
        log.warning("%s scheduled sends taken back from a dispatcher that died", moved)
    return moved


@dataclass(frozen=True)
class Claim:
    token: str
    row_ids: list[int]


def claim_due(*, now: datetime, limit: int = BATCH) -> Claim:
    """Claims up to `limit` due rows, earliest first, for this dispatcher alone, and commits.

    The rows are chosen and locked by a statement of their own (`FOR UPDATE SKIP LOCKED` on
    PostgreSQL; SQLite has one writer at a time), then updated by id. One `UPDATE … WHERE id IN
    (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` is not the same: PostgreSQL may run the subquery
    once per candidate row, each run skipping the rows the update has just changed, and so
    claim every due row instead of n."""
    token = secrets.token_hex(16)
    row_ids = list(
        db.session.execute(
            _due(now).order_by(ScheduledSend.due_at).limit(limit).with_for_update(skip_locked=True)
        ).scalars()
    )
    if row_ids:
        db.session.execute(
            update(ScheduledSend)
            .where(ScheduledSend.id.in_(row_ids))
            .values(
                state="claimed",
                claim_token=token,
                claimed_at=now,
                attempts=ScheduledSend.attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return Claim(token, row_ids)


def handle_claimed(row_id: int, token: str, *, now: datetime) -> str | None:
    """Sends one claimed row through its handler, if this claim still holds it; the handler's
    rows and the row's new state commit together. Returns the row's new state, or None when
    the claim no longer holds it (it was taken back, or someone else finished it)."""
    row = db.session.execute(
        update(ScheduledSend)
        .where(
            ScheduledSend.id == row_id,
            ScheduledSend.state == "claimed",
            ScheduledSend.claim_token == token,
        )
        .values(state="done", finished_at=now, updated_at=now)
        .returning(ScheduledSend)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        db.session.rollback()
        return None
    handler = handler_for(row.purpose)
    try:
        if handler is None:
            raise RuntimeError(f"no handler for scheduled sends of purpose {row.purpose!r}")
        message = handler(row, now)
    except SkipSend as skip:
        row.state, row.outcome = "skipped", skip.reason
    except Exception as error:
        db.session.rollback()  # the handler's rows go too; the claim stays ours
        log.exception("scheduled send %s (%s) failed", row_id, error)
        return _retry_later(row_id, token, error, now)
    else:
        if message is None:
            row.state, row.outcome = "skipped", NOTHING_SENT
        else:
            row.message_id = message.id
            row.outcome = None
    state = row.state
    db.session.commit()
    return state


def _retry_later(row_id: int, token: str, error: Exception, now: datetime) -> str | None:
    row = db.session.get(ScheduledSend, row_id, populate_existing=True)
    if row is None or row.state != "claimed" or row.claim_token != token:
        db.session.rollback()
        return None
    reason = f"Could not be sent ({type(error).__name__}: {error})."[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.state, row.outcome, row.finished_at = "failed", reason, now
    else:
        delay = RETRY_DELAYS[min(row.attempts, len(RETRY_DELAYS)) - 1]
        row.state, row.outcome = "pending", reason + " Trying again shortly."
        row.due_at = now + timedelta(seconds=delay)
        row.claim_token = row.claimed_at = None
    row.updated_at = now
    state = row.state
    db.session.commit()
    return state


def dispatch_due(*, now: datetime, limit: int = BATCH) -> int:
    """Takes back dead dispatchers' claims, claims up to `limit` due rows and sends each
    through its handler. Returns how many rows it handled (0: nothing was due). Safe to run in
    many workers at once."""
    reclaim_stale(now=now)
    claim = claim_due(now=now, limit=limit)
    handled = 0
    for row_id in claim.row_ids:
        if handle_claimed(row_id, claim.token, now=now) is not None:
            handled += 1
    return handled


def dispatch_until_idle(*, runs_for: timedelta = DISPATCH_RUNS_FOR) -> int:
    """The dispatch job: batches, each at the current time, until nothing is due (or
    `runs_for` has passed: the next check queues another job). Returns rows handled."""
    get_redis().delete(WAKE_KEY)  # rows due from now on wake another job
    started = utcnow()
    total = 0
    while True:
        handled = dispatch_due(now=utcnow())
        total += handled
        if not handled or utcnow() - started > runs_for:
            return total


def queue_dispatch_when_due(*, now: datetime) -> bool:
    """Asked every second by the workers' watchman (`app.worker`): queues a dispatch job when a
    row is due and no job is waiting to start. True if it queued one."""
    if not anything_due(now):
        db.session.rollback()  # end the read: the watchman's session lives on
        return False
    db.session.rollback()
    if not get_redis().set(WAKE_KEY, "1", nx=True, ex=WAKE_EXPIRES):
        return False
    from jobs.scheduling import dispatch

    enqueue(dispatch, queue=BOOKING, timeout=DISPATCH_JOB_TIMEOUT)
    return True
