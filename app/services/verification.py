"""The toll-free verification of a dedicated number (DESIGN.md §3).

Activation submits the business's details (from Business info) to the carriers; the periodic
job `poll_verifications` asks Vonage where each pending one stands. Pending → verified, when
staff are told (in-app notification, email to the owner) exactly once however many polls see
it; or → rejected with the carriers' reason, after which the owner corrects Business info and
resubmits (`request_resubmission`), which makes it pending again.

Functions that call Vonage are called only from `jobs/texting.py`; all take `now`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from blinker import Namespace
from flask import current_app, has_request_context, url_for
from sqlalchemy import and_, or_, update

from app.extensions import db
from app.models import Business, User
from app.models.texting import DedicatedNumber, Verification
from app.plans import get_plan
from app.services import notifications
from app.services.accounts import public_url
from app.services.business_info import missing_for_verification
from app.services.errors import ServiceError
from app.services.mail import send_email
from app.services.phones import display_phone
from app.services.queues import enqueue
from app.services.texting import (
    CLAIM_TIMEOUT,
    JOB_TIMEOUT,
    assign_number,
    claim,
    get_business,
    held_number,
    publish_change,
    schedule_periodic_jobs,
)
from app.vonage_gateway import (
    GatewayError,
    PermanentFailure,
    TollFreeVerificationRequest,
    get_gateway,
)

log = logging.getLogger(__name__)

SUBMIT_RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30))

_signals = Namespace()
number_verified = _signals.signal("number-verified")
"""Sent with `business_id` and `dedicated_number_id` when a number becomes verified (after the
commit). Texts that arrived before verification are released into the inbox from here."""


# --- Resubmitting (from the settings pages) -------------------------------------------------


def request_resubmission(business_id: int, *, now: datetime) -> Verification:
    """Sends the business's corrected details to the carriers again, after a rejection.
    Raises ServiceError."""
    business = get_business(business_id)
    held = held_number(business_id)
    verification = held.verification if held is not None else None
    if verification is None or verification.state != "rejected":
        raise ServiceError("There is no rejected verification to resubmit.")
    missing = missing_for_verification(business)
    if missing:
        raise ServiceError(
            "Complete your Business info first: " + ", ".join(missing) + ".",
            field="business_info",
        )
    verification.state = "pending"
    verification.reason = None
    verification.decided_at = None
    verification.needs_submission = True
    verification.submission_attempts = 0
    verification.submission_claimed_at = None
    db.session.commit()
    publish_change(business_id, "resubmitted")
    from jobs.texting import submit_verification

    enqueue(submit_verification, verification.id, timeout=JOB_TIMEOUT)
    return verification


# --- Submitting and checking (jobs) ---------------------------------------------------------


def verification_request(business: Business, number: str) -> TollFreeVerificationRequest:
    """The carriers' toll-free verification form, filled from Business info."""
    first, _, last = business.contact_name.strip().partition(" ")
    plan = get_plan(business.plan)
    return TollFreeVerificationRequest(
        business_name=business.name,
        street=business.street_address,
        city=business.city,
        state=business.region,
        postal_code=business.postal_code,
        country=business.country,
        website=business.website,
        contact_first_name=first,
        contact_last_name=last.strip() or first,
        contact_email=business.contact_email,
        contact_phone=business.contact_phone,
        use_case="CUSTOMER_CARE",
        use_case_summary=(
            f"{business.name} texts its own clients: appointment confirmations and reminders, "
            "payment reminders, and replies to clients' questions. Clients text back to ask "
            "about or change their appointments."
        ),
        sample_messages=(
            f"Hi Sam, this is {business.name}: your appointment is confirmed for Tue Mar 4 at "
            "3:00 PM. Reply to this text with any questions. Reply STOP to opt out.",
            f"Reminder from {business.name}: see you tomorrow at 10:30 AM. Reply C to confirm "
            "or call us to reschedule. Reply STOP to opt out.",
            f"Thanks for your message! Yes, we have an opening on Friday at 2 PM. "
            f"— {business.name}",
        ),
        opt_in_workflow=(
            "Clients give their mobile number when they book in person, by phone or online, "
            "and agree to receive texts about their appointments. Clients who text the number "
            "first start the conversation themselves. Every first text says how to opt out "
            "(reply STOP), and STOP is honoured at once."
        ),
        numbers=(number,),
        monthly_volume=plan.monthly_texts or 2000,
    )


