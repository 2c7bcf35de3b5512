"""Notifications: the in-app list of what staff were told (a new lead, a text, a number
verified, …), and the control that turns push notifications on for this device.

Opening a notification (a row of the list, or a push the service worker opens) is a GET, so
it changes nothing: `/notifications/<id>` sends the browser on to where the notification
points with `?notification=<id>` added, and that page (the signed-in shell) marks it read with
an htmx POST as it loads (`opened_notification` below, used by app.html).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, request, url_for
from flask_login import current_user, login_required

from app.htmx import render_page_or_fragment
from app.models import Notification
from app.models.types import is_row_id
from app.services import notifications, push
from app.services.tenancy import owned_or_404

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

OPENED = "notification"  # query parameter: the notification this page was opened from
READ_EVENT = "notification-read"  # htmx event (HX-Trigger): the list shows it read


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


def _visible(notification_id: int) -> Notification | None:
    """The notification, if the signed-in staff member may see it (404 for another
    business's; None for a colleague's own)."""
    notification = owned_or_404(Notification, notification_id)
    if notification.user_id not in (None, current_user.id):
        return None
    return notification


def _with_opened(path: str, notification_id: int) -> str:
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != OPENED]
    query.append((OPENED, str(notification_id)))
    return urlunsplit(parts._replace(query=urlencode(query)))


@bp.get("/<int:notification_id>")
@login_required
def open_notification(notification_id: int):
    """Goes where the notification points; the page there marks it read."""
    notification = _visible(notification_id)
    if notification is None:
        return redirect(url_for("notifications.index"))
    # Links are paths inside this app, stored by the app itself (never from user input).
    link = notification.link
    if not (link and link.startswith("/") and "//" not in link):
        link = url_for("notifications.index")
    return redirect(_with_opened(link, notification.id))


@bp.post("/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    """Marks the notification read (the page it was opened on asks, as it loads); the list,
    where shown, fetches itself again."""
    notification = _visible(notification_id)
    if notification is not None:
        notifications.mark_read(notification)
    return Response(status=204, headers={"HX-Trigger": READ_EVENT})


@bp.post("/read")
@login_required
def mark_all_read():
    notifications.mark_all_read(current_user.business_id, current_user.id)
    return redirect(url_for("notifications.index"))


@bp.app_context_processor
def opened_notification_context() -> dict:
    """`opened_notification()` for the shell: the id of the notification this page was opened
    from (its `?notification=`), or None."""

    def opened_notification() -> int | None:
        value = request.args.get(OPENED, type=int)
        return value if is_row_id(value) else None

    return {"opened_notification": opened_notification}
