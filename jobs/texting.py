"""Two-way texting jobs: buying the dedicated number, its verification, and the periodic
verification check and daily release. Each is safe to run twice (see app.services.texting).

The periodic jobs take an optional `now` (ISO 8601) so a test or a person can run them "as of"
a moment; the scheduled runs leave it out and use the clock.
"""

from __future__ import annotations

from datetime import datetime

from app.models.types import utcnow
from app.services import periodic, texting, verification
from jobs import app_job


def _moment(now: str | None) -> datetime:
    return datetime.fromisoformat(now) if now else utcnow()


@app_job
def assign_dedicated_number(number_id: int) -> None:
    """Buys the business's toll-free number and points its inbound webhook at us."""
    texting.assign_number(number_id, now=utcnow())


@app_job
def submit_verification(verification_id: int) -> None:
    """Sends the business's details to the carriers for the number's verification."""
    verification.submit_verification(verification_id, now=utcnow())


@app_job
def poll_verifications(now: str | None = None) -> None:
    """Every VERIFICATION_POLL_SECONDS: checks pending verifications (and finishes anything a
    dead job left half-way), then schedules the next run."""
    try:
        verification.poll_verifications(now=_moment(now))
    finally:
        periodic.schedule_next(
            poll_verifications,
            texting.poll_interval(),
            name="texting-poll-verifications",
            timeout=texting.JOB_TIMEOUT * 5,
        )


@app_job
def release_expired_numbers(now: str | None = None) -> None:
    """Daily: gives back to Vonage the numbers whose three months of reservation are over."""
    try:
        texting.release_expired_numbers(now=_moment(now))
    finally:
        periodic.schedule_next(
            release_expired_numbers,
            texting.RELEASE_EVERY,
            name="texting-release-numbers",
            timeout=texting.JOB_TIMEOUT * 5,
        )
