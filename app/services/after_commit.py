"""Work that may only happen once a transaction has committed: queuing a job for rows it
stored, publishing an event about them. Registered during the transaction, run right after
its commit, dropped on rollback, so a job never looks for a row that was never stored.

A callback runs inside SQLAlchemy's `after_commit` event, where the session cannot emit SQL:
it must only talk to Redis (queue a job by id, publish an event built from plain values
captured beforehand), never read a model's attributes (they have expired with the commit)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db

log = logging.getLogger(__name__)
_KEY = "twoway_after_commit"


def call_after_commit(callback: Callable[[], object]) -> None:
    """Runs `callback` after the current transaction of `db.session` commits (once; never if
    it rolls back). A callback that raises is logged; the others still run."""
    db.session().info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the commit stands; a lost queue entry is found by the sweeps
            log.exception("after-commit callback %r failed", callback)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
