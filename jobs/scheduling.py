"""The dispatcher of sends for later (see app.services.scheduling): safe to run in many
workers at once, and twice."""

from __future__ import annotations

from app.services import scheduling
from jobs import app_job


@app_job
def dispatch() -> None:
    """Queued by the workers' watchman when a scheduled send is due: sends every due row
    through its handler, batch after batch, until none is due."""
    scheduling.dispatch_until_idle()
