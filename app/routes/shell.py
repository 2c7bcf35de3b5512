"""The app's sections: Inbox, Clients, Quick actions and Settings."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.models.types import utcnow
from app.plans import get_plan
from app.services.balance import balance_for

bp = Blueprint("shell", __name__)


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("shell.inbox"))
    return redirect(url_for("auth.sign_in_form"))


@bp.get("/inbox")
@login_required
def inbox():
    return render_template("shell/inbox.html")


@bp.get("/actions")
@login_required
def quick_actions():
    return render_template("shell/quick_actions.html")


@bp.get("/settings")
@login_required
def settings():
    return render_template(
        "shell/settings.html",
        plan=get_plan(current_user.business.plan),
        balance=balance_for(current_user.business_id, utcnow()),
    )
