"""Accounts: sign-up, sign-in, password reset, staff invitations and roles."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_request_context, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Business, Invitation, User
from app.models.types import utcnow
from app.plans import PLANS
from app.services import mail, signin_guard
from app.services.errors import ServiceError
from app.services.places import COUNTRIES, is_time_zone
from app.services.text_input import single_line

MIN_PASSWORD_LENGTH = 10
RESET_TOKEN_MAX_AGE = timedelta(hours=1)
INVITATION_LIFETIME = timedelta(days=7)
INVITABLE_ROLES = ("admin", "staff")


def normalise_email(email: str) -> str:
    """The email in the form it is stored: validated, lower-case. Raises ServiceError."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ServiceError(f"That email address is not valid: {error}", field="email") from None
    return result.normalized.lower()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )


def _check_name(name: str, field: str, what: str) -> str:
    name = single_line(name)  # no control characters or bidirectional overrides
    if not name:
        raise ServiceError(f"Enter {what}.", field=field)
    if len(name) > 120:
        raise ServiceError(f"{what.capitalize()} can be at most 120 characters.", field=field)
    return name


def _email_taken(email: str) -> bool:
    return db.session.execute(db.select(User.id).filter_by(email=email)).first() is not None


def sign_up(
    *,
    business_name: str,
    country: str,
    time_zone: str,
    plan: str,
    owner_name: str,
    email: str,
    password: str,
) -> User:
    """Creates a business and its owner, and returns the owner."""
    business_name = _check_name(business_name, "business_name", "the business's name")
    owner_name = _check_name(owner_name, "name", "your name")
    if country not in COUNTRIES:
        raise ServiceError("Choose the country your business is in.", field="country")
    if not is_time_zone(time_zone):
        raise ServiceError("Choose your business's time zone.", field="time_zone")
    if plan not in PLANS:
        raise ServiceError("Choose a plan.", field="plan")
    email = normalise_email(email)
    _check_password(password)
    if _email_taken(email):
        raise ServiceError(
            "An account with that email already exists. Sign in instead.", field="email"
        )
    business = Business(name=business_name, country=country, time_zone=time_zone, plan=plan)
    owner = User(
        business=business,
        email=email,
        name=owner_name,
        role="owner",
        password_hash=generate_password_hash(password),
    )
    db.session.add_all([business, owner])
    try:
        db.session.commit()
    except IntegrityError:  # the same email signed up at the same moment
        db.session.rollback()
        raise ServiceError(
            "An account with that email already exists. Sign in instead.", field="email"
        ) from None
    return owner


def authenticate(email: str, password: str, remote_addr: str) -> User:
    """The active user with this email and password. Raises ServiceError, and refuses for a
    while after repeated failures (per email and per address) even with the right password."""
    email = email.strip().lower()
    signin_guard.check_allowed(email, remote_addr)
    user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none()
    if user is None or not check_password_hash(user.password_hash, password):
        signin_guard.record_failure(email, remote_addr)
        raise ServiceError("That email and password don't match an account.")
    if not user.is_active:
        raise ServiceError("This account has been removed from its business.")
    signin_guard.record_success(email, remote_addr)
    return user


# Password reset ---------------------------------------------------------------------------


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _password_fingerprint(user: User) -> str:
    # Ties a reset link to the current password, so a used link stops working.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def request_password_reset(email: str) -> None:
    """Emails a reset link if an account has this email; says nothing either way."""
    try:
        email = normalise_email(email)
    except ServiceError:
        return
    user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none()
    if user is None or not user.is_active:
        return
    token = _reset_serializer().dumps({"user": user.id, "pw": _password_fingerprint(user)})
    link = public_url("auth.reset_password", token=token)
    mail.send_email(
        to=user.email,
        subject="Reset your Twoway password",
        body=(
            f"Hello {user.name},\n\nSomeone (hopefully you) asked to reset your Twoway password."
            f"\nChoose a new one here within the hour:\n\n{link}\n\n"
            "If it wasn't you, ignore this email: your password stays as it is.\n"
        ),
    )


def user_for_reset_token(token: str) -> User:
    """The user a reset link is for. Raises ServiceError when it is expired, used or forged."""
    try:
        data = _reset_serializer().loads(token, max_age=int(RESET_TOKEN_MAX_AGE.total_seconds()))
    except SignatureExpired:
        raise ServiceError("That reset link has expired. Ask for a new one.") from None
    except BadSignature:
        raise ServiceError("That reset link is not valid. Ask for a new one.") from None
    user = db.session.get(User, data.get("user"))
    if user is None or not user.is_active or data.get("pw") != _password_fingerprint(user):
        raise ServiceError("That reset link has already been used. Ask for a new one.")
    return user


