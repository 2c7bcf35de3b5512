"""Repeated failed sign-ins slow a guesser down without locking the owner out, counted by the
client's address as the configured trusted proxies report it (never a raw header)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from app import create_app
from app.extensions import db
from app.routes import auth as auth_routes
from app.services import accounts
from app.services.errors import ServiceError
from app.services.signin_guard import SignInPaused
from tests.conftest import PASSWORD, Actions, page_text

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ATTACKER = "198.51.100.66"
OWNER_ADDRESS = "203.0.113.10"


def _try(app: Flask, email: str, password: str, address: str, at: float) -> object:
    """One sign-in try `at` seconds after START: "signed in", "refused", or the seconds the
    answer says to wait."""
    with app.app_context():
        try:
            accounts.authenticate(email, password, address, now=START + timedelta(seconds=at))
        except SignInPaused as paused:
            return paused.retry_after
        except ServiceError:
            return "refused"
        finally:
            db.session.remove()
    return "signed in"


@pytest.fixture
def few_free_failures(app: Flask) -> int:
    """Two free failures per email (eight per address), so the tests need few slow hashes."""
    app.config["SIGNIN_FREE_FAILURES"] = 2
    app.config["SIGNIN_MAX_DELAY_SECONDS"] = 30
    return 2


def test_each_failure_after_the_free_ones_doubles_the_wait_up_to_the_longest(
    app, make_business, few_free_failures
):
    email = make_business()["owner"][1]
    assert [_try(app, email, "guess", ATTACKER, 0) for _ in range(2)] == ["refused"] * 2

    waits = []
    at = 0
    for _ in range(6):
        wait = _try(app, email, "guess", ATTACKER, at)
        waits.append(wait)
        at += wait
        assert _try(app, email, "guess", ATTACKER, at) == "refused"

    assert waits == [2, 4, 8, 16, 30, 30]


def test_the_owners_right_password_is_accepted_after_the_wait_while_an_attacker_keeps_failing(
    app, make_business, few_free_failures
):
    email = make_business()["owner"][1]
    for second in range(120):  # the attacker tries every second for two minutes
        _try(app, email, "guess", ATTACKER, second)

    wait = _try(app, email, PASSWORD, OWNER_ADDRESS, 120)
    assert 0 < wait <= 30
    for second in range(120, 120 + wait):  # the attacker keeps trying during the wait
        _try(app, email, "guess", ATTACKER, second + 0.5)

    assert _try(app, email, PASSWORD, OWNER_ADDRESS, 120 + wait) == "signed in"


def test_a_try_during_the_wait_is_refused_without_checking_the_password(
    app, make_business, few_free_failures
):
    email = make_business()["owner"][1]
    _try(app, email, "guess", ATTACKER, 0)
    _try(app, email, "guess", ATTACKER, 0)

    with app.app_context():
        with pytest.raises(SignInPaused) as right:
            accounts.authenticate(email, PASSWORD, OWNER_ADDRESS, START + timedelta(seconds=1))
        with pytest.raises(SignInPaused) as wrong:
            accounts.authenticate(email, "guess", OWNER_ADDRESS, START + timedelta(seconds=1))

    assert right.value.retry_after == 1
    assert right.value.message == wrong.value.message  # the answer tells nothing


def test_tries_during_the_wait_are_not_counted(app, make_business, few_free_failures):
    email = make_business()["owner"][1]
    _try(app, email, "guess", ATTACKER, 0)
    _try(app, email, "guess", ATTACKER, 0)
    for tenth in range(1, 20):
        assert _try(app, email, "guess", ATTACKER, tenth / 10) != "refused"

    assert _try(app, email, "guess", ATTACKER, 2) == "refused"
    assert _try(app, email, "guess", ATTACKER, 2) == 4  # the next wait, not a longer one


def test_another_address_signing_in_to_another_email_is_not_slowed(
    app, make_business, few_free_failures
):
    attacked = make_business()["owner"][1]
    other = make_business()["owner"][1]
    for second in range(10):
        _try(app, attacked, "guess", ATTACKER, second)
    assert isinstance(_try(app, attacked, "guess", ATTACKER, 10), int)

    assert _try(app, other, "mistyped", OWNER_ADDRESS, 10) == "refused"
    assert _try(app, other, PASSWORD, OWNER_ADDRESS, 10) == "signed in"


# Through the sign-in page, on a clock the test moves ---------------------------------------


@pytest.fixture
def clock(monkeypatch) -> list[datetime]:
    """The time the sign-in page reads: clock[0], moved by the test."""
    now = [START]
    monkeypatch.setattr(auth_routes, "utcnow", lambda: now[0])
    return now


def test_a_sign_in_during_the_wait_answers_429_with_how_long_to_wait(
    app, actions, make_business, clock, few_free_failures
):
    email = make_business()["owner"][1]
    for _ in range(2):
        assert actions.sign_in(email, "guess").status_code == 401

    response = actions.sign_in(email, PASSWORD)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert "Try again in 2 seconds" in page_text(response)
    assert actions.client.get("/inbox").status_code == 302


def _proxied_app(app: Flask, proxies: int) -> Flask:
    """An app like the test's own (same database and Redis), behind `proxies` proxies."""
    names = (
        "TESTING",
        "SANDBOX",
        "SECRET_KEY",
        "SQLALCHEMY_DATABASE_URI",
        "REDIS_URL",
        "PUBLIC_URL",
    )
    config = {name: app.config[name] for name in names}
    config.update(
        MAIL_SERVER=None,
        MAIL_CAPTURE_DIR=app.config["MAIL_CAPTURE_DIR"],
        TRUSTED_PROXIES=proxies,
        SIGNIN_FREE_FAILURES=1,  # four per address
        FAKE_REDIS_SERVER=None,
    )
    return create_app(config)


