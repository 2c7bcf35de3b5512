"""Command-line commands (`flask --app wsgi seed-demo`)."""

from __future__ import annotations

import click
from flask import Flask
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import Business, User

DEMO_EMAIL = "owner@demo.twoway.local"
DEMO_PASSWORD = "demo-password"


def seed_demo_business() -> User:
    """Creates the demo business and its owner once; returns the owner."""
    owner = db.session.execute(db.select(User).filter_by(email=DEMO_EMAIL)).scalar_one_or_none()
    if owner is not None:
        return owner
    business = Business(
        name="Bright Smile Dental",
        country="US",
        time_zone="America/New_York",
        plan="growth",
        # Complete business info, so two-way texting can be turned on straight away.
        street_address="120 Main Street",
        city="Springfield",
        region="IL",
        postal_code="62701",
        website="https://brightsmile.example.com",
        contact_name="Dana Owner",
        contact_email=DEMO_EMAIL,
        contact_phone="+15550100100",
    )
    owner = User(
        business=business,
        email=DEMO_EMAIL,
        name="Dana Owner",
        role="owner",
        password_hash=generate_password_hash(DEMO_PASSWORD),
    )
    db.session.add_all([business, owner])
    db.session.commit()
    return owner


def register_cli(app: Flask) -> None:
    @app.cli.command("add-texts")
    @click.argument("business_id", type=int)
    @click.argument("count", type=int)
    def add_texts(business_id: int, count: int) -> None:
        """Add COUNT purchased texts (they never expire) to business BUSINESS_ID."""
        from app.models.types import utcnow
        from app.services.balance import add_purchased
        from app.services.errors import ServiceError

        try:
            balance = add_purchased(
                business_id, count, utcnow(), note="added from the command line"
            )
        except ServiceError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Added {count} texts to business {business_id}. {balance.summary}.")

    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Create the demo business (idempotent)."""
        seed_demo_business()
        click.echo(f"Demo business ready: sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
