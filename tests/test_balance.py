"""The balance of texts: monthly allowance that lapses, purchased texts that do not, allowance
spent first, refusals that change nothing, and never below zero under concurrent sends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from app.extensions import db
from app.models import TextLedgerEntry
from app.services import balance
from app.services.errors import ServiceError
from tests.conftest import page_text

JAN = datetime(2027, 1, 15, 15, 0, tzinfo=UTC)


def _balance(app, business_id: int, now: datetime = JAN) -> balance.Balance:
    with app.app_context():
        return balance.balance_for(business_id, now)


def _reserve(app, business_id: int, texts: int, now: datetime = JAN) -> balance.Charge:
    with app.app_context():
        charge = balance.reserve(business_id, texts, now)
        db.session.commit()
        return charge


def _add(app, business_id: int, texts: int, now: datetime = JAN) -> None:
    with app.app_context():
        balance.add_purchased(business_id, texts, now)


def test_a_new_business_has_its_plans_monthly_allowance_and_no_purchased_texts(app, make_business):
    business = make_business(plan="growth")
    assert _balance(app, business["id"]) == balance.Balance(500, 0, unlimited=False)


def test_the_allowance_is_spent_before_purchased_texts(app, make_business):
    business = make_business(plan="starter")  # 100 texts a month
    _add(app, business["id"], 10)
    charge = _reserve(app, business["id"], 98)
    assert charge.from_allowance == 98
    charge = _reserve(app, business["id"], 5)
    assert (charge.from_allowance, charge.source_of(1), charge.source_of(2)) == (
        2,
        "allowance",
        "purchased",
    )
    assert _balance(app, business["id"]) == balance.Balance(0, 7, unlimited=False)


def test_a_send_the_balance_cannot_cover_is_refused_and_nothing_is_deducted(app, make_business):
    business = make_business(plan="starter")
    _reserve(app, business["id"], 98)
    with pytest.raises(ServiceError) as refused:
        _reserve(app, business["id"], 3)
    assert refused.value.message == (
        "Not enough texts left: this message needs 3 and 2 are left. "
        "Buy more texts in Settings → Plan."
    )
    assert _balance(app, business["id"]).total == 2
    with app.app_context():
        sends = db.session.execute(
            db.select(TextLedgerEntry).filter_by(business_id=business["id"], reason="send")
        ).all()
    assert len(sends) == 1  # only the first, accepted, charge


def test_the_allowance_lapses_at_the_end_of_the_month_in_the_business_time_zone(app, make_business):
    business = make_business(plan="starter", time_zone="America/New_York")
    _add(app, business["id"], 4)
    _reserve(app, business["id"], 60)
    # 23:30 on 31 January in New York is already February in UTC: still January's allowance.
    late_january = datetime(2027, 2, 1, 4, 30, tzinfo=UTC)
    assert _balance(app, business["id"], late_january) == balance.Balance(40, 4, False)
    _reserve(app, business["id"], 1, late_january)
    february = datetime(2027, 2, 1, 5, 30, tzinfo=UTC)  # 00:30 on 1 February in New York
    assert _balance(app, business["id"], february) == balance.Balance(100, 4, False)
    _reserve(app, business["id"], 1, february)
    assert _balance(app, business["id"], february) == balance.Balance(99, 4, False)


def test_purchased_texts_never_expire(app, make_business):
    business = make_business(plan="starter")
    _add(app, business["id"], 7)
    a_year_later = datetime(2028, 1, 20, tzinfo=UTC)
    assert _balance(app, business["id"], a_year_later).purchased_left == 7


def test_an_unlimited_plan_is_never_refused_or_charged(app, make_business):
    business = make_business(plan="unlimited")
    charge = _reserve(app, business["id"], 5000)
    assert charge.unlimited and charge.source_of(0) is None
    assert _balance(app, business["id"]).unlimited
    assert _balance(app, business["id"]).total is None


@pytest.mark.parametrize(("threads", "each", "left", "winners"), [(2, 3, 5, 1), (8, 1, 5, 5)])
def test_concurrent_sends_never_take_the_balance_below_zero(
    app, make_business, threads, each, left, winners
):
    business = make_business(plan="starter")
    _reserve(app, business["id"], 100 - left)
    start = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        with app.app_context():
            start.wait()
            try:
                balance.reserve(business["id"], each, JAN)
                db.session.commit()
                result = "sent"
            except ServiceError:
                result = "refused"
            finally:
                db.session.remove()
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(outcomes).count("sent") == winners
    assert len(outcomes) == threads
    assert _balance(app, business["id"]).total == left - winners * each


def test_add_texts_command_adds_purchased_texts(app, make_business):
    business = make_business(plan="starter")
    result = app.test_cli_runner().invoke(args=["add-texts", str(business["id"]), "250"])
    assert result.exit_code == 0, result.output
    assert "Added 250 texts" in result.output
    assert _balance(app, business["id"], datetime.now(UTC)).purchased_left == 250


def test_add_texts_command_refuses_nonsense(app, make_business):
    business = make_business(plan="starter")
    result = app.test_cli_runner().invoke(args=["add-texts", str(business["id"]), "0"])
    assert result.exit_code != 0
    assert _balance(app, business["id"]).purchased_left == 0


def test_settings_shows_the_balance(app, actions, make_business):
    business = make_business(plan="starter")
    _add(app, business["id"], 12, datetime.now(UTC))
    actions.sign_in(business["owner"][1])
    text = page_text(actions.client.get("/settings"))
    assert "112 texts left: 100 of this month's allowance, 12 purchased" in text


def test_settings_says_unlimited_on_an_unlimited_plan(app, actions, make_business):
    business = make_business(plan="unlimited")
    actions.sign_in(business["owner"][1])
    assert "Unlimited texts" in page_text(actions.client.get("/settings"))
