"""Web Push: the service worker at the site's root, and turning notifications on or off for
a device (the control lives on the Notifications page). Signing out of a browser turns its
notifications off: the session remembers which subscription is this browser's."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, user_logged_out

from app.services import push

bp = Blueprint("push", __name__)

THIS_DEVICE = "push_subscription_id"  # session key: this browser's subscription


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from the root so its scope is the whole app. Browsers check
    it for updates: always revalidated (a small file, with an ETag)."""
    script = (Path(current_app.static_folder or "static") / "sw.js").read_bytes()
    response = Response(script, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


def _devices_fragment(status: int = 200):
    return render_template(
        "notifications/_push_devices.html", devices=push.devices_of(current_user)
    ), status


def _subscription_fields() -> tuple[str, str, str]:
    """endpoint, p256dh, auth: from the browser's subscription JSON
    (`{"endpoint": …, "keys": {"p256dh": …, "auth": …}}`) or from form fields."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, "The subscription must be a JSON object.")
        keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
        values = (data.get("endpoint"), keys.get("p256dh"), keys.get("auth"))
    else:
        values = (
            request.form.get("endpoint"),
            request.form.get("p256dh"),
            request.form.get("auth"),
        )
    return tuple(value if isinstance(value, str) else "" for value in values)  # type: ignore[return-value]


@bp.post("/push/subscriptions")
@login_required
def subscribe_this_device():
    """Stores this browser's push subscription for the signed-in staff member; answers the
    refreshed list of their devices."""
    if not push.push_configured():
        return "Push notifications are not set up on this server.", 409
    endpoint, p256dh, auth = _subscription_fields()
    try:
        subscription = push.save_subscription(
            current_user,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            user_agent=request.headers.get("User-Agent"),
        )
    except push.InvalidSubscription as error:
        return str(error), 400
    session[THIS_DEVICE] = subscription.id
    return _devices_fragment(201)


@bp.post("/push/subscriptions/remove")
@login_required
def unsubscribe_this_device():
    """This browser turned push off: forgets its subscription (if it was this staff
    member's); answers the refreshed list of their devices."""
    endpoint, _, _ = _subscription_fields()
    push.remove_this_device(current_user, endpoint)
    session.pop(THIS_DEVICE, None)
    return _devices_fragment()


@bp.post("/push/devices/<int:subscription_id>/remove")
@login_required
def remove_device(subscription_id: int):
    """Removes one of the staff member's devices from the list (a colleague's: 404)."""
    if not push.forget_device(current_user, subscription_id):
        abort(404)
    flash("That device no longer gets notifications.", "success")
    return redirect(url_for("notifications.index"))


@user_logged_out.connect
def _forget_this_device_on_sign_out(sender: object, user: object, **extra: object) -> None:
    """Signing out turns this browser's notifications off."""
    subscription_id = session.pop(THIS_DEVICE, None)
    if isinstance(subscription_id, int) and user is not None:
        push.forget_device(user, subscription_id)  # type: ignore[arg-type]
