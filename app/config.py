"""Configuration: defaults, then environment variables, then a test override.

Every setting the app reads is listed in `ENVIRONMENT` so the README's table and the code
cannot drift apart (a test checks that the README names each one).

Production fails closed. The secrets have no usable default: without `SANDBOX=1` the app
refuses to start (`refuse_unsafe_production`, one error naming every offending variable) while
`SECRET_KEY`, `VONAGE_API_KEY`, `VONAGE_API_SECRET` or `VONAGE_SIGNATURE_SECRET` is unset or
still the sandbox's public value, or while `VONAGE_PLAIN_HTTP` is on (plain HTTP is only for
the local sandbox). A forgotten signature secret would otherwise let anyone sign webhooks with
the published `sandbox-signature-secret` and inject texts, leads or STOPs. Only `SANDBOX`
exempts (from the environment or the test override; tests run against the sandbox and say
so): `TESTING` does not, and in the sandbox unset values take the sandbox's (`SANDBOX_VALUES`,
and a development `SECRET_KEY` kept in instance/secret_key).

The session and "keep me signed in" cookies are `Secure` whenever `PUBLIC_URL` is https
(`cookie_flags`), so they never travel over plain HTTP to a deployment reached over TLS.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# name -> (default, what it is for). The default is a string as it would come from the
# environment, or None when unset means "use the embedded development stand-in".
ENVIRONMENT: dict[str, tuple[str | None, str]] = {
    "SECRET_KEY": (
        None,
        "Signs sessions, CSRF tokens and email links: a long random value. Required without "
        "SANDBOX=1; with it, unset means a key generated once in instance/secret_key.",
    ),
    "DATABASE_URL": (
        None,
        "SQLAlchemy URL, e.g. postgresql+psycopg://user@host/twoway. "
        "Unset: SQLite file instance/twoway.db.",
    ),
    "REDIS_URL": (
        None,
        "Redis for jobs and live events, e.g. redis://127.0.0.1:6379/0. "
        "Unset: in-process Redis stand-in and an in-process worker.",
    ),
    "PUBLIC_URL": (
        "http://127.0.0.1:5000",
        "The address clients and Vonage reach this app at; used for email links and webhook "
        "URLs. When it is https, the session and sign-in cookies are sent over https only.",
    ),
    "VONAGE_API_KEY": (
        None,
        "Vonage API key. Required without SANDBOX=1; with it, unset means the sandbox's "
        "sandbox-key.",
    ),
    "VONAGE_API_SECRET": (
        None,
        "Vonage API secret. Required without SANDBOX=1; with it, unset means the sandbox's "
        "sandbox-secret.",
    ),
    "VONAGE_SIGNATURE_SECRET": (
        None,
        "Vonage signature secret; webhooks without a valid signature are refused. Required "
        "without SANDBOX=1; with it, unset means the sandbox's sandbox-signature-secret.",
    ),
    "VONAGE_SIGNATURE_METHOD": (
        "sha256",
        "md5, sha1, sha256 or sha512 (HMAC), or md5hash (Vonage's older plain MD5 method).",
    ),
    "VONAGE_REST_HOST": ("rest.nexmo.com", "Host of Vonage's REST API (SMS, Numbers)."),
    "VONAGE_API_HOST": ("api.nexmo.com", "Host of Vonage's API (toll-free verification)."),
    "VONAGE_TIMEOUT": ("10", "Seconds before a call to Vonage gives up."),
    "VONAGE_WEBHOOK_MAX_AGE": ("300", "Seconds a signed webhook's timestamp may differ from now."),
    "VONAGE_SMS_PER_SECOND": (
        "30",
        "SMS API requests a second the Vonage account allows; every worker together stays "
        "within it.",
    ),
    "VONAGE_PLAIN_HTTP": (
        "0",
        "1 only for the local sandbox: talk plain HTTP to the hosts above. Refused without "
        "SANDBOX=1.",
    ),
    "SANDBOX": (
        "0",
        "1 in the demo and the tests: the Vonage sandbox runs beside the app, its public "
        "credentials and plain HTTP are allowed, and development pages (captured email at "
        "/dev/mail) are on. Never in production: without it the app refuses to start while a "
        "secret is unset or a sandbox value.",
    ),
    "MAIL_SERVER": (
        None,
        "SMTP host. Unset: emails are captured in instance/mail (shown at /dev/mail in the demo).",
    ),
    "MAIL_PORT": ("587", "SMTP port."),
    "MAIL_USERNAME": (None, "SMTP user name."),
    "MAIL_PASSWORD": (None, "SMTP password."),
    "MAIL_USE_TLS": ("1", "1 to use STARTTLS."),
    "MAIL_FROM": ("Twoway <no-reply@twoway.local>", "Sender of account emails."),
    "TRANSACTIONAL_SYSTEM_NUMBER": (
        "+18885550000",
        "Shared system number that sends transactional texts (confirmations, reminders) for "
        "businesses without a verified dedicated number. Must be a number of the Vonage account.",
    ),
    "MARKETING_SYSTEM_NUMBER": (
        "+18885550001",
        "Shared system number that sends every marketing text. Must be a number of the Vonage "
        "account.",
    ),
    "VERIFICATION_POLL_SECONDS": (
        "3600",
        "Seconds between checks of pending toll-free verifications with Vonage.",
    ),
    "SSE_HEARTBEAT_SECONDS": ("15", "Seconds between heartbeats on an open event stream."),
    "EVENTS_RETAINED": ("1000", "Events kept per business for replay after a reconnect."),
    "SIGNIN_FREE_FAILURES": (
        "5",
        "Failed sign-ins for one email (four times as many from one address) before each next "
        "try must wait: 2 s, then twice as long each time, up to SIGNIN_MAX_DELAY_SECONDS.",
    ),
    "SIGNIN_MAX_DELAY_SECONDS": (
        "30",
        "Longest wait between sign-in tries after repeated failures; the right password is "
        "accepted on the first try after it.",
    ),
    "TRUSTED_PROXIES": (
        "0",
        "Reverse proxies in front of the app that set X-Forwarded-For and X-Forwarded-Proto; "
        "the client address is read that many hops back. 0: no proxy headers are trusted.",
    ),
    "MAX_CONTENT_LENGTH": ("65536", "Largest request body accepted, in bytes."),
    "VAPID_PRIVATE_KEY": (
        None,
        "Web Push signing key (VAPID, P-256): base64url raw or DER, or PEM text; the public key "
        "browsers subscribe with is derived from it. Unset: push notifications are off (the demo "
        "generates one in instance/vapid_private_key).",
    ),
    "VAPID_SUBJECT": (
        None,
        "Contact push services may use about our pushes, a mailto: or https: URL. "
        "Unset: mailto: the MAIL_FROM address.",
    ),
}

INT_SETTINGS = {
    "VONAGE_SMS_PER_SECOND",
    "VONAGE_WEBHOOK_MAX_AGE",
    "VERIFICATION_POLL_SECONDS",
    "MAIL_PORT",
    "SSE_HEARTBEAT_SECONDS",
    "EVENTS_RETAINED",
    "SIGNIN_FREE_FAILURES",
    "SIGNIN_MAX_DELAY_SECONDS",
    "TRUSTED_PROXIES",
    "MAX_CONTENT_LENGTH",
}
FLOAT_SETTINGS = {"VONAGE_TIMEOUT"}
# The sandbox's published credentials (sandbox/app.py): what unset means under SANDBOX=1, and
# what production must never run with.
SANDBOX_VALUES = {
    "VONAGE_API_KEY": "sandbox-key",
    "VONAGE_API_SECRET": "sandbox-secret",
    "VONAGE_SIGNATURE_SECRET": "sandbox-signature-secret",
}
REQUIRED_SECRETS = ("SECRET_KEY", *SANDBOX_VALUES)
BOOL_SETTINGS = {"VONAGE_PLAIN_HTTP", "SANDBOX", "MAIL_USE_TLS"}


def _convert(name: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if name in INT_SETTINGS:
        return int(raw)
    if name in FLOAT_SETTINGS:
        return float(raw)
    if name in BOOL_SETTINGS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


def load(instance_path: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> dict:
    """Builds the config mapping from the defaults and the environment."""
    config: dict[str, Any] = {
        name: _convert(name, environ.get(name, default))
        for name, (default, _) in ENVIRONMENT.items()
    }
    database_url = config.pop("DATABASE_URL") or (
        "sqlite:///" + str(Path(instance_path) / "twoway.db")
    )
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver this project installs.
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    config["SQLALCHEMY_DATABASE_URI"] = database_url
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    config["MAIL_CAPTURE_DIR"] = str(Path(instance_path) / "mail")
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    config["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    config["WTF_CSRF_TIME_LIMIT"] = None  # tokens live as long as the session
    return config


class UnsafeConfigurationError(RuntimeError):
    """Production settings that would leave the app open: it refuses to start."""


def _is_unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def unsafe_production_settings(config: dict[str, Any]) -> dict[str, str]:
    """What is wrong with these settings for production, by variable name (empty: nothing).
    Under SANDBOX nothing is: the demo and the tests run on the sandbox's public values."""
    if config.get("SANDBOX"):
        return {}
    problems: dict[str, str] = {}
    for name in REQUIRED_SECRETS:
        value = config.get(name)
        if _is_unset(value):
            problems[name] = "unset"
        elif value == SANDBOX_VALUES.get(name):
            problems[name] = f"still the sandbox's public value {value!r}"
    if config.get("VONAGE_PLAIN_HTTP"):
        problems["VONAGE_PLAIN_HTTP"] = "on: plain HTTP to Vonage is only for the local sandbox"
    return problems


