"""Notifications: the in-app list of what staff were told (a new lead, a text, a number
verified, …), and the control that turns push notifications on for this device."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

from app.htmx import render_page_or_fragment
from app.models import Notification
from app.services import notifications, push
from app.services.tenancy import owned_or_404

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("")
@login_required
def index():
    """The list (only the list for htmx: it refreshes live when a notification arrives), the
    push control for this device and the staff member's devices with push on."""
    return render_page_or_fragment(
        "notifications/index.html",
        "notifications/_list.html",
        notifications=notifications.recent_notifications(current_user.business_id, current_user.id),
        kind_titles=push.KIND_TITLES,
        push_key=push.application_server_key(),
        devices=push.devices_of(current_user),
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