def submit_verification(verification_id: int, *, now: datetime) -> None:
    """Sends the business's details to the carriers (first time, or again after a rejection).
    Safe to run twice: a submitted verification is not sent again."""
    verification = db.session.get(Verification, verification_id)
    if verification is None or not verification.needs_submission:
        return
    number = verification.dedicated_number
    if number.status not in ("active", "reserved") or number.number is None:
        return
    if not claim(
        Verification,
        verification_id,
        "submission_claimed_at",
        Verification.needs_submission.is_(True),
        now,
    ):
        return
    db.session.refresh(verification)
    business = get_business(verification.business_id)
    missing = missing_for_verification(business)
    if missing:
        _refuse_submission(
            verification,
            "Your Business info is missing: " + ", ".join(missing) + ". Add it, then resubmit.",
            now,
        )
        return
    details = verification_request(business, number.number)
    gateway = get_gateway()
    try:
        if verification.registration_id:
            gateway.resubmit_tollfree_verification(verification.registration_id, details)
        else:
            verification.registration_id = gateway.submit_tollfree_verification(details)
    except PermanentFailure as error:
        _refuse_submission(verification, f"Vonage refused the details: {error.reason}", now)
        return
    except GatewayError as error:  # try again later; the periodic job also picks it up
        log.warning("submitting verification %s: %s", verification.id, error)
        verification.submission_attempts += 1
        verification.submission_claimed_at = None
        db.session.commit()
        if verification.submission_attempts <= len(SUBMIT_RETRY_DELAYS):
            from jobs.texting import submit_verification as job

            delay = SUBMIT_RETRY_DELAYS[verification.submission_attempts - 1]
            enqueue(job, verification.id, delay=delay, timeout=JOB_TIMEOUT)
        schedule_periodic_jobs()
        return
    verification.state = "pending"
    verification.reason = None
    verification.raw_status = None
    verification.needs_submission = False
    verification.submission_claimed_at = None
    verification.submission_attempts = 0
    verification.submitted_at = now
    verification.decided_at = None
    db.session.commit()
    publish_change(verification.business_id, "submitted")
    schedule_periodic_jobs()


def _refuse_submission(verification: Verification, reason: str, now: datetime) -> None:
    verification.needs_submission = False
    verification.submission_claimed_at = None
    db.session.commit()
    _record_rejection(verification.id, reason, now, raw_status="NOT_SUBMITTED")


def check_verification(verification_id: int, *, now: datetime) -> str | None:
    """Asks Vonage where a pending verification stands and records a decision. Returns the
    state, or None when it was not checked."""
    verification = db.session.get(Verification, verification_id)
    if (
        verification is None
        or verification.state != "pending"
        or verification.needs_submission
        or not verification.registration_id
        or verification.dedicated_number.status not in ("active", "reserved")
    ):
        return None
    try:
        status = get_gateway().tollfree_verification_status(verification.registration_id)
    except GatewayError as error:  # the next poll asks again
        log.warning("checking verification %s: %s", verification.id, error)
        return None
    verification.checked_at = now
    verification.raw_status = status.raw_status
    db.session.commit()
    if status.state == "verified":
        _record_verified(verification.id, now)
    elif status.state == "rejected":
        _record_rejection(
            verification.id, status.reason or "The carriers did not give a reason.", now
        )
    return status.state


def _app_path(endpoint: str) -> str:
    """A path in this app, for a notification's link (from a job too)."""
    if has_request_context():
        return url_for(endpoint)
    with current_app.test_request_context():
        return url_for(endpoint)


def _owner_emails(business_id: int) -> list[str]:
    return list(
        db.session.execute(
            db.select(User.email).where(
                User.business_id == business_id,
                User.role == "owner",
                User.deactivated_at.is_(None),
            )
        ).scalars()
    )


def _record_verified(verification_id: int, now: datetime) -> None:
    """Pending → verified; staff are told exactly once, however many polls see it."""
    moved = db.session.execute(
        update(Verification)
        .where(Verification.id == verification_id, Verification.state != "verified")
        .values(state="verified", reason=None, decided_at=now)
    ).rowcount
    first_to_tell = (
        db.session.execute(
            update(Verification)
            .where(Verification.id == verification_id, Verification.notified_at.is_(None))
            .values(notified_at=now)
        ).rowcount
        == 1
    )
    verification = db.session.get(Verification, verification_id)
    db.session.refresh(verification)
    number = verification.dedicated_number
    business = get_business(verification.business_id)
    shown = display_phone(number.number or "", business.country)
    link = public_url("settings.sms_settings")
    notification = None
    if first_to_tell:
        notification = notifications.notify(
            business.id,
            kind="number_verified",
            text=f"Your texting number {shown} is verified: your texts now reach clients "
            "reliably, and booking texts go from your own number.",
            link=_app_path("settings.sms_settings"),
            now=now,
        )
    db.session.commit()
    publish_change(business.id, "verified")
    if not first_to_tell:
        return
    notifications.announce(notification)
    for email in _owner_emails(business.id):
        send_email(
            to=email,
            subject=f"Your texting number {shown} is verified",
            body=(
                f"Good news: the carriers have verified {shown}, {business.name}'s texting "
                "number.\n\n"
                "Texts from it now reach your clients reliably, booking confirmations and "
                "reminders go out from it, and your clients' replies come to your Twoway "
                f"inbox.\n\nSee your texting settings: {link}\n"
            ),
        )
    if moved:
        number_verified.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            business_id=business.id,
            dedicated_number_id=number.id,
        )


