"""Notifications: the in-app list of what staff were told (a number verified, …)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.models import Notification
from app.services import notifications
from app.services.tenancy import owned_or_404

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("")
@login_required
def index():
    return render_template(
        "notifications/index.html",
        notifications=notifications.recent_notifications(current_user.business_id, current_user.id),
    )


@bp.get("/<int:notification_id>")
@login_required
def open_notification(notification_id: int):
    """Marks the notification read and goes where it points."""
    notification = owned_or_404(Notification, notification_id)
    if notification.user_id not in (None, current_user.id):
        return redirect(url_for("notifications.index"))
    notifications.mark_read(notification)
    # Links are paths inside this app, stored by the app itself (never from user input).
    if notification.link and notification.link.startswith("/") and "//" not in notification.link:
        return redirect(notification.link)
    return redirect(url_for("notifications.index"))


@bp.post("/read")
@login_required
def mark_all_read():
    notifications.mark_all_read(current_user.business_id, current_user.id)
    return redirect(url_for("notifications.index"))
