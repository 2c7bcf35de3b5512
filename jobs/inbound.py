"""Inbound texts: each stored part handled, the periodic sweep, and held texts released on
verification. Each is safe to run twice (see app.services.inbound)."""

from __future__ import annotations

from datetime import datetime

from app.models.types import utcnow
from app.services import inbound
from jobs import app_job


@app_job
def handle_new_parts() -> None:
    """Turns the parts the webhook handed over into messages (each once every part of its
    text is here), routes them, and acts on keywords."""
    inbound.handle_new_parts()


@app_job
def release_held_texts(business_id: int) -> None:
    """Texts that came before the business's number was verified go to its inbox, in order."""
    inbound.release_held(business_id, now=utcnow())


@app_job
def sweep(now: str | None = None) -> None:
    """Every minute (queued by the workers' recovery check, `inbound.check_recovery`): long
    texts whose parts stopped coming are shown incomplete, parts whose handling failed are
    handled, held texts of verified numbers are released."""
    inbound.sweep(now=datetime.fromisoformat(now) if now else utcnow())
