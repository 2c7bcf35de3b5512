"""Settings → Profile: the signed-in staff member's own name and password, how they hear of
bookings, cancellations, confirmations and new leads (Alerts: app.services.booking.staff_alerts),
and the browsers they are signed in on, with "Sign out other devices". A password change signs
out every other device too (app.services.accounts, app.services.sessions)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.models.staff_alerts import ALERT_CHANNELS, ALERT_EVENTS
from app.models.types import utcnow
from app.services import accounts, sessions
from app.services.booking import staff_alerts
from app.services.errors import ServiceError

bp = Blueprint("profile", __name__, url_prefix="/settings/profile")


def _render_profile(
    error: ServiceError | None = None,
    name: str | None = None,
    status: int = 200,
    *,
    mobile_number: str | None = None,
    chosen: dict[str, set[str]] | None = None,
):
    if chosen is None:
        chosen = {
            event: set(choice.channels)
            for event, choice in staff_alerts.choices_of(current_user).items()
        }
    return render_template(
        "profile/profile.html",
        error=error,
        name=current_user.name if name is None else name,
        devices=sessions.devices_of(current_user),
        alert_events=ALERT_EVENTS,
        alert_channels=ALERT_CHANNELS,
        chosen=chosen,
        mobile_number=staff_alerts.mobile_number_shown(current_user)
        if mobile_number is None
        else mobile_number,
    ), status


@bp.get("")
@login_required
def profile():
    return _render_profile()


@bp.post("/name")
@login_required
def save_name():
    name = request.form.get("name", "")
    try:
        accounts.change_name(current_user, name)
    except ServiceError as error:
        return _render_profile(error, name=name, status=422)
    flash("Your name is saved.", "success")
    return redirect(url_for("profile.profile"))


@bp.post("/alerts")
@login_required
def save_alerts():
    mobile_number = request.form.get("mobile_number", "")
    chosen = {event: set(request.form.getlist(event)) for event in ALERT_EVENTS}
    try:
        staff_alerts.save_alert_choices(
            current_user, mobile_number=mobile_number, chosen=chosen, now=utcnow()
        )
    except ServiceError as error:
        return _render_profile(error, status=422, mobile_number=mobile_number, chosen=chosen)
    flash("Your alerts are saved.", "success")
    return redirect(url_for("profile.profile"))


@bp.post("/password")
@login_required
def change_password():
    try:
        accounts.change_password(
            current_user,
            request.form.get("current_password", ""),
            request.form.get("password", ""),
        )
    except ServiceError as error:
        return _render_profile(error, status=422)
    flash("Your password is changed, and you're signed out on every other device.", "success")
    return redirect(url_for("profile.profile"))


@bp.post("/sign-out-other-devices")
@login_required
def sign_out_other_devices():
    ended = sessions.end_others(current_user, keep_session_id=current_user.session_id)
    if ended:
        flash("You're signed out on every other device.", "success")
    else:
        flash("You weren't signed in on any other device.", "info")
    return redirect(url_for("profile.profile"))