def _record_rejection(
    verification_id: int, reason: str, now: datetime, *, raw_status: str | None = None
) -> None:
    """Pending → rejected with the reason; staff are told once per rejection."""
    values: dict = {"state": "rejected", "reason": reason[:2000], "decided_at": now}
    if raw_status:
        values["raw_status"] = raw_status
    moved = (
        db.session.execute(
            update(Verification)
            .where(Verification.id == verification_id, Verification.state == "pending")
            .values(values)
        ).rowcount
        == 1
    )
    if not moved:
        db.session.commit()
        return
    verification = db.session.get(Verification, verification_id)
    db.session.refresh(verification)
    business = get_business(verification.business_id)
    shown = display_phone(verification.dedicated_number.number or "", business.country)
    notification = notifications.notify(
        business.id,
        kind="verification_rejected",
        text=f"The verification of your texting number {shown} needs changes: {reason}",
        link=_app_path("settings.sms_settings"),
        now=now,
    )
    db.session.commit()
    publish_change(business.id, "rejected")
    notifications.announce(notification)
    link = public_url("settings.business_info_form")
    for email in _owner_emails(business.id):
        send_email(
            to=email,
            subject=f"Your texting number {shown} needs changes before it is verified",
            body=(
                f"The carriers did not verify {shown}, {business.name}'s texting number, "
                f"yet. Their reason:\n\n  {reason}\n\n"
                f"Correct your business info and resubmit: {link}\n"
            ),
        )


def poll_verifications(*, now: datetime) -> None:
    """The periodic check: finishes assignments and submissions whose job died, and asks
    Vonage about every pending verification."""
    stale = now - CLAIM_TIMEOUT
    stuck_numbers = db.session.execute(
        db.select(DedicatedNumber.id).where(
            DedicatedNumber.status == "assigning",
            or_(
                DedicatedNumber.claimed_at < stale,
                and_(DedicatedNumber.claimed_at.is_(None), DedicatedNumber.created_at < stale),
            ),
        )
    ).scalars()
    for number_id in list(stuck_numbers):
        assign_number(number_id, now=now)
    waiting = db.session.execute(
        db.select(Verification.id)
        .join(DedicatedNumber)
        .where(
            Verification.needs_submission.is_(True),
            or_(
                Verification.submission_claimed_at.is_(None),
                Verification.submission_claimed_at < stale,
            ),
            DedicatedNumber.status.in_(("active", "reserved")),
        )
    ).scalars()
    for verification_id in list(waiting):
        submit_verification(verification_id, now=now)
    pending = db.session.execute(
        db.select(Verification.id)
        .join(DedicatedNumber)
        .where(
            Verification.state == "pending",
            Verification.needs_submission.is_(False),
            Verification.registration_id.is_not(None),
            DedicatedNumber.status.in_(("active", "reserved")),
        )
        .order_by(Verification.id)
    ).scalars()
    for verification_id in list(pending):
        check_verification(verification_id, now=now)


# --- The banner on every page ---------------------------------------------------------------


@dataclass(frozen=True)
class VerificationBanner:
    """What the banner says: verification pending, rejected, or (until dismissed) verified."""

    state: str
    number: str
    reason: str | None


def verification_banner(business_id: int) -> VerificationBanner | None:
    """The banner for a business using two-way texting, or None. One indexed query."""
    row = db.session.execute(
        db.select(
            Verification.state,
            Verification.reason,
            Verification.acknowledged_at,
            DedicatedNumber.number,
        )
        .join(DedicatedNumber, Verification.dedicated_number_id == DedicatedNumber.id)
        .where(DedicatedNumber.business_id == business_id, DedicatedNumber.status == "active")
    ).first()
    if row is None or (row.state == "verified" and row.acknowledged_at is not None):
        return None
    return VerificationBanner(state=row.state, number=row.number or "", reason=row.reason)


def acknowledge_verified(business_id: int, *, now: datetime) -> None:
    """Dismisses the "verified" banner (and marks its notification read)."""
    db.session.execute(
        update(Verification)
        .where(
            Verification.business_id == business_id,
            Verification.state == "verified",
            Verification.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=now)
    )
    notifications.mark_kind_read(business_id, "number_verified", now=now)
    db.session.commit()
    publish_change(business_id, "acknowledged")
