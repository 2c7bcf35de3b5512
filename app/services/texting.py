"""Two-way texting: the dedicated number, its verification, and which number texts go from.

The life of a dedicated number (DESIGN.md §2, §3, §8):

1. **Activation** (`activate_two_way_texting`, from Settings → SMS Settings): a `DedicatedNumber`
   row in `assigning` is stored at once. A partial unique index allows one held row (assigning,
   active or reserved) per business, so double clicks, two admins at once and retries all end
   with the same row. The job `assign_dedicated_number` then buys a toll-free number of the
   business's country, points its inbound webhook at us, and marks it `active`; a purchase
   that fails leaves a `failed` row with the reason (nothing held, the button works again).
2. **Verification**: activation submits the business's details to the carriers (job
   `submit_verification`); the periodic job `poll_verifications` checks pending ones. Pending →
   verified (notification and email exactly once) or rejected (with the reason; the owner
   corrects Business info and resubmits).
3. **Deactivation** (`save_sms_setting` with another option): the number is `reserved` for three
   months. Reactivating before then gives the same row back, verification included; the daily
   job `release_expired_numbers` cancels it at Vonage after that (`released`), and a later
   activation starts a new row, a new number and a new verification.

Every function that calls Vonage is called only from `jobs/texting.py`. Functions take `now`,
so tests control time.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from blinker import Namespace
from flask import current_app, has_request_context, url_for
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Business, User
from app.models.texting import HELD_STATUSES, SMS_SETTINGS, DedicatedNumber, Verification
from app.plans import Plan, get_plan, upgrade_for_two_way_texting
from app.services import events, notifications, periodic
from app.services.accounts import public_url
from app.services.business_info import missing_for_verification
from app.services.errors import ServiceError
from app.services.mail import send_email
from app.services.phones import display_phone
from app.services.places import COUNTRIES, TWO_WAY_COUNTRIES
from app.services.queues import enqueue
from app.vonage_gateway import (
    Gateway,
    GatewayError,
    NumberUnavailable,
    PermanentFailure,
    TollFreeVerificationRequest,
    get_gateway,
)

log = logging.getLogger(__name__)

RESERVATION_MONTHS = 3
INBOUND_WEBHOOK_PATH = "/webhooks/vonage/inbound"  # fixed: Vonage and other tools rely on it
CLAIM_TIMEOUT = timedelta(minutes=5)  # a job that held a row longer than this has died
ASSIGN_RETRY_DELAYS = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2))
SUBMIT_RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30))
CANDIDATES_TO_TRY = 3  # numbers sold to someone else between search and buy
RELEASE_EVERY = timedelta(days=1)
JOB_TIMEOUT = 120  # seconds: a few Vonage calls of at most VONAGE_TIMEOUT each
TEXTING_EVENT = "texting-changed"  # SSE: the number or its verification changed

_signals = Namespace()
number_verified = _signals.signal("number-verified")
"""Sent with `business_id` and `dedicated_number_id` when a number becomes verified (after the
commit). Texts that arrived before verification are released into the inbox from here."""

MessageKind = Literal["transactional", "marketing", "direct"]


# --- What the business may have -----------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    """Whether two-way texting is offered to a business, and if not, why in plain words."""

    offered: bool
    reason: str | None = None
    upgrade_plan: Plan | None = None


def availability(business: Business) -> Availability:
    """Two-way texting is for businesses in the US and Canada on a plan that includes it."""
    if business.country not in TWO_WAY_COUNTRIES:
        country = COUNTRIES.get(business.country, business.country)
        return Availability(
            False,
            "Two-way texting is available to businesses in the United States and Canada, where "
            f"toll-free texting numbers are sold. Your business is in {country}, so your "
            "booking and reminder texts go from our shared numbers.",
        )
    plan = get_plan(business.plan)
    if not plan.two_way_texting:
        upgrade = upgrade_for_two_way_texting()
        return Availability(
            False,
            f"Your {plan.name} plan sends booking and reminder texts from our shared numbers. "
            f"Upgrade to {upgrade.name} ({upgrade.price}) for a number of your own that "
            "clients can text back.",
            upgrade,
        )
    return Availability(True)


def _business(business_id: int) -> Business:
    business = db.session.get(Business, business_id)
    if business is None:
        raise ServiceError("That business does not exist.")
    return business


def held_number(business_id: int) -> DedicatedNumber | None:
    """The business's number while it holds one: being bought, in use, or reserved."""
    return db.session.execute(
        db.select(DedicatedNumber).where(
            DedicatedNumber.business_id == business_id,
            DedicatedNumber.status.in_(HELD_STATUSES),
        )
    ).scalar_one_or_none()