def refuse_unsafe_production(config: dict[str, Any]) -> None:
    """Raises `UnsafeConfigurationError` naming every unsafe setting at once, so an operator
    fixes them in one go rather than one restart each."""
    problems = unsafe_production_settings(config)
    if problems:
        lines = "\n".join(f"  {name}: {problem}" for name, problem in problems.items())
        raise UnsafeConfigurationError(
            "Twoway will not start: without SANDBOX=1 these settings must be set to your own "
            f"values (see README.md, Production):\n{lines}"
        )


def apply_sandbox_values(config: dict[str, Any], instance_path: str) -> None:
    """Under SANDBOX, unset secrets take the sandbox's values and a development key."""
    if not config.get("SANDBOX"):
        return
    for name, value in SANDBOX_VALUES.items():
        if _is_unset(config.get(name)):
            config[name] = value
    if _is_unset(config.get("SECRET_KEY")):
        config["SECRET_KEY"] = _development_secret_key(Path(instance_path))


def _development_secret_key(instance: Path) -> str:
    """A random key kept in the instance folder, so development sessions survive restarts."""
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def cookie_flags(public_url: str) -> dict[str, bool]:
    """`Secure` session and remember cookies whenever the app is reached over https."""
    secure = urlsplit(public_url or "").scheme == "https"
    return {"SESSION_COOKIE_SECURE": secure, "REMEMBER_COOKIE_SECURE": secure}
