"""Settings → Team: invite staff, change roles, remove access (owner and admins only)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.extensions import db
from app.models import Invitation, User
from app.models.types import utcnow
from app.routes.guards import settings_role_required
from app.services import accounts
from app.services.errors import ServiceError
from app.services.tenancy import owned_or_404

bp = Blueprint("team", __name__, url_prefix="/settings/team")


def _render_team(error: ServiceError | None = None, form: dict | None = None, status: int = 200):
    business = current_user.business
    staff = [member for member in business.staff if member.is_active]
    invitations = (
        db.session.execute(
            db.select(Invitation)
            .filter_by(business_id=business.id, accepted_at=None, revoked_at=None)
            .where(Invitation.expires_at > utcnow())
            .order_by(Invitation.created_at.desc())
        )
        .scalars()
        .all()
    )
    return render_template(
        "team/team.html", staff=staff, invitations=invitations, error=error, form=form or {}
    ), status


@bp.get("")
@settings_role_required
def team():
    return _render_team()


@bp.post("/invitations")
@settings_role_required
def invite():
    try:
        invitation = accounts.invite_staff(
            current_user, request.form.get("email", ""), request.form.get("role", "staff")
        )
    except ServiceError as error:
        return _render_team(error=error, form=request.form, status=422)
    flash(f"Invitation sent to {invitation.email}.", "success")
    return redirect(url_for("team.team"))


@bp.post("/invitations/<int:invitation_id>/revoke")
@settings_role_required
def revoke_invitation(invitation_id: int):
    invitation = owned_or_404(Invitation, invitation_id)
    accounts.revoke_invitation(current_user, invitation)
    flash(f"The invitation to {invitation.email} no longer works.", "info")
    return redirect(url_for("team.team"))


@bp.post("/<int:user_id>/role")
@settings_role_required
def change_role(user_id: int):
    member = owned_or_404(User, user_id)
    try:
        accounts.change_role(current_user, member, request.form.get("role", ""))
    except ServiceError as error:
        return _render_team(error=error, status=422)
    flash(f"{member.name} is now {member.role}.", "success")
    return redirect(url_for("team.team"))


@bp.post("/<int:user_id>/remove")
@settings_role_required
def remove(user_id: int):
    member = owned_or_404(User, user_id)
    try:
        accounts.remove_staff(current_user, member)
    except ServiceError as error:
        return _render_team(error=error, status=422)
    flash(f"{member.name} no longer has access.", "info")
    return redirect(url_for("team.team"))
