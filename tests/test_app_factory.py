"""The factory and its configuration: defaults, then environment, then the test override."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import create_app
from app.config import ENVIRONMENT


@pytest.fixture(autouse=True)
def sandbox_environment(monkeypatch):
    """These apps are built from the environment alone: the sandbox's, as in the demo
    (production's refusal without secrets is tests/test_production_config.py)."""
    monkeypatch.setenv("SANDBOX", "1")


def test_environment_variables_override_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("PUBLIC_URL", "https://texts.example.com")
    monkeypatch.setenv("VONAGE_TIMEOUT", "4.5")
    monkeypatch.setenv("SIGNIN_FREE_FAILURES", "7")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["PUBLIC_URL"] == "https://texts.example.com"
    assert app.config["VONAGE_TIMEOUT"] == 4.5
    assert app.config["SIGNIN_FREE_FAILURES"] == 7


def test_test_config_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://from-env.example.com")
    app = create_app({"PUBLIC_URL": "https://from-test.example.com"})
    assert app.config["PUBLIC_URL"] == "https://from-test.example.com"


def test_postgresql_urls_use_the_psycopg3_driver(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://twoway@db.internal/twoway")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://twoway@db.internal/twoway"
    )


def test_without_database_url_the_app_uses_a_sqlite_file_in_the_instance_folder(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("instance/twoway.db")


def test_without_redis_url_the_app_uses_the_in_process_stand_in(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app()
    connection = app.extensions["twoway.redis"]
    assert type(connection).__module__.startswith("fakeredis")
    connection.set("probe", "1")
    assert connection.get("probe") == b"1"


def test_readme_documents_every_environment_variable():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table_names = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert set(ENVIRONMENT) <= table_names, set(ENVIRONMENT) - table_names


def test_every_response_varies_on_the_htmx_header(client):
    response = client.get("/sign-in")
    assert "HX-Request" in response.headers["Vary"]


def test_pages_tell_htmx_not_to_restore_history_as_a_fragment(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert '"historyRestoreAsHxRequest": false' in page