@pytest.fixture
def proxied(app: Flask) -> Iterator:
    made = []

    def make(proxies: int) -> Flask:
        made.append(_proxied_app(app, proxies))
        return made[-1]

    yield make
    for proxied_app in made:
        with proxied_app.app_context():
            db.session.remove()
            db.engine.dispose()


def _sign_in_from(browser: Actions, email: str, remote_addr: str, forwarded_for: str | None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return browser.post(
        "/sign-in",
        {"email": email, "password": "guess"},
        headers=headers,
        environ_base={"REMOTE_ADDR": remote_addr},
    )


def test_without_trusted_proxies_x_forwarded_for_does_not_change_the_counted_address(
    proxied, clock
):
    proxied_app = proxied(0)
    browser = Actions(proxied_app, proxied_app.test_client())
    for n in range(4):  # four emails, each from a "different" forwarded address
        response = _sign_in_from(browser, f"person{n}@example.com", ATTACKER, f"192.0.2.{n}")
        assert response.status_code == 401

    response = _sign_in_from(browser, "person9@example.com", ATTACKER, "192.0.2.99")

    assert response.status_code == 429


def test_behind_one_trusted_proxy_the_last_forwarded_hop_is_the_counted_address(proxied, clock):
    proxied_app = proxied(1)
    browser = Actions(proxied_app, proxied_app.test_client())
    proxy = "10.0.0.2"
    for n in range(4):  # the client forged a different first hop each time
        forwarded = f"192.0.2.{n}, {ATTACKER}"
        response = _sign_in_from(browser, f"person{n}@example.com", proxy, forwarded)
        assert response.status_code == 401

    slowed = _sign_in_from(browser, "person8@example.com", proxy, f"192.0.2.88, {ATTACKER}")
    another_client = _sign_in_from(browser, "person9@example.com", proxy, OWNER_ADDRESS)

    assert slowed.status_code == 429
    assert another_client.status_code == 401