def last_failure(business_id: int) -> str | None:
    """Why the business's latest attempt to get a number failed, if it did and it holds none."""
    latest = db.session.execute(
        db.select(DedicatedNumber)
        .where(DedicatedNumber.business_id == business_id)
        .order_by(DedicatedNumber.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None or latest.status in HELD_STATUSES or latest.activated_at is not None:
        return None
    return latest.failure_reason


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months later (the 31st becomes the month's last
    day when the month is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _publish(business_id: int, status: str) -> None:
    events.publish(business_id, TEXTING_EVENT, {"status": status})


# --- Activation and deactivation (from the settings page) --------------------------------


def activate_two_way_texting(business_id: int, *, user_id: int, now: datetime) -> DedicatedNumber:
    """Get two-way texting: gives the business its reserved number back, or starts buying a new
    one (the number appears within seconds, when the job has bought it). Safe to call any
    number of times at once: the business ends with one number. Raises ServiceError."""
    business = _business(business_id)
    offer = availability(business)
    if not offer.offered:
        raise ServiceError(offer.reason or "Two-way texting is not available.")
    for _ in range(3):  # a reservation released or a race lost meanwhile: look again
        held = held_number(business_id)
        if held is not None and held.status == "reserved" and held.country != business.country:
            # The business moved country while the number was reserved: it needs a number of
            # its new country. The reserved one goes back to Vonage with the daily release.
            _mark_for_release(held)
            held = None
        if held is None:
            created = _start_assignment(business, user_id=user_id, now=now)
            if created is None:
                continue  # another request created it first
            _publish(business_id, "assigning")
            from jobs.texting import assign_dedicated_number

            enqueue(assign_dedicated_number, created.id, timeout=JOB_TIMEOUT)
            return created
        if held.status == "reserved" and not _reactivate(held, now):
            continue  # released at this very moment: buy a new one
        business.sms_setting = "two_way"
        db.session.commit()
        _publish(business_id, held.status)
        return held
    raise ServiceError("Your number is changing right now. Please try again in a moment.")


def _start_assignment(business: Business, *, user_id: int, now: datetime) -> DedicatedNumber | None:
    """Stores the `assigning` row; None when another request stored one first."""
    missing = missing_for_verification(business)
    if missing:
        raise ServiceError(
            "Before you get a number, complete your Business info: "
            + ", ".join(missing)
            + ". The carriers' verification of your number needs it.",
            field="business_info",
        )
    row = DedicatedNumber(
        business_id=business.id,
        country=business.country,
        status="assigning",
        requested_by_id=user_id,
        previous_sms_setting=business.sms_setting,
        created_at=now,
    )
    db.session.add(row)
    business.sms_setting = "two_way"
    try:
        db.session.commit()
    except IntegrityError:  # the unique index: another click or admin got there first
        db.session.rollback()
        return None
    return row


def _reactivate(row: DedicatedNumber, now: datetime) -> bool:
    """Reserved → active again, unless the release job took it meanwhile."""
    result = db.session.execute(
        update(DedicatedNumber)
        .where(DedicatedNumber.id == row.id, DedicatedNumber.status == "reserved")
        .values(status="active", activated_at=now, deactivated_at=None, reserved_until=None)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return False
    db.session.refresh(row)
    return True


def _mark_for_release(row: DedicatedNumber) -> None:
    db.session.execute(
        update(DedicatedNumber)
        .where(DedicatedNumber.id == row.id, DedicatedNumber.status == "reserved")
        .values(status="releasing")
    )
    db.session.commit()
    schedule_periodic_jobs()


def save_sms_setting(
    business_id: int, setting: str, *, user_id: int, now: datetime
) -> DedicatedNumber | None:
    """Saves the SMS Settings tab's choice. Two-way texting activates (as the button does);
    either other choice turns two-way texting off and reserves the number for three months.
    Returns the business's number, if it holds one. Raises ServiceError."""
    if setting not in SMS_SETTINGS:
        raise ServiceError("Choose one of the options.", field="sms_setting")
    if setting == "two_way":
        return activate_two_way_texting(business_id, user_id=user_id, now=now)
    business = _business(business_id)
    held = held_number(business_id)
    if held is not None and held.status == "assigning":
        raise ServiceError(
            "Your number is still being set up. Wait a few seconds, then save again.",
            field="sms_setting",
        )
    if held is not None and held.status == "active":
        held.status = "reserved"
        held.deactivated_at = now
        held.reserved_until = add_months(now, RESERVATION_MONTHS)
    business.sms_setting = setting
    db.session.commit()
    if held is not None:
        _publish(business_id, held.status)
        schedule_periodic_jobs()
    return held


def request_resubmission(business_id: int, *, now: datetime) -> Verification:
    """Sends the business's corrected details to the carriers again, after a rejection.
    Raises ServiceError."""
    business = _business(business_id)
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
    _publish(business_id, "resubmitted")
    from jobs.texting import submit_verification

    enqueue(submit_verification, verification.id, timeout=JOB_TIMEOUT)
    return verification


# --- Buying the number (job) --------------------------------------------------------------


class _NoNumberForSale(Exception):
    """Vonage offered no toll-free number for the country (or sold each one to someone else)."""


def inbound_webhook_url() -> str:
    """Where Vonage sends texts to our numbers."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + INBOUND_WEBHOOK_PATH


def _claim(model: type, row_id: int, column: str, condition, now: datetime) -> bool:
    """Marks the row as being worked on by this job, unless another job holds it (its claim
    is younger than CLAIM_TIMEOUT). Commits."""
    claimed_at = getattr(model, column)
    result = db.session.execute(
        update(model)
        .where(
            model.id == row_id,
            condition,
            or_(claimed_at.is_(None), claimed_at < now - CLAIM_TIMEOUT),
        )
        .values({column: now})
    )
    db.session.commit()
    return result.rowcount == 1


def assign_number(number_id: int, *, now: datetime) -> None:
    """Buys the business's number, points its webhook at us, and starts its verification.
    Safe to run twice, or at once: only one run works on a row, and a rerun picks up where a
    dead one stopped without buying a second number."""
    row = db.session.get(DedicatedNumber, number_id)
    if row is None or row.status != "assigning":
        return
    if not _claim(
        DedicatedNumber, number_id, "claimed_at", DedicatedNumber.status == "assigning", now
    ):
        return
    db.session.refresh(row)
    gateway = get_gateway()
    try:
        _buy_number(gateway, row)
        gateway.update_number(row.country, row.number, inbound_url=inbound_webhook_url())
    except _NoNumberForSale:
        country = COUNTRIES.get(row.country, row.country)
        _fail_assignment(
            gateway,
            row,
            f"No toll-free numbers are available in {country} right now. Nothing was bought "
            "or charged; please try again later.",
        )
    except PermanentFailure as error:
        _fail_assignment(
            gateway,
            row,
            f"Vonage refused to set up the number ({error.reason}). Nothing was kept or "
            "charged; please try again.",
        )
    except GatewayError as error:  # throttled, an outage, a lost answer: try again later
        log.warning("assigning number %s: %s", row.id, error)
        _retry_assignment(gateway, row)
    else:
        _complete_assignment(row, now)


def _held_elsewhere(row: DedicatedNumber) -> bool:
    """True if another row of ours holds the same number (never cancel or claim it then)."""
    return (
        db.session.execute(
            db.select(DedicatedNumber.id).where(
                DedicatedNumber.number == row.number,
                DedicatedNumber.id != row.id,
                DedicatedNumber.status.in_((*HELD_STATUSES, "releasing")),
            )
        ).first()
        is not None
    )


def _owned_by_us(gateway: Gateway, number: str) -> bool:
    digits = number.lstrip("+")
    return any(owned.msisdn == digits for owned in gateway.owned_numbers())


def _buy_number(gateway: Gateway, row: DedicatedNumber) -> None:
    """Sets `row.number` to a number our account now owns. The number tried is stored before
    the purchase, so a run that dies mid-purchase is followed by one that checks whether the
    purchase happened instead of buying another number."""
    if row.number is not None:
        if _owned_by_us(gateway, row.number) and not _held_elsewhere(row):
            return
        row.number = None
        db.session.commit()
    for candidate in gateway.search_numbers(row.country)[:CANDIDATES_TO_TRY]:
        row.number = "+" + candidate.msisdn.lstrip("+")
        db.session.commit()
        try:
            gateway.buy_number(row.country, row.number)
        except NumberUnavailable:  # sold to someone else since the search
            continue
        return
    row.number = None
    db.session.commit()
    raise _NoNumberForSale


def _complete_assignment(row: DedicatedNumber, now: datetime) -> None:
    row.status = "active"
    row.activated_at = now
    row.claimed_at = None
    row.failure_reason = None
    verification = row.verification
    if verification is None:
        verification = Verification(
            business_id=row.business_id, dedicated_number=row, created_at=now
        )
        db.session.add(verification)
    db.session.commit()
    _publish(row.business_id, "active")
    from jobs.texting import submit_verification

    enqueue(submit_verification, verification.id, timeout=JOB_TIMEOUT)


def _give_back(gateway: Gateway, row: DedicatedNumber) -> bool:
    """Cancels the row's number at Vonage if we may own it; True when nothing is left there."""
    if row.number is None or _held_elsewhere(row):
        return True
    try:
        gateway.cancel_number(row.country, row.number)
    except PermanentFailure as error:
        if error.code == "http-420":  # Vonage: not a number of ours (never bought)
            return True
        log.warning("giving back %s: %s", row.number, error)
        return False
    except GatewayError as error:
        log.warning("giving back %s: %s", row.number, error)
        return False
    return True


def _fail_assignment(gateway: Gateway, row: DedicatedNumber, reason: str) -> None:
    """Nothing half-done: any number bought is given back (or left for the release job to
    give back), the row stops being held, and the page says why."""
    given_back = _give_back(gateway, row)
    row.status = "failed" if given_back else "releasing"
    if given_back:
        row.number = None  # nothing of it is ours any more
    row.failure_reason = reason
    row.claimed_at = None
    business = db.session.get(Business, row.business_id)
    if business is not None and business.sms_setting == "two_way":
        # Back to what the business had chosen before pressing the button.
        previous = row.previous_sms_setting
        business.sms_setting = previous if previous and previous != "two_way" else "do_not_reply"
    db.session.commit()
    _publish(row.business_id, "failed")


def _retry_assignment(gateway: Gateway, row: DedicatedNumber) -> None:
    row.attempts += 1
    row.claimed_at = None
    if row.attempts > len(ASSIGN_RETRY_DELAYS):
        _fail_assignment(
            gateway,
            row,
            "Vonage, our texting provider, isn't answering right now. Nothing was kept or "
            "charged; please try again in a few minutes.",
        )
        return
    db.session.commit()
    from jobs.texting import assign_dedicated_number

    enqueue(
        assign_dedicated_number,
        row.id,
        delay=ASSIGN_RETRY_DELAYS[row.attempts - 1],
        timeout=JOB_TIMEOUT,
    )


# --- Verification (jobs) ------------------------------------------------------------------


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
    if not _claim(
        Verification,
        verification_id,
        "submission_claimed_at",
        Verification.needs_submission.is_(True),
        now,
    ):
        return
    db.session.refresh(verification)
    business = _business(verification.business_id)
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
    _publish(verification.business_id, "submitted")
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
    business = _business(verification.business_id)
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
    _publish(business.id, "verified")
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
    business = _business(verification.business_id)
    shown = display_phone(verification.dedicated_number.number or "", business.country)
    notification = notifications.notify(
        business.id,
        kind="verification_rejected",
        text=f"The verification of your texting number {shown} needs changes: {reason}",
        link=_app_path("settings.sms_settings"),
        now=now,
    )
    db.session.commit()
    _publish(business.id, "rejected")
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


# --- Releasing reserved numbers (daily job) -------------------------------------------------


def release_expired_numbers(*, now: datetime) -> list[int]:
    """Gives back to Vonage every number whose three months of reservation are over (and any
    a failed assignment left behind). Returns the ids of the rows released."""
    due = or_(
        and_(DedicatedNumber.status == "reserved", DedicatedNumber.reserved_until <= now),
        DedicatedNumber.status == "releasing",
    )
    released = []
    for number_id in list(db.session.execute(db.select(DedicatedNumber.id).where(due)).scalars()):
        claimed = db.session.execute(
            update(DedicatedNumber)
            .where(DedicatedNumber.id == number_id, due)
            .values(status="releasing")
        ).rowcount
        db.session.commit()
        if claimed != 1:
            continue  # reactivated at this very moment
        row = db.session.get(DedicatedNumber, number_id)
        db.session.refresh(row)
        if not _give_back(get_gateway(), row):
            continue  # Vonage unavailable: tomorrow's run tries again
        row.status = "released"
        row.released_at = now
        db.session.commit()
        _publish(row.business_id, "released")
        released.append(row.id)
    return released


def schedule_periodic_jobs() -> None:
    """Makes sure the verification check and the daily release are scheduled (cheap when
    they are: one Redis command each)."""
    from jobs.texting import poll_verifications as poll_job
    from jobs.texting import release_expired_numbers as release_job

    periodic.ensure_scheduled(
        poll_job, poll_interval(), name="texting-poll-verifications", timeout=JOB_TIMEOUT * 5
    )
    periodic.ensure_scheduled(
        release_job, RELEASE_EVERY, name="texting-release-numbers", timeout=JOB_TIMEOUT * 5
    )


def poll_interval() -> timedelta:
    return timedelta(seconds=current_app.config["VERIFICATION_POLL_SECONDS"])


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
    _publish(business_id, "acknowledged")


# --- Which number a text goes from ----------------------------------------------------------


@dataclass(frozen=True)
class SystemNumbers:
    """The shared numbers (E.164), configured in one place (TRANSACTIONAL_SYSTEM_NUMBER and
    MARKETING_SYSTEM_NUMBER)."""

    transactional: str
    marketing: str

    def __contains__(self, number: str) -> bool:
        return number in (self.transactional, self.marketing)


def _e164(number: str) -> str:
    digits = number.strip().lstrip("+")
    return "+" + digits


def system_numbers() -> SystemNumbers:
    """The shared system numbers from the app's settings."""
    config = current_app.config
    return SystemNumbers(
        transactional=_e164(config["TRANSACTIONAL_SYSTEM_NUMBER"]),
        marketing=_e164(config["MARKETING_SYSTEM_NUMBER"]),
    )


def active_number(business_id: int) -> tuple[DedicatedNumber, Verification | None] | None:
    """The business's dedicated number while two-way texting is on, with its verification."""
    number = db.session.execute(
        db.select(DedicatedNumber).where(
            DedicatedNumber.business_id == business_id, DedicatedNumber.status == "active"
        )
    ).scalar_one_or_none()
    if number is None or number.number is None:
        return None
    return number, number.verification


def sender_for(business_id: int, kind: MessageKind) -> str:
    """The number (E.164) a text of this kind goes from (DESIGN.md §1):

    - transactional: the dedicated number once two-way texting is on and the number verified;
      otherwise the transactional system number.
    - marketing: always the marketing system number.
    - direct (typed by staff): the dedicated number, verified or not (while it is pending the
      composer warns that delivery is not guaranteed); ServiceError without one.
    """
    system = system_numbers()
    if kind == "marketing":
        return system.marketing
    business = _business(business_id)
    current = active_number(business_id) if availability(business).offered else None
    if kind == "direct":
        if current is None:
            raise ServiceError(
                "Texting clients needs two-way texting: turn it on in Settings → Auto Client "
                "Messages and SMS."
            )
        return current[0].number  # type: ignore[return-value]
    if kind != "transactional":
        raise ValueError(f"unknown kind of text: {kind!r}")
    if current is not None and current[1] is not None and current[1].state == "verified":
        return current[0].number  # type: ignore[return-value]
    return system.transactional


def find_dedicated_number(number: str) -> DedicatedNumber | None:
    """Which business's dedicated number this is (for routing inbound texts): the row in use,
    reserved or being released, or None for a number that is not (or no longer) anyone's."""
    return db.session.execute(
        db.select(DedicatedNumber)
        .where(
            DedicatedNumber.number == _e164(number),
            DedicatedNumber.status.in_(("active", "reserved", "releasing")),
        )
        .order_by(DedicatedNumber.id.desc())
        .limit(1)
    ).scalar_one_or_none()
