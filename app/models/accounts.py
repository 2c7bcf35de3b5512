"""Businesses, their staff, their signed-in sessions and invitations."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow

ROLES = ("owner", "admin", "staff")
SETTINGS_ROLES = ("owner", "admin")


class Business(db.Model):
    """A salon, clinic or consultancy using Twoway: the tenant every other row belongs to."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    time_zone: Mapped[str] = mapped_column(String(64))  # IANA name
    plan: Mapped[str] = mapped_column(String(32))  # key in app.plans.PLANS
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Business info (Settings → Business info): shown to clients who ask for HELP, and sent to
    # the carriers in the dedicated number's toll-free verification.
    street_address: Mapped[str] = mapped_column(String(200), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100), default="", server_default="")
    region: Mapped[str] = mapped_column(String(100), default="", server_default="")  # state
    postal_code: Mapped[str] = mapped_column(String(20), default="", server_default="")
    website: Mapped[str] = mapped_column(String(254), default="", server_default="")
    contact_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="", server_default="")  # E.164
    # Settings → Auto Client Messages and SMS: a key of app.models.texting.SMS_SETTINGS.
    sms_setting: Mapped[str] = mapped_column(
        String(16), default="do_not_reply", server_default="do_not_reply"
    )

    staff: Mapped[list[User]] = relationship(back_populates="business", order_by="User.id")


class User(UserMixin, db.Model):
    """A staff member of one business: its owner, an admin, or staff."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Their own mobile (E.164), for staff alerts by text (Settings → Profile → Alerts).
    mobile_number: Mapped[str | None] = mapped_column(String(32))

    business: Mapped[Business] = relationship(back_populates="staff")

    # The signed-in session (UserSession) this object was loaded through or signed in with,
    # set by app.services.sessions; None for a user loaded any other way. Not columns.
    session_id = None
    session_token = None

    def get_session_token(self) -> str:
        """What Flask-Login keeps in the session and the remember cookie (the login manager's
        `id_attribute`): the session's token, never the bare user id, so that ending the
        session on the server ends every cookie that carries it."""
        if self.session_token is None:
            raise RuntimeError("sign in through app.services.sessions.start, not login_user alone")
        return self.session_token

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.deactivated_at is None

    @property
    def can_change_settings(self) -> bool:
        return self.role in SETTINGS_ROLES


class UserSession(db.Model):
    """One sign-in of a staff member on one browser: its cookies carry a random token, stored
    here only as a hash. Deleting the row signs that browser out (app.services.sessions)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    remembered: Mapped[bool] = mapped_column(Boolean, default=False)  # "Keep me signed in"

    user: Mapped[User] = relationship()


class Invitation(db.Model):
    """An emailed link that lets a new staff member join a business with a given role."""

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("business.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    business: Mapped[Business] = relationship()
    invited_by: Mapped[User] = relationship()


class PendingSignUp(db.Model):
    """A sign-up waiting for its email to be confirmed. The business and its owner are made
    from it when the emailed link is used, so the sign-up form answers the same whether or not
    the email already has an account. The link's token is stored only as a hash."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))  # stored lower-case
    business_name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))
    time_zone: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str] = mapped_column(String(32))
    owner_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
