"""The balance of texts a business can send (DESIGN.md §4).

A plan with `monthly_texts` gives that many texts each calendar month, in the business's own
time zone; what is left lapses when the month ends. Purchased texts never expire. Sending
spends the allowance first, then purchased texts; every part of every kind of message costs
one; receiving is free. Unlimited plans (`monthly_texts` None) are never charged, but keep any
purchased texts in case they move to a limited plan.

The balance is one `TextBalance` row per business, changed only by conditional UPDATEs that
the database applies atomically (the row is locked on PostgreSQL, the database on SQLite): a
charge that the row cannot cover changes nothing, so concurrent sends can never take the
balance below zero, and nothing is read and then written back. Every change is also written
to the `TextLedgerEntry` history in the same transaction.

Refunds: a part Vonage refused outright (a permanent send error, so it never reached the
network and Vonage did not charge us) gives its text back to where it came from. An
allowance text from a month that has since lapsed is not given back (it would have lapsed).
Parts that went out and then failed to deliver are not refunded: Vonage charges for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, update

from app.extensions import db, insert_on_conflict
from app.models import Business
from app.models.messages import MessagePart, TextBalance, TextLedgerEntry
from app.plans import get_plan
from app.services.errors import ServiceError


@dataclass(frozen=True)
class Balance:
    """Texts left: this month's allowance and purchased texts (`unlimited`: no limit)."""

    allowance_left: int
    purchased_left: int
    unlimited: bool

    @property
    def total(self) -> int | None:
        """Texts that can still be sent; None when unlimited."""
        return None if self.unlimited else self.allowance_left + self.purchased_left

    @property
    def summary(self) -> str:
        """As shown in Settings and the composer."""
        if self.unlimited:
            return "Unlimited texts"
        left = self.allowance_left + self.purchased_left
        return (
            f"{left} {'text' if left == 1 else 'texts'} left: {self.allowance_left} of this "
            f"month's allowance, {self.purchased_left} purchased"
        )


@dataclass(frozen=True)
class Charge:
    """What a reservation took: `from_allowance` texts of `month`, the rest purchased."""

    texts: int
    from_allowance: int
    month: str
    unlimited: bool

    def source_of(self, part_index: int) -> str | None:
        """Where the text of the message's `part_index`-th part came from."""
        if self.unlimited:
            return None
        return "allowance" if part_index < self.from_allowance else "purchased"


def _business(business_id: int) -> Business:
    business = db.session.get(Business, business_id)
    if business is None:
        raise ServiceError("That business does not exist.")
    return business


def month_of(business: Business, now: datetime) -> str:
    """The calendar month ("2027-01") `now` falls in, in the business's time zone."""
    return now.astimezone(ZoneInfo(business.time_zone)).strftime("%Y-%m")


def _insert_ignore(values: dict) -> None:
    """INSERT the balance row unless it exists (two requests may both try at once)."""
    db.session.execute(insert_on_conflict(TextBalance).values(**values).on_conflict_do_nothing())


