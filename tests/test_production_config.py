"""Production fails closed: without SANDBOX=1 the app refuses to start on missing secrets or
the sandbox's public values, naming every offending variable at once."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import SANDBOX_VALUES, UnsafeConfigurationError

PRODUCTION_SECRETS = {
    "SECRET_KEY": "a-long-random-production-key-0123456789abcdef",
    "VONAGE_API_KEY": "abcd1234",
    "VONAGE_API_SECRET": "production-api-secret",
    "VONAGE_SIGNATURE_SECRET": "production-signature-secret",
}
CHECKED = (*PRODUCTION_SECRETS, "SANDBOX", "VONAGE_PLAIN_HTTP")


@pytest.fixture
def production_environment(monkeypatch, tmp_path):
    """An environment like a production server's: every secret set, no SANDBOX. Returns a
    function that builds the app from it (with the suite's database file)."""
    for name in CHECKED:
        monkeypatch.delenv(name, raising=False)
    for name, value in PRODUCTION_SECRETS.items():
        monkeypatch.setenv(name, value)
    return lambda: create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})


def refusal(build) -> str:
    with pytest.raises(UnsafeConfigurationError) as refused:
        build()
    return str(refused.value)


@pytest.mark.parametrize("name", list(PRODUCTION_SECRETS))
def test_production_refuses_to_start_when_a_secret_is_unset(
    production_environment, monkeypatch, name
):
    monkeypatch.delenv(name)
    message = refusal(production_environment)
    assert f"{name}: unset" in message
    assert [other for other in PRODUCTION_SECRETS if f"{other}:" in message] == [name]


@pytest.mark.parametrize("name", list(PRODUCTION_SECRETS))
def test_production_refuses_to_start_when_a_secret_is_blank(
    production_environment, monkeypatch, name
):
    monkeypatch.setenv(name, "  ")
    assert f"{name}: unset" in refusal(production_environment)


@pytest.mark.parametrize("name", list(SANDBOX_VALUES))
def test_production_refuses_to_start_on_the_sandboxs_public_credentials(
    production_environment, monkeypatch, name
):
    monkeypatch.setenv(name, SANDBOX_VALUES[name])
    message = refusal(production_environment)
    assert f"{name}: still the sandbox's public value" in message


def test_production_names_every_unsafe_setting_in_one_refusal(production_environment, monkeypatch):
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("VONAGE_SIGNATURE_SECRET", "sandbox-signature-secret")
    monkeypatch.delenv("VONAGE_API_KEY")
    monkeypatch.setenv("VONAGE_PLAIN_HTTP", "1")
    message = refusal(production_environment)
    for name in ("SECRET_KEY", "VONAGE_SIGNATURE_SECRET", "VONAGE_API_KEY", "VONAGE_PLAIN_HTTP"):
        assert f"\n  {name}: " in message
    assert "VONAGE_API_SECRET" not in message


def test_production_refuses_plain_http_to_vonage(production_environment, monkeypatch):
    monkeypatch.setenv("VONAGE_PLAIN_HTTP", "1")
    assert "VONAGE_PLAIN_HTTP: on" in refusal(production_environment)


def test_production_starts_with_every_secret_set(production_environment):
    app = production_environment()
    assert app.config["VONAGE_SIGNATURE_SECRET"] == "production-signature-secret"
    assert app.config["SECRET_KEY"] == PRODUCTION_SECRETS["SECRET_KEY"]


def test_testing_does_not_excuse_production_from_its_secrets(production_environment, monkeypatch):
    monkeypatch.delenv("VONAGE_SIGNATURE_SECRET")
    with pytest.raises(UnsafeConfigurationError, match="VONAGE_SIGNATURE_SECRET: unset"):
        create_app({"TESTING": True})


def test_the_sandbox_starts_on_its_public_defaults(production_environment, monkeypatch):
    for name in PRODUCTION_SECRETS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SANDBOX", "1")
    monkeypatch.setenv("VONAGE_PLAIN_HTTP", "1")
    app = production_environment()
    for name, value in SANDBOX_VALUES.items():
        assert app.config[name] == value
    assert len(app.config["SECRET_KEY"]) == 64  # generated once in the instance folder


def test_the_demo_starts_on_its_own_settings(production_environment, monkeypatch):
    from app.demo import DEMO_DEFAULTS

    for name in PRODUCTION_SECRETS:
        monkeypatch.delenv(name)
    for name, value in DEMO_DEFAULTS.items():
        monkeypatch.setenv(name, value)  # what `python -m app.demo` sets before create_app
    assert production_environment().config["SANDBOX"] is True
