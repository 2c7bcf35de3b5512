"""Sign-up (confirmed from its email), sign-in, sign-out, password reset and accepting an
invitation.

Each way of signing in starts a new signed-in session (`_start_session`); signing out ends it
on the server, so a copied cookie stops working too (app.services.sessions).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.models import User
from app.models.types import utcnow
from app.plans import DEFAULT_PLAN, PLANS
from app.services import accounts, sessions
from app.services.errors import ServiceError
from app.services.places import COUNTRIES, time_zones
from app.services.signin_guard import SignInPaused

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("shell.inbox")


def _start_session(user: User, *, remember: bool = False) -> None:
    """Signs `user` in on this browser with a new session: whoever was signed in here is
    signed out (their session ended), and nothing of the cookie session from before is kept,
    so a session planted before signing in is worth nothing (session fixation)."""
    if current_user.is_authenticated:
        sessions.end(current_user.session_id)
        logout_user()
    session.clear()
    if not remember:
        session["_remember"] = "clear"  # drops a remember cookie left from before, if any
    sessions.start(user, remembered=remember, user_agent=request.headers.get("User-Agent"))
    login_user(user, remember=remember)


@bp.get("/sign-up")
def sign_up_form():
    return render_template(
        "auth/sign_up.html",
        form={"plan": DEFAULT_PLAN},
        error=None,
        plans=PLANS,
        countries=COUNTRIES,
        time_zones=time_zones(),
    )


@bp.post("/sign-up")
def sign_up():
    form = request.form
    try:
        email = accounts.sign_up(
            business_name=form.get("business_name", ""),
            country=form.get("country", ""),
            time_zone=form.get("time_zone", ""),
            plan=form.get("plan", ""),
            owner_name=form.get("name", ""),
            email=form.get("email", ""),
            password=form.get("password", ""),
        )
    except ServiceError as error:
        return render_template(
            "auth/sign_up.html",
            form=form,
            error=error,
            plans=PLANS,
            countries=COUNTRIES,
            time_zones=time_zones(),
        ), 422
    # The same page whether or not the email already has an account (no account discovery).
    return render_template("auth/sign_up_sent.html", email=email)


@bp.get("/sign-up/confirm/<token>")
def confirm_sign_up_form(token: str):
    # Opening the link changes nothing (mail scanners open links too): a button confirms.
    try:
        pending = accounts.pending_sign_up_for_token(token)
    except ServiceError as error:
        return render_template("auth/confirm_sign_up.html", pending=None, error=error), 400
    return render_template("auth/confirm_sign_up.html", pending=pending, token=token, error=None)


@bp.post("/sign-up/confirm/<token>")
def confirm_sign_up(token: str):
    try:
        owner = accounts.confirm_sign_up(token)
    except ServiceError as error:
        return render_template("auth/confirm_sign_up.html", pending=None, error=error), 400
    _start_session(owner)
    flash(f"Welcome to Twoway, {owner.name}. {owner.business.name} is ready.", "success")
    return redirect(url_for("shell.inbox"))


@bp.get("/sign-in")
def sign_in_form():
    if current_user.is_authenticated:
        return redirect(url_for("shell.inbox"))
    return render_template(
        "auth/sign_in.html", email="", error=None, next=request.args.get("next", "")
    )


@bp.post("/sign-in")
def sign_in():
    email = request.form.get("email", "")
    try:
        user = accounts.authenticate(
            email,
            request.form.get("password", ""),
            request.remote_addr or "unknown",
            now=utcnow(),
        )
    except SignInPaused as error:
        page = render_template(
            "auth/sign_in.html", email=email, error=error, next=request.form.get("next", "")
        )
        return page, 429, {"Retry-After": str(error.retry_after)}
    except ServiceError as error:
        return render_template(
            "auth/sign_in.html", email=email, error=error, next=request.form.get("next", "")
        ), 401
    _start_session(user, remember=bool(request.form.get("remember")))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/sign-out")
@login_required
def sign_out():
    sessions.end(current_user.session_id)
    logout_user()
    flash("You're signed out.", "info")
    return redirect(url_for("auth.sign_in_form"))


@bp.get("/password/forgot")
def forgot_password_form():
    return render_template("auth/forgot_password.html", sent=False)


@bp.post("/password/forgot")
def forgot_password():
    accounts.request_password_reset(request.form.get("email", ""))
    # The same answer whether or not the account exists: no account discovery.
    return render_template("auth/forgot_password.html", sent=True)


@bp.get("/password/reset/<token>")
def reset_password_form(token: str):
    try:
        accounts.user_for_reset_token(token)
    except ServiceError as error:
        return render_template("auth/reset_password.html", token=None, error=error), 400
    return render_template("auth/reset_password.html", token=token, error=None)


@bp.post("/password/reset/<token>")
def reset_password(token: str):
    try:
        user = accounts.reset_password(token, request.form.get("password", ""))
    except ServiceError as error:
        return render_template("auth/reset_password.html", token=token, error=error), 400
    flash("Your password is changed. Sign in with the new one.", "success")
    return redirect(url_for("auth.sign_in_form", email=user.email))


@bp.get("/invitations/<token>")
def accept_invitation(token: str):
    try:
        invitation = accounts.invitation_for_token(token)
    except ServiceError as error:
        return render_template("auth/accept_invitation.html", invitation=None, error=error), 400
    return render_template(
        "auth/accept_invitation.html", invitation=invitation, token=token, error=None, name=""
    )


@bp.post("/invitations/<token>")
def join_business(token: str):
    try:
        user = accounts.accept_invitation(
            token, name=request.form.get("name", ""), password=request.form.get("password", "")
        )
    except ServiceError as error:
        try:
            invitation = accounts.invitation_for_token(token)
        except ServiceError:
            invitation = None
        return render_template(
            "auth/accept_invitation.html",
            invitation=invitation,
            token=token,
            error=error,
            name=request.form.get("name", ""),
        ), 400
    _start_session(user)
    flash(f"Welcome to {user.business.name}, {user.name}.", "success")
    return redirect(url_for("shell.inbox"))
