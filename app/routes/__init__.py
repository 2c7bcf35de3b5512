"""One blueprint per area of the app."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from app.routes import (
        auth,
        clients,
        dev,
        errors,
        events,
        messages,
        notifications,
        push,
        settings,
        shell,
        team,
        webhooks,
    )

    app.register_blueprint(auth.bp)
    app.register_blueprint(shell.bp)
    app.register_blueprint(team.bp)
    app.register_blueprint(clients.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(push.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(messages.bp)
    if not app.config.get("MAIL_SERVER") and (app.config["SANDBOX"] or app.testing):
        app.register_blueprint(dev.bp)  # captured emails, readable in the demo only
    errors.register(app)