def _lock_current(business: Business, now: datetime) -> TextBalance:
    """The business's balance row, locked for this transaction (a row lock on PostgreSQL, the
    write lock on SQLite) and with this month's allowance (a new month replaces what was left
    of the last one). Does not commit."""
    month = month_of(business, now)
    allowance = get_plan(business.plan).monthly_texts or 0
    _insert_ignore(
        {
            "business_id": business.id,
            "allowance_month": month,
            "allowance_left": allowance,
            "purchased_left": 0,
            "updated_at": now,
        }
    )
    # The month changed: the allowance lapses and a fresh one starts; otherwise only the lock.
    db.session.execute(
        update(TextBalance)
        .where(TextBalance.business_id == business.id)
        .values(
            allowance_left=case(
                (TextBalance.allowance_month != month, allowance),
                else_=TextBalance.allowance_left,
            ),
            allowance_month=month,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return db.session.get(TextBalance, business.id, populate_existing=True)


def balance_for(business_id: int, now: datetime) -> Balance:
    """The business's texts left at `now` (reads only; a lapsed allowance shows as renewed)."""
    business = _business(business_id)
    plan = get_plan(business.plan)
    row = db.session.get(TextBalance, business_id, populate_existing=True)
    purchased = row.purchased_left if row is not None else 0
    if plan.unlimited:
        return Balance(0, purchased, unlimited=True)
    if row is None or row.allowance_month != month_of(business, now):
        return Balance(plan.monthly_texts or 0, purchased, unlimited=False)
    return Balance(row.allowance_left, purchased, unlimited=False)


def not_enough_message(needed: int, left: int) -> str:
    """The refusal staff read when a message costs more than is left."""
    return (
        f"Not enough texts left: this message needs {needed} and {left} "
        f"{'is' if left == 1 else 'are'} left. Buy more texts in Settings → Plan."
    )


def reserve(
    business_id: int, texts: int, now: datetime, *, message_id: int | None = None
) -> Charge:
    """Takes `texts` from the balance (allowance first) in the current transaction, or raises
    ServiceError and changes nothing when the balance cannot cover them all. The caller
    commits (with the message it pays for, so both are saved or neither)."""
    charge = try_reserve(business_id, texts, now, message_id=message_id)
    if charge is None:
        row = db.session.get(TextBalance, business_id)
        left = row.allowance_left + row.purchased_left if row is not None else 0
        db.session.rollback()
        raise ServiceError(not_enough_message(texts, left), field="body")
    return charge


def try_reserve(
    business_id: int, texts: int, now: datetime, *, message_id: int | None = None
) -> Charge | None:
    """`reserve` for a caller whose transaction must go on when the balance cannot cover the
    texts (an automatic message stored as failed): None, with nothing taken and nothing
    rolled back. The balance row stays locked until the caller's transaction ends."""
    if texts <= 0:
        raise ValueError("a reservation is for at least one text")
    business = _business(business_id)
    plan = get_plan(business.plan)
    month = month_of(business, now)
    if plan.unlimited:
        return Charge(texts, 0, month, unlimited=True)
    row = _lock_current(business, now)
    if row.allowance_left + row.purchased_left < texts:
        return None
    from_allowance = min(row.allowance_left, texts)
    from_purchased = texts - from_allowance
    # The row is locked, and the condition repeats the check in the statement itself: the
    # balance cannot go below zero (CHECK constraints back this up).
    result = db.session.execute(
        update(TextBalance)
        .where(
            TextBalance.business_id == business_id,
            TextBalance.allowance_left >= from_allowance,
            TextBalance.purchased_left >= from_purchased,
        )
        .values(
            allowance_left=TextBalance.allowance_left - from_allowance,
            purchased_left=TextBalance.purchased_left - from_purchased,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # pragma: no cover - the lock makes this unreachable
        return None
    db.session.add(
        TextLedgerEntry(
            business_id=business_id,
            reason="send",
            allowance_change=-from_allowance,
            purchased_change=-from_purchased,
            message_id=message_id,
            created_at=now,
        )
    )
    return Charge(texts, from_allowance, month, unlimited=False)


def add_purchased(
    business_id: int, texts: int, now: datetime, *, note: str | None = None
) -> Balance:
    """Adds purchased texts (they never expire) and commits. Returns the new balance."""
    if texts <= 0:
        raise ServiceError("Add at least one text.")
    business = _business(business_id)
    _lock_current(business, now)
    db.session.execute(
        update(TextBalance)
        .where(TextBalance.business_id == business_id)
        .values(purchased_left=TextBalance.purchased_left + texts, updated_at=now)
    )
    db.session.add(
        TextLedgerEntry(
            business_id=business_id,
            reason="purchase",
            purchased_change=texts,
            note=note,
            created_at=now,
        )
    )
    db.session.commit()
    return balance_for(business_id, now)


def refund_part(part_id: int, now: datetime) -> bool:
    """Gives back the text a part cost, once, if Vonage refused it before it went out (see the
    module docstring). Does not commit. True if a text was given back."""
    claimed = db.session.execute(
        update(MessagePart)
        .where(
            MessagePart.id == part_id,
            MessagePart.refunded.is_(False),
            MessagePart.charged_from.is_not(None),
        )
        .values(refunded=True)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return False
    part = db.session.get(MessagePart, part_id, populate_existing=True)
    if part.charged_from == "purchased":
        values = {"purchased_left": TextBalance.purchased_left + 1}
        condition = TextBalance.business_id == part.business_id
    else:
        values = {"allowance_left": TextBalance.allowance_left + 1}
        condition = (TextBalance.business_id == part.business_id) & (
            TextBalance.allowance_month == part.charged_month
        )
    given = db.session.execute(
        update(TextBalance)
        .where(condition)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if given:
        db.session.add(
            TextLedgerEntry(
                business_id=part.business_id,
                reason="refund",
                allowance_change=1 if part.charged_from == "allowance" else 0,
                purchased_change=1 if part.charged_from == "purchased" else 0,
                message_id=part.message_id,
                created_at=now,
            )
        )
    return bool(given)
