"""Push notifications in a real browser: the service worker registers for the whole app, the
"Notifications on this device" control tells the truth, and a push shows a notification.

Subscribing needs Google's push service (no internet here), so no test subscribes; a push is
handed to the service worker through Chromium's DevTools protocol instead.
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from app.extensions import db
from app.models import PushSubscription
from app.services import push

pytestmark = pytest.mark.e2e


def _service_worker(page) -> dict:
    """The active service worker's script and scope, once it is ready."""
    return page.evaluate(
        "navigator.serviceWorker.ready.then(r => ({script: r.active.scriptURL, scope: r.scope}))"
    )


def test_on_a_phone_the_service_worker_covers_the_app_and_a_push_shows_a_notification(
    app, make_business, live_server, phone, sign_in
):
    app.config["VAPID_PRIVATE_KEY"] = push.new_private_key()
    phone.context.grant_permissions(["notifications"], origin=live_server.url)
    business = make_business()
    sign_in(phone, business["owner"][1])
    phone.goto("/notifications")

    assert _service_worker(phone) == {
        "script": f"{live_server.url}/sw.js",
        "scope": f"{live_server.url}/",
    }
    control = phone.get_by_role("region", name="Notifications on this device")
    expect(control.get_by_role("status")).to_have_text(
        "Off: this device doesn't get notifications."
    )
    expect(control.get_by_role("button", name="Turn on notifications")).to_be_visible()
    expect(control.get_by_role("button", name="Turn off")).to_be_hidden()
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 360

    # A push as the push service would deliver it (already decrypted) reaches the worker.
    cdp = phone.context.new_cdp_session(phone)
    registrations: list[dict] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")  # reports the registrations (events, shortly after)
    for _ in range(100):
        if registrations:
            break
        phone.wait_for_timeout(100)
    [registration] = [r for r in registrations if r["scopeURL"] == f"{live_server.url}/"]
    payload = {
        "title": "New text",
        "body": "Dana: see you at 3",
        "url": "/notifications/7",
        "tag": "notification-7",
    }
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": live_server.url,
            "registrationId": registration["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown = phone.evaluate(
        """async () => {
          const registration = await navigator.serviceWorker.ready;
          for (let i = 0; i < 50; i++) {
            const shown = await registration.getNotifications();
            if (shown.length) {
              const n = shown[0];
              return {title: n.title, body: n.body, tag: n.tag, url: n.data.url, icon: n.icon};
            }
            await new Promise(resolve => setTimeout(resolve, 100));
          }
          return null;
        }"""
    )
    assert shown == {
        "title": "New text",
        "body": "Dana: see you at 3",
        "tag": "notification-7",
        "url": "/notifications/7",
        "icon": f"{live_server.url}/static/icon.svg",
    }


# The browser's PushManager, minus the push service: subscribe() hands back this subscription
# (and notes the key it was given), getSubscription() what is subscribed, unsubscribe() ends it.
FAKE_PUSH_MANAGER = """
(() => {
  const issued = %s;
  const subscription = () => ({
    endpoint: issued.endpoint,
    toJSON: () => issued,
    unsubscribe: () => { localStorage.removeItem("subscribed"); return Promise.resolve(true); },
  });
  PushManager.prototype.getSubscription = () =>
    Promise.resolve(localStorage.getItem("subscribed") ? subscription() : null);
  PushManager.prototype.subscribe = (options) => {
    const key = new Uint8Array(options.applicationServerKey);
    window.subscribedWithKey = btoa(String.fromCharCode(...key))
      .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    localStorage.setItem("subscribed", "1");  // the browser keeps it across pages
    return Promise.resolve(subscription());
  };
})();
"""


def _issued_subscription() -> dict:
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return {
        "endpoint": "https://push.example.com/send/this-phone",
        "expirationTime": None,
        "keys": {"p256dh": encode(public), "auth": encode(b"0123456789abcdef")},
    }


def test_on_a_phone_staff_turn_notifications_on_and_off_for_this_device(
    app, make_business, live_server, phone, sign_in
):
    app.config["VAPID_PRIVATE_KEY"] = push.new_private_key()
    issued = _issued_subscription()
    phone.add_init_script(FAKE_PUSH_MANAGER % json.dumps(issued))
    phone.context.grant_permissions(["notifications"], origin=live_server.url)
    business = make_business()
    sign_in(phone, business["owner"][1])
    phone.goto("/notifications")
    control = phone.get_by_role("region", name="Notifications on this device")
    status = control.get_by_role("status")
    expect(status).to_have_text("Off: this device doesn't get notifications.")

    control.get_by_role("button", name="Turn on notifications").click()
    expect(status).to_have_text(
        "On: this device gets a notification for new texts and leads, until you sign out here."
    )
    expect(control.get_by_role("listitem")).to_have_count(1)
    expect(control.get_by_role("listitem")).to_contain_text("this device")
    expect(control.get_by_role("button", name="Remove")).to_be_hidden()  # Turn off does it
    with app.app_context():
        assert phone.evaluate("window.subscribedWithKey") == push.application_server_key()
        stored = db.session.execute(db.select(PushSubscription)).scalar_one()
        assert (stored.endpoint, stored.user_id) == (issued["endpoint"], business["owner"][0])
        assert stored.p256dh == issued["keys"]["p256dh"]
        assert stored.user_agent == phone.evaluate("navigator.userAgent")

    control.get_by_role("button", name="Turn off").click()
    expect(status).to_have_text("Off: this device doesn't get notifications.")
    expect(control.get_by_role("listitem")).to_have_count(0)
    with app.app_context():
        assert db.session.execute(db.select(PushSubscription)).first() is None


def test_on_a_phone_signing_out_turns_this_devices_notifications_off(
    app, make_business, live_server, phone, sign_in
):
    app.config["VAPID_PRIVATE_KEY"] = push.new_private_key()
    phone.add_init_script(FAKE_PUSH_MANAGER % json.dumps(_issued_subscription()))
    phone.context.grant_permissions(["notifications"], origin=live_server.url)
    business = make_business()
    sign_in(phone, business["owner"][1])
    phone.goto("/notifications")
    control = phone.get_by_role("region", name="Notifications on this device")
    control.get_by_role("button", name="Turn on notifications").click()
    expect(control.get_by_role("listitem")).to_have_count(1)

    phone.goto("/settings")
    phone.get_by_role("main").get_by_role("button", name="Sign out").click()
    sign_in(phone, business["owner"][1])
    phone.goto("/notifications")
    # The browser still holds its subscription, but it is no one's here any more: Off.
    expect(control.get_by_role("status")).to_have_text(
        "Off: this device doesn't get notifications."
    )
    expect(control.get_by_role("listitem")).to_have_count(0)
    with app.app_context():
        assert db.session.execute(db.select(PushSubscription)).first() is None


def test_on_a_desktop_without_a_push_key_the_control_says_push_is_not_set_up(
    app, make_business, live_server, desktop, sign_in
):
    business = make_business()
    sign_in(desktop, business["owner"][1])
    desktop.goto("/notifications")
    control = desktop.get_by_role("region", name="Notifications on this device")
    expect(control).to_contain_text("Push notifications are not set up on this server")
    expect(control.get_by_role("button")).to_have_count(0)
