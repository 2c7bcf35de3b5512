"""Helpers for the two-way texting tests: the app pointed at the sandbox, a business whose
info is complete enough for the carriers' verification."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.extensions import db
from app.models import Business
from sandbox import SandboxServer

COMPLETE_INFO: dict[str, str] = {
    "street_address": "12 Main Street",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "website": "https://brightsmile.example.com",
    "contact_name": "Dana Owner",
    "contact_email": "dana@brightsmile.example.com",
    "contact_phone": "+15550101234",
}


def use_sandbox(app: Flask, sandbox: SandboxServer, *, probe_webhooks: bool = False) -> None:
    """Points the app's gateway at the sandbox. Vonage probes a number's inbound URL with a GET;
    in tests PUBLIC_URL is not served, so the probe is off unless a test wants it."""
    app.config.update(
        VONAGE_API_KEY="sandbox-key",
        VONAGE_API_SECRET="sandbox-secret",
        VONAGE_SIGNATURE_SECRET="sandbox-signature-secret",
        VONAGE_SIGNATURE_METHOD="sha256",
        VONAGE_REST_HOST=sandbox.host_port,
        VONAGE_API_HOST=sandbox.host_port,
        VONAGE_PLAIN_HTTP=True,
        VONAGE_TIMEOUT=5.0,
    )
    sandbox.configure(probe_webhooks=probe_webhooks)


def complete_business_info(app: Flask, business_id: int, **changes: Any) -> None:
    """Fills in what the verification needs (address, website, contact)."""
    with app.app_context():
        business = db.session.get(Business, business_id)
        for name, value in {**COMPLETE_INFO, **changes}.items():
            setattr(business, name, value)
        db.session.commit()


def bought_numbers(sandbox: SandboxServer) -> list[str]:
    """The numbers the Vonage account rents besides the system numbers ("+1…")."""
    owned = sandbox.snapshot()["numbers"]["owned"]
    return sorted("+" + n["msisdn"] for n in owned if not n["system"])
