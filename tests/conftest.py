"""Fixtures shared by the whole suite.

The database and Redis are real when the environment names them (CI runs the suite once on
PostgreSQL and real Redis, once on SQLite and the in-process stand-in):
  TEST_DATABASE_URL  e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test
  TEST_REDIS_URL     e.g. redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from app import create_app
from app.extensions import db
from app.inprocess_worker import run_pending_jobs
from app.models import Business, User
from tests.sandbox_fixtures import *  # noqa: F403  (sandbox, gateway, webhook_catcher, ...)

PASSWORD = "correct-horse-battery"
PASSWORD_HASH = generate_password_hash(PASSWORD)  # hashing is slow on purpose: do it once
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"database: {TEST_DATABASE_URL or 'SQLite (temporary file)'}",
        f"redis: {TEST_REDIS_URL or 'in-process stand-in (fakeredis)'}",
    ]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database built by the migrations once per run (tables are made by migrations only)."""
    url = TEST_DATABASE_URL or "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")
    app = create_app(
        {"TESTING": True, "SANDBOX": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url}
    )
    with app.app_context():
        from flask_migrate import upgrade
        from sqlalchemy import text

        if TEST_DATABASE_URL:  # start from an empty schema on a reused server database
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    yield url


def _empty_every_table() -> None:
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    config = {
        "TESTING": True,
        "SANDBOX": True,  # the suite runs on the Vonage sandbox and its public credentials
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "MAIL_SERVER": None,
        "MAIL_CAPTURE_DIR": str(tmp_path / "mail"),
        "PUBLIC_URL": "http://twoway.test",
    }
    app = create_app(config)
    if TEST_REDIS_URL:
        app.extensions["twoway.redis"].flushdb()
    yield app
    with app.app_context():
        db.session.remove()
        _empty_every_table()
        db.engine.dispose()
    if TEST_REDIS_URL:
        app.extensions["twoway.redis"].flushdb()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


class Actions:
    """What a person does in the browser, through the test client (CSRF tokens included)."""

    def __init__(self, app: Flask, client: FlaskClient):
        self.app = app
        self.client = client

    def csrf_token(self) -> str:
        page = self.client.get("/sign-in" if not self._signed_in() else "/settings")
        return csrf_token_from(page.get_data(as_text=True))

    def _signed_in(self) -> bool:
        with self.client.session_transaction() as session:
            return "_user_id" in session

    def post(self, url: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token())
        return self.client.post(url, data=data, **kwargs)

    def sign_in(self, email: str, password: str = PASSWORD):
        return self.post("/sign-in", {"email": email, "password": password})

    def sign_out(self):
        return self.post("/sign-out")


def sign_in_without_password(
    app: Flask, client: FlaskClient, user_id: int, *, remembered: bool = False
) -> str:
    """Signs `client` in as a sign-in does (a new signed-in session, its token in the session
    cookie), without the (slow on purpose) password check; returns the session's token."""
    from app.services import sessions

    with app.app_context():
        user = db.session.get(User, user_id)
        token = sessions.start(user, remembered=remembered, user_agent="pytest")
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True
    return token


@pytest.fixture
def actions(app: Flask, client: FlaskClient) -> Actions:
    return Actions(app, client)


@pytest.fixture
def make_business(app: Flask):
    """Creates a business with its owner (and optional extra staff); returns their ids."""
    counter = iter(range(1, 10_000))

    def make(
        name: str | None = None,
        *,
        plan: str = "growth",
        country: str = "US",
        time_zone: str = "America/New_York",
        staff: tuple[str, ...] = (),
    ) -> dict:
        n = next(counter)
        with app.app_context():
            business = Business(
                name=name or f"Business {n}", country=country, time_zone=time_zone, plan=plan
            )
            owner = User(
                business=business,
                email=f"owner{n}@example.com",
                name=f"Owner {n}",
                role="owner",
                password_hash=PASSWORD_HASH,
            )
            people = {"owner": owner}
            for role in staff:
                people[role] = User(
                    business=business,
                    email=f"{role}{n}@example.com",
                    name=f"{role.title()} {n}",
                    role=role,
                    password_hash=PASSWORD_HASH,
                )
            db.session.add_all([business, *people.values()])
            db.session.commit()
            return {"id": business.id, **{role: (u.id, u.email) for role, u in people.items()}}

    return make


@pytest.fixture
def run_jobs(app: Flask):
    """Runs every queued (and due scheduled) job now, in this thread."""
    return lambda: run_pending_jobs(app)


@pytest.fixture
def mailbox(app: Flask):
    """The emails the app has delivered (captured), oldest first."""

    def read() -> list:
        folder = Path(app.config["MAIL_CAPTURE_DIR"])
        files = sorted(folder.glob("*.eml"), key=lambda f: f.stat().st_mtime_ns)
        return [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]

    return read


def page_text(response) -> str:
    """A response's body with HTML entities decoded, for assertions on what a person reads."""
    return html.unescape(response.get_data(as_text=True))
