"""Every model, importable from one place (Alembic and the app load them all here)."""

from app.models.accounts import ROLES, SETTINGS_ROLES, Business, Invitation, User

__all__ = ["ROLES", "SETTINGS_ROLES", "Business", "Invitation", "User"]
