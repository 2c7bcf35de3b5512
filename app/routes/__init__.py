"""One blueprint per area of the app.

Every `<int:…>` in a route is an id (of a client, a message, a notification, …), so `int` is
replaced, for every route, by a converter that accepts only numbers an id column can hold
(`app.models.types.MAX_ROW_ID`): a 23-digit id matches no route and answers 404, as a missing
row does, instead of reaching the database, which refuses it with an error (a 500). A route
added later is covered without anyone remembering (tests/test_tenant_isolation.py checks
every route of the URL map).
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from app.models.types import MAX_ROW_ID


def numbers_up_to(limit: int) -> str:
    """A regular expression for the numbers 1 to `limit`, written without leading zeros.

    The range is in the pattern, not checked after matching: Werkzeug answers a number that
    matched a route's pattern but that its converter then refused with 405 (Method Not
    Allowed) when the same path has a route for another method, instead of 404."""
    digits = str(limit)
    options = [rf"[1-9]\d{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []  # fewer digits
    for i, digit in enumerate(digits):  # as many: the same first digits, then a smaller one
        low, high, rest = (1 if i == 0 else 0), int(digit) - 1, len(digits) - i - 1
        if high >= low:
            span = str(low) if low == high else f"[{low}-{high}]"
            options.append(digits[:i] + span + (rf"\d{{{rest}}}" if rest else ""))
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


class RowIdConverter(IntegerConverter):
    """`<int:…>`: 1 to MAX_ROW_ID, as an id column holds them; anything else matches no route."""

    regex = numbers_up_to(MAX_ROW_ID)

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = 1,
        max: int | None = MAX_ROW_ID,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_blueprints(app: Flask) -> None:
    from app.routes import (
        appointments,
        auth,
        clients,
        dev,
        errors,
        events,
        messages,
        notifications,
        profile,
        push,
        settings,
        shell,
        team,
        webhooks,
    )

    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    app.register_blueprint(auth.bp)
    app.register_blueprint(shell.bp)
    app.register_blueprint(team.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(clients.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(push.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(appointments.bp)
    if not app.config.get("MAIL_SERVER") and (app.config["SANDBOX"] or app.testing):
        app.register_blueprint(dev.bp)  # captured emails, readable in the demo only
    errors.register(app)
