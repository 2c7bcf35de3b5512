"""Accounts: sign-up, sign-in, password reset and change, staff invitations and roles.

A new password (changed on the profile page, or set through a reset link) ends every other
signed-in session of its staff member, and a reset ends them all, with every "Keep me signed in"
cookie: whoever knew the old password or held a copied cookie is signed out. Removing a staff
member ends all their sessions; a role change reloads their open pages with the new rights
(app.services.sessions).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_request_context, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Business, Invitation, PendingSignUp, User
from app.models.types import utcnow
from app.plans import PLANS
from app.services import mail, sessions, signin_guard
from app.services.errors import ServiceError
from app.services.places import COUNTRIES, is_time_zone
from app.services.text_input import single_line

MIN_PASSWORD_LENGTH = 10
RESET_TOKEN_MAX_AGE = timedelta(hours=1)
INVITATION_LIFETIME = timedelta(days=7)
SIGN_UP_LIFETIME = timedelta(hours=24)
INVITABLE_ROLES = ("admin", "staff")
# Checked instead of a real hash when a sign-in's email has no account. Made once per process
# by the same call (method and parameters) as every real hash, so the check costs the same.
_DUMMY_PASSWORD_HASH = generate_password_hash(secrets.token_urlsafe(32))


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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
) -> str:
    """Starts a business's sign-up and returns the email it went to. Raises ServiceError.

    Nothing is created yet: a link to confirm it is emailed to the address, and
    `confirm_sign_up` makes the business and its owner when it is opened. So the answer is the
    same whether or not the email already has an account (sign-up would otherwise tell anyone
    who uses Twoway); that account's holder is emailed instead. The password is hashed either
    way, so the answer also takes as long."""
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
    password_hash = generate_password_hash(password)
    now = utcnow()
    db.session.execute(db.delete(PendingSignUp).where(PendingSignUp.expires_at < now))
    existing = db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none()
    token = secrets.token_urlsafe(32)
    if existing is None:
        db.session.add(
            PendingSignUp(
                token_hash=_token_hash(token),
                email=email,
                business_name=business_name,
                country=country,
                time_zone=time_zone,
                plan=plan,
                owner_name=owner_name,
                password_hash=password_hash,
                created_at=now,
                expires_at=now + SIGN_UP_LIFETIME,
            )
        )
    db.session.commit()
    if existing is None:
        link = public_url("auth.confirm_sign_up_form", token=token)
        mail.send_email(
            to=email,
            subject="Confirm your Twoway account",
            body=(
                f"Hello {owner_name},\n\nOpen this link within 24 hours to finish creating "
                f"{business_name}'s Twoway account:\n\n{link}\n\n"
                "If you didn't sign up, ignore this email: no account is made without it.\n"
            ),
        )
    else:
        _tell_of_sign_up_with_existing_email(existing)
    return email


def _tell_of_sign_up_with_existing_email(user: User) -> None:
    """Someone signed up with an address that already has an account: its holder is told,
    with the way in (or, for a removed member, why this address can't be used again)."""
    if user.is_active:
        way_in = (
            f"Sign in here:\n\n{public_url('auth.sign_in_form')}\n\nForgot your password? "
            f"Reset it here:\n\n{public_url('auth.forgot_password_form')}\n\n"
            "If it wasn't you, ignore this email: nothing was changed."
        )
    else:
        way_in = (
            f"That account was removed from {user.business.name}, and an address can belong "
            "to one account only: to create a business, sign up with another address.\n\n"
            "If it wasn't you, ignore this email: nothing was changed."
        )
    mail.send_email(
        to=user.email,
        subject="Someone tried to sign up to Twoway with your email",
        body=(
            f"Hello {user.name},\n\nSomeone (hopefully you) tried to create a new Twoway "
            f"account with this email address, which already has one at {user.business.name}. "
            f"{way_in}\n"
        ),
    )


def pending_sign_up_for_token(token: str) -> PendingSignUp:
    """The sign-up a confirmation link is for. Raises ServiceError when used, expired or
    forged."""
    pending = db.session.execute(
        db.select(PendingSignUp).filter_by(token_hash=_token_hash(token))
    ).scalar_one_or_none()
    if pending is None:
        raise ServiceError("That confirmation link is not valid. Sign up again.")
    if pending.confirmed_at is not None:
        raise ServiceError("That account is already confirmed. Sign in instead.")
    if pending.expires_at < utcnow():
        raise ServiceError("That confirmation link has expired. Sign up again.")
    return pending


def confirm_sign_up(token: str) -> User:
    """Creates the business and owner a confirmation link is for, and returns the owner.

    The link is claimed by one conditional UPDATE in the same transaction as the new rows, so
    opening it twice, even at the same moment, makes one account (the second waits for the
    first and finds it claimed); the unique email refuses a second account for the same
    address from another link."""
    pending = pending_sign_up_for_token(token)
    claimed = db.session.execute(
        db.update(PendingSignUp)
        .where(PendingSignUp.id == pending.id, PendingSignUp.confirmed_at.is_(None))
        .values(confirmed_at=utcnow())
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        raise ServiceError("That account is already confirmed. Sign in instead.")
    business = Business(
        name=pending.business_name,
        country=pending.country,
        time_zone=pending.time_zone,
        plan=pending.plan,
    )
    owner = User(
        business=business,
        email=pending.email,
        name=pending.owner_name,
        role="owner",
        password_hash=pending.password_hash,
    )
    db.session.add_all([business, owner])
    try:
        db.session.commit()
    except IntegrityError:  # the address got an account since (another link, an invitation)
        db.session.rollback()
        raise ServiceError("An account with that email already exists. Sign in instead.") from None
    return owner


def authenticate(email: str, password: str, remote_addr: str, now: datetime) -> User:
    """The active user with this email and password. Raises ServiceError, or SignInPaused
    (without checking the password) during the wait after repeated failures from this email or
    address. An unknown email costs the same password check as a known one (against
    `_DUMMY_PASSWORD_HASH`), so how long the answer takes doesn't tell whether it has an account;
    a removed member's password is checked before their account's state, for the same reason."""
    email = email.strip().lower()
    signin_guard.take_try(email, remote_addr, now)
    user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none()
    stored_hash = user.password_hash if user is not None else _DUMMY_PASSWORD_HASH
    if not check_password_hash(stored_hash, password) or user is None:
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
    """Sets a new password through a reset link (which then stops working) and ends every
    signed-in session of its staff member, on this browser too."""
    user = user_for_reset_token(token)
    _check_password(new_password)
    user.password_hash = generate_password_hash(new_password)
    sessions.end_all(user)  # commits the new password with it
    signin_guard.clear(user.email)
    return user


# The profile: one's own name and password -------------------------------------------------


def change_name(user: User, name: str) -> None:
    """Renames the signed-in staff member (their past messages show the new name)."""
    user.name = _check_name(name, "name", "your name")
    db.session.commit()


def change_password(user: User, current_password: str, new_password: str) -> None:
    """Sets a new password when `current_password` is right, and ends every other signed-in
    session of the staff member (the one they are using stays). Raises ServiceError."""
    if not check_password_hash(user.password_hash, current_password):
        raise ServiceError("Your current password isn't right.", field="current_password")
    _check_password(new_password)
    user.password_hash = generate_password_hash(new_password)
    sessions.end_others(user, keep_session_id=user.session_id)  # commits the password with it


# Staff: invitations and roles -------------------------------------------------------------


def _require_settings_role(actor: User) -> None:
    if not actor.can_change_settings:
        raise PermissionError("Only the owner or an admin can manage staff.")


def invite_staff(actor: User, email: str, role: str) -> Invitation:
    """Invites someone to the actor's business by an emailed link.

    Inviting must not tell who uses Twoway: an email that already has an account at another
    business (an email holds one account) gets the same answer and a stored invitation like
    any other (listed, revocable, expiring), but its link is never sent: that person is emailed
    that they were invited and can't join with this address. Someone already on the actor's
    own team is no secret to the actor, so that is said plainly."""
    _require_settings_role(actor)
    email = normalise_email(email)
    if role not in INVITABLE_ROLES:
        raise ServiceError("Choose admin or staff.", field="role")
    existing = db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none()
    if existing is not None and existing.business_id == actor.business_id:
        if existing.is_active:
            raise ServiceError(f"{existing.name} is already on your team.", field="email")
        raise ServiceError(
            f"{existing.name} was removed from your team, and a removed account can't be "
            "invited back.",
            field="email",
        )
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
    subject = f"{actor.name} invited you to {actor.business.name} on Twoway"
    invited = (
        f"Hello,\n\n{actor.name} invited you to join {actor.business.name} on Twoway as {role}, "
        "to text clients and answer them from a shared inbox."
    )
    if existing is None:
        link = public_url("auth.accept_invitation", token=token)
        body = f"{invited}\n\nAccept within 7 days:\n\n{link}\n"
    else:
        body = (
            f"{invited}\n\nThis email address already has a Twoway account, and an address "
            "can belong to one account only, so the invitation can't be accepted with it. To "
            f"join {actor.business.name}, ask {actor.name} to invite another address of yours."
            f"\n\nTo use the account you have, sign in:\n\n{public_url('auth.sign_in_form')}\n"
        )
    mail.send_email(to=email, subject=subject, body=body)
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
    if member.role == role:
        return
    member.role = role
    db.session.commit()
    sessions.role_changed(member)


def remove_staff(actor: User, member: User) -> None:
    """Removes a staff member's access (their past messages keep their name)."""
    _require_settings_role(actor)
    if member.role == "owner":
        raise ServiceError("The owner can't be removed.")
    if member.id == actor.id:
        raise ServiceError("You can't remove yourself.")
    member.deactivated_at = utcnow()
    sessions.end_all(member)  # commits the removal with it


def public_url(endpoint: str, **values: object) -> str:
    """An absolute link to this app for emails, built on PUBLIC_URL (works in jobs too)."""
    if has_request_context():
        path = url_for(endpoint, **values)
    else:
        with current_app.test_request_context():
            path = url_for(endpoint, **values)
    return current_app.config["PUBLIC_URL"].rstrip("/") + path