def reset_password(token: str, new_password: str) -> User:
    """Sets a new password through a reset link (which then stops working)."""
    user = user_for_reset_token(token)
    _check_password(new_password)
    user.password_hash = generate_password_hash(new_password)
    db.session.commit()
    signin_guard.clear(user.email)
    return user


# Staff: invitations and roles -------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _require_settings_role(actor: User) -> None:
    if not actor.can_change_settings:
        raise PermissionError("Only the owner or an admin can manage staff.")


def invite_staff(actor: User, email: str, role: str) -> Invitation:
    """Invites someone to the actor's business by an emailed link."""
    _require_settings_role(actor)
    email = normalise_email(email)
    if role not in INVITABLE_ROLES:
        raise ServiceError("Choose admin or staff.", field="role")
    if _email_taken(email):
        raise ServiceError("Someone with that email already has a Twoway account.", field="email")
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        business_id=actor.business_id,
        email=email,
        role=role,
        token_hash=_token_hash(token),
        invited_by_id=actor.id,
        expires_at=utcnow() + INVITATION_LIFETIME,
    )
    db.session.add(invitation)
    db.session.commit()
    link = public_url("auth.accept_invitation", token=token)
    mail.send_email(
        to=email,
        subject=f"{actor.name} invited you to {actor.business.name} on Twoway",
        body=(
            f"Hello,\n\n{actor.name} invited you to join {actor.business.name} on Twoway as "
            f"{role}, to text clients and answer them from a shared inbox.\n\n"
            f"Accept within 7 days:\n\n{link}\n"
        ),
    )
    return invitation


def invitation_for_token(token: str) -> Invitation:
    """The open invitation a link is for. Raises ServiceError when used, revoked or expired."""
    invitation = db.session.execute(
        db.select(Invitation).filter_by(token_hash=_token_hash(token))
    ).scalar_one_or_none()
    if invitation is None or invitation.revoked_at is not None:
        raise ServiceError("That invitation is not valid. Ask for a new one.")
    if invitation.accepted_at is not None:
        raise ServiceError("That invitation has already been accepted. Sign in instead.")
    if invitation.expires_at < utcnow():
        raise ServiceError("That invitation has expired. Ask for a new one.")
    return invitation


def accept_invitation(token: str, *, name: str, password: str) -> User:
    """Creates the invited staff member's account and returns it."""
    invitation = invitation_for_token(token)
    name = _check_name(name, "name", "your name")
    _check_password(password)
    if _email_taken(invitation.email):
        raise ServiceError("Someone with that email already has a Twoway account.")
    user = User(
        business_id=invitation.business_id,
        email=invitation.email,
        name=name,
        role=invitation.role,
        password_hash=generate_password_hash(password),
    )
    invitation.accepted_at = utcnow()
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ServiceError("Someone with that email already has a Twoway account.") from None
    return user


def revoke_invitation(actor: User, invitation: Invitation) -> None:
    """Stops an invitation's link from working."""
    _require_settings_role(actor)
    invitation.revoked_at = utcnow()
    db.session.commit()


def change_role(actor: User, member: User, role: str) -> None:
    """Makes a staff member an admin or staff. The owner's role never changes."""
    _require_settings_role(actor)
    if member.role == "owner":
        raise ServiceError("The owner's role can't be changed.")
    if role not in INVITABLE_ROLES:
        raise ServiceError("Choose admin or staff.", field="role")
    member.role = role
    db.session.commit()


def remove_staff(actor: User, member: User) -> None:
    """Removes a staff member's access (their past messages keep their name)."""
    _require_settings_role(actor)
    if member.role == "owner":
        raise ServiceError("The owner can't be removed.")
    if member.id == actor.id:
        raise ServiceError("You can't remove yourself.")
    member.deactivated_at = utcnow()
    db.session.commit()


def public_url(endpoint: str, **values: object) -> str:
    """An absolute link to this app for emails, built on PUBLIC_URL (works in jobs too)."""
    if has_request_context():
        path = url_for(endpoint, **values)
    else:
        with current_app.test_request_context():
            path = url_for(endpoint, **values)
    return current_app.config["PUBLIC_URL"].rstrip("/") + path
