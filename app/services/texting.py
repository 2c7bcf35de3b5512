"""Two-way texting: the dedicated number, its verification, and which number texts go from.

The life of a dedicated number (DESIGN.md §2, §3, §8):

1. **Activation** (`activate_two_way_texting`, from Settings → SMS Settings): a `DedicatedNumber`
   row in `assigning` is stored at once. A partial unique index allows one held row (assigning,
   active or reserved) per business, so double clicks, two admins at once and retries all end
   with the same row. The job `assign_dedicated_number` then buys a toll-free number of the
   business's country, points its inbound webhook at us, and marks it `active`; a purchase
   that fails leaves a `failed` row with the reason (nothing held, the button works again).
2. **Verification** (`app.services.verification`): once the number is bought, the business's
   details go to the carriers, and a periodic job checks pending verifications.
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

from flask import current_app
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Business
from app.models.texting import HELD_STATUSES, SMS_SETTINGS, DedicatedNumber, Verification
from app.plans import Plan, get_plan, upgrade_for_two_way_texting
from app.services import events, periodic
from app.services.business_info import missing_for_verification
from app.services.errors import ServiceError
from app.services.places import COUNTRIES, TWO_WAY_COUNTRIES
from app.services.queues import enqueue
from app.vonage_gateway import (
    Gateway,
    GatewayError,
    NumberUnavailable,
    PermanentFailure,
    get_gateway,
)

log = logging.getLogger(__name__)

RESERVATION_MONTHS = 3
INBOUND_WEBHOOK_PATH = "/webhooks/vonage/inbound"  # fixed: Vonage and other tools rely on it
CLAIM_TIMEOUT = timedelta(minutes=5)  # a job that held a row longer than this has died
ASSIGN_RETRY_DELAYS = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2))
CANDIDATES_TO_TRY = 3  # numbers sold to someone else between search and buy
RELEASE_EVERY = timedelta(days=1)
JOB_TIMEOUT = 120  # seconds: a few Vonage calls of at most VONAGE_TIMEOUT each
TEXTING_EVENT = "texting-changed"  # SSE: the number or its verification changed

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


def get_business(business_id: int) -> Business:
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


def publish_change(business_id: int, status: str) -> None:
    events.publish(business_id, TEXTING_EVENT, {"status": status})


# --- Activation and deactivation (from the settings page) --------------------------------


def activate_two_way_texting(business_id: int, *, user_id: int, now: datetime) -> DedicatedNumber:
    """Get two-way texting: gives the business its reserved number back, or starts buying a new
    one (the number appears within seconds, when the job has bought it). Safe to call any
    number of times at once: the business ends with one number. Raises ServiceError."""
    business = get_business(business_id)
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
            publish_change(business_id, "assigning")
            from jobs.texting import assign_dedicated_number

            enqueue(assign_dedicated_number, created.id, timeout=JOB_TIMEOUT)
            return created
        if held.status == "reserved" and not _reactivate(held, now):
            continue  # released at this very moment: buy a new one
        business.sms_setting = "two_way"
        db.session.commit()
        publish_change(business_id, held.status)
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
    business = get_business(business_id)
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
        publish_change(business_id, held.status)
        schedule_periodic_jobs()
    return held


# --- Buying the number (job) --------------------------------------------------------------


class _NoNumberForSale(Exception):
    """Vonage offered no toll-free number for the country (or sold each one to someone else)."""


def inbound_webhook_url() -> str:
    """Where Vonage sends texts to our numbers."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + INBOUND_WEBHOOK_PATH


def claim(model: type, row_id: int, column: str, condition, now: datetime) -> bool:
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
    if not claim(
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
    publish_change(row.business_id, "active")
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
    publish_change(row.business_id, "failed")


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
        publish_change(row.business_id, "released")
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
    business = get_business(business_id)
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
