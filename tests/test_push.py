"""Web Push: staff turn notifications on per device, and each in-app notification is pushed,
from a job, to the devices of the staff it is for (only in its business), once.

The push services are real HTTPS servers in this process (`PushService`): pywebpush really
signs, encrypts and posts to them, and each test decrypts what arrived with the device's own
private key, the way a browser would.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import os
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import http_ece
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from app.extensions import db
from app.models import PushSubscription, User
from app.models.types import utcnow
from app.services import notifications, push, queues
from jobs import push as push_jobs
from tests.conftest import page_text
from tests.inbound_helpers import dedicated_number, deliver, make_known_client, text_fields

CHROME_ON_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


# --- A push service stand-in -----------------------------------------------------------------


@dataclass
class PushRequest:
    """One push as the push service received it."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class PushService:
    """A threaded HTTPS server that records each push and answers 201, or what it is told
    for an endpoint path (a status, or a status with a Retry-After)."""

    certificate_file: Path
    key_file: Path
    requests: list[PushRequest] = field(default_factory=list)
    answers: dict[str, deque[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with service.lock:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    service.requests.append(PushRequest(self.path, headers, body))
                    queued = service.answers.get(self.path)
                    status = queued.popleft() if queued and len(queued) > 1 else None
                    if status is None:
                        status = queued[0] if queued else 201
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate_file, self.key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def answer(self, name: str, *statuses: int) -> None:
        """Answer pushes to this endpoint with these statuses in turn (the last one repeats)."""
        self.answers[urlsplit(self.endpoint(name)).path] = deque(statuses)

    def pushes_to(self, name: str) -> list[PushRequest]:
        path = urlsplit(self.endpoint(name)).path
        with self.lock:
            return [request for request in self.requests if request.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the push services' https)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("push-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _allow_test_origin(app, origin: str) -> None:
    """Lets this test's push service on 127.0.0.1 through the public-address rule (a TESTING
    app's PUSH_TEST_ORIGINS; production has no such setting)."""
    app.config.setdefault("PUSH_TEST_ORIGINS", set()).add(origin)


@pytest.fixture
def push_services(app, certificate, monkeypatch):
    """Makes push services on demand (each its own origin); requests trusts their certificate
    and the app lets their origins through the public-address rule."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    made: list[PushService] = []

    def make() -> PushService:
        service = PushService(*certificate)
        _allow_test_origin(app, service.origin)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def push_service(push_services) -> PushService:
    return push_services()


@pytest.fixture
def vapid_key(app) -> str:
    """The app's VAPID key for this test (push is on)."""
    key = push.new_private_key()
    app.config["VAPID_PRIVATE_KEY"] = key
    app.config["VAPID_SUBJECT"] = "mailto:push@twoway.test"
    return key


# --- A browser's side of a subscription --------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Device:
    """A browser's push subscription: its endpoint and its own ECDH keys and auth secret, so
    the test can decrypt what the push service received as the browser would."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = _b64url(public)
        self.auth = _b64url(self.auth_secret)

    def subscription_json(self) -> dict:
        """What `PushSubscription.toJSON()` gives in the browser."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }

    def read(self, request: PushRequest) -> dict:
        """The push's payload, decrypted with this device's private key."""
        assert request.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(
            request.body,
            private_key=self.private_key,
            auth_secret=self.auth_secret,
            version="aes128gcm",
        )
        return json.loads(plain)


def _subscribe(app, user_id: int, device: Device) -> int:
    """Stores a device for a staff member as the subscribe route does."""
    with app.app_context():
        user = db.session.get(User, user_id)
        return push.save_subscription(
            user,
            endpoint=device.endpoint,
            p256dh=device.p256dh,
            auth=device.auth,
            user_agent=CHROME_ON_ANDROID,
        ).id


def _notify(app, business_id: int, text: str = "Dana texted: see you at 3", **kwargs) -> int:
    kwargs.setdefault("kind", "text_received")
    with app.app_context():
        notification = notifications.notify(business_id, text=text, **kwargs)
        db.session.commit()
        notifications.announce(notification)
        return notification.id


def _subscriptions(app) -> list[tuple[str, int, int]]:
    with app.app_context():
        return [
            (s.endpoint, s.user_id, s.business_id)
            for s in db.session.execute(db.select(PushSubscription)).scalars()
        ]


def _jwt_claims(request: PushRequest, public_key: str) -> dict:
    """The VAPID token's claims, after checking its ES256 signature with the app's key."""
    scheme, _, params = request.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == public_key
    header, claims, signature = fields["t"].split(".")
    raw = _b64url_decode(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(fields["k"]))
    key.verify(
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        f"{header}.{claims}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    return json.loads(_b64url_decode(claims))


# --- Turning push on and off for a device ------------------------------------------------------


def test_staff_turn_push_on_for_a_device_and_see_it_listed_by_its_browser(
    app, actions, make_business, vapid_key
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    device = Device("https://fcm.googleapis.com/fcm/send/abc123")
    response = actions.client.post(
        "/push/subscriptions",
        json=device.subscription_json(),
        headers={"X-CSRFToken": actions.csrf_token(), "User-Agent": CHROME_ON_ANDROID},
    )
    assert response.status_code == 201
    assert "Chrome on Android" in page_text(response)
    assert _subscriptions(app) == [(device.endpoint, business["owner"][0], business["id"])]
    page = actions.client.get("/notifications")
    assert "Notifications on this device" in page_text(page)
    assert "Chrome on Android" in page_text(page)
    with app.app_context():
        assert f'data-push-key="{push.application_server_key()}"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"endpoint": "http://push.example.com/send/1"}, "https"),
        ({"endpoint": "https://push.example.com/" + "x" * 1000}, "too long"),
        ({"endpoint": "javascript:alert(1)"}, "https"),
        ({"endpoint": ""}, "missing"),
        ({"p256dh": "not-a-key"}, "p256dh"),
        ({"p256dh": _b64url(b"\x04" + b"\x01" * 64)}, "p256dh"),  # not a point on P-256
        ({"auth": _b64url(b"short")}, "auth secret"),
        ({"auth": "!!!!"}, "auth secret"),
        ({"keys": None}, "p256dh"),
    ],
)
def test_an_invalid_subscription_is_refused_with_the_reason_and_nothing_is_stored(
    app, actions, make_business, vapid_key, change, reason
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    subscription = Device("https://push.example.com/send/1").subscription_json()
    for name, value in change.items():
        if name in ("p256dh", "auth"):
            subscription["keys"][name] = value
        else:
            subscription[name] = value
    response = actions.client.post(
        "/push/subscriptions", json=subscription, headers={"X-CSRFToken": actions.csrf_token()}
    )
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert _subscriptions(app) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1/push/1",
        "https://[::1]/push/1",
        "https://10.0.0.8/push/1",
        "https://192.168.1.20/push/1",
        "https://172.16.0.1/push/1",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/push/1",
        "https://224.0.0.1/push/1",
        "https://[ff02::1]/push/1",
        "https://0.0.0.0/push/1",
        "https://[::ffff:127.0.0.1]/push/1",
        "https://[fe80::1]/push/1",
        "https://localhost/push/1",
        "https://2130706433/push/1",  # 127.0.0.1 as the resolver reads a bare number
    ],
)
def test_a_push_endpoint_on_a_local_or_private_address_is_refused_and_nothing_is_stored(
    app, actions, make_business, vapid_key, endpoint
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.client.post(
        "/push/subscriptions",
        json=Device(endpoint).subscription_json(),
        headers={"X-CSRFToken": actions.csrf_token()},
    )
    assert response.status_code == 400
    assert "must be a public address" in response.get_data(as_text=True)
    assert _subscriptions(app) == []


@pytest.mark.parametrize(
    "endpoint, reason",
    [
        ("http://fcm.googleapis.com/fcm/send/abc", "must be an https address"),
        ("https://fcm.googleapis.com:8443/fcm/send/abc", "standard https port (443)"),
        ("https://8.8.8.8:444/push/1", "standard https port (443)"),
    ],
)
def test_a_push_endpoint_that_is_not_https_on_port_443_is_refused_and_nothing_is_stored(
    app, actions, make_business, vapid_key, endpoint, reason
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.client.post(
        "/push/subscriptions",
        json=Device(endpoint).subscription_json(),
        headers={"X-CSRFToken": actions.csrf_token()},
    )
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert _subscriptions(app) == []


def test_a_public_address_on_port_443_is_accepted(app, make_business):
    business = make_business()
    for endpoint in ("https://8.8.8.8/push/1", "https://[2606:4700::1111]:443/push/2"):
        _subscribe(app, business["owner"][0], Device(endpoint))
    assert len(_subscriptions(app)) == 2


def test_a_push_service_origin_is_let_through_only_in_a_testing_app(app, push_service):
    """PUSH_TEST_ORIGINS is the tests' way to reach their stand-in on 127.0.0.1: an app that is
    not TESTING ignores it."""
    device = Device(push_service.endpoint("x"))
    app.config["TESTING"] = False
    try:
        with app.app_context(), pytest.raises(push.InvalidSubscription):
            push.validate_subscription(device.endpoint, device.p256dh, device.auth)
    finally:
        app.config["TESTING"] = True


def test_a_push_is_not_sent_when_the_endpoints_host_now_resolves_to_a_local_address(
    app, make_business, vapid_key, push_service, monkeypatch, caplog
):
    """DNS rebinding: the host was public when subscribed; when the push connects, the address
    it reached is 127.0.0.1, and the push stops there (checked on the connection itself)."""
    business = make_business()
    device = Device(push_service.endpoint("rebound"))
    subscription_id = _subscribe(app, business["owner"][0], device)
    # From here on 127.0.0.1 is what it is, a local address, and the stand-in's port counts
    # as the https port: only the address can stop this push.
    app.config["PUSH_TEST_ORIGINS"] = set()
    monkeypatch.setattr(push, "PUSH_PORT", push_service.server.server_address[1])
    with caplog.at_level(logging.WARNING, logger="app.services.push"), app.app_context():
        notification_id = _notify(app, business["id"])
        outcome = push.send_push(notification_id)
    assert outcome == {subscription_id: "failed"}
    assert push_service.pushes_to("rebound") == []
    assert "not a public address" in caplog.text


def test_a_subscription_that_is_not_a_json_object_is_refused(
    app, actions, make_business, vapid_key
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.client.post(
        "/push/subscriptions",
        json=["https://push.example.com/1"],
        headers={"X-CSRFToken": actions.csrf_token()},
    )
    assert response.status_code == 400
    assert _subscriptions(app) == []


def test_subscribing_without_the_csrf_token_is_refused(app, actions, make_business, vapid_key):
    business = make_business()
    actions.sign_in(business["owner"][1])
    device = Device("https://push.example.com/send/1")
    response = actions.client.post("/push/subscriptions", json=device.subscription_json())
    assert response.status_code == 400
    assert _subscriptions(app) == []


def test_a_form_post_of_the_subscription_is_accepted_too(app, actions, make_business, vapid_key):
    business = make_business()
    actions.sign_in(business["owner"][1])
    device = Device("https://push.example.com/send/1")
    response = actions.post(
        "/push/subscriptions",
        {"endpoint": device.endpoint, "p256dh": device.p256dh, "auth": device.auth},
    )
    assert response.status_code == 201
    assert _subscriptions(app) == [(device.endpoint, business["owner"][0], business["id"])]


def test_an_endpoint_stored_for_another_staff_member_moves_to_whoever_subscribes_it(
    app, actions, make_business, vapid_key
):
    first = make_business()
    second = make_business()
    device = Device("https://push.example.com/send/shared-browser")
    _subscribe(app, first["owner"][0], device)
    actions.sign_in(second["owner"][1])
    response = actions.client.post(
        "/push/subscriptions",
        json=device.subscription_json(),
        headers={"X-CSRFToken": actions.csrf_token()},
    )
    assert response.status_code == 201
    assert _subscriptions(app) == [(device.endpoint, second["owner"][0], second["id"])]


def test_turning_push_off_forgets_this_device_but_never_another_staff_members(
    app, actions, make_business, vapid_key
):
    business = make_business(staff=("staff",))
    mine = Device("https://push.example.com/send/mine")
    theirs = Device("https://push.example.com/send/theirs")
    _subscribe(app, business["owner"][0], mine)
    _subscribe(app, business["staff"][0], theirs)
    actions.sign_in(business["owner"][1])
    token = actions.csrf_token()
    response = actions.client.post(
        "/push/subscriptions/remove",
        json=theirs.subscription_json(),
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert len(_subscriptions(app)) == 2
    actions.client.post(
        "/push/subscriptions/remove", json=mine.subscription_json(), headers={"X-CSRFToken": token}
    )
    assert _subscriptions(app) == [(theirs.endpoint, business["staff"][0], business["id"])]


def test_staff_remove_a_device_from_their_list_but_not_a_colleagues(
    app, actions, make_business, vapid_key
):
    business = make_business(staff=("staff",))
    mine = _subscribe(app, business["owner"][0], Device("https://push.example.com/send/mine"))
    theirs = _subscribe(app, business["staff"][0], Device("https://push.example.com/send/theirs"))
    actions.sign_in(business["owner"][1])
    assert actions.post(f"/push/devices/{theirs}/remove").status_code == 404
    response = actions.post(f"/push/devices/{mine}/remove")
    assert response.status_code == 302
    assert [user for _, user, _ in _subscriptions(app)] == [business["staff"][0]]
    assert "no longer gets notifications" in page_text(actions.client.get("/notifications"))


def test_signing_out_turns_off_this_browsers_notifications_but_not_the_staff_members_others(
    app, actions, make_business, vapid_key
):
    business = make_business()
    other_device = Device("https://push.example.com/send/their-laptop")
    _subscribe(app, business["owner"][0], other_device)
    actions.sign_in(business["owner"][1])
    this_browser = Device("https://push.example.com/send/this-phone")
    actions.client.post(
        "/push/subscriptions",
        json=this_browser.subscription_json(),
        headers={"X-CSRFToken": actions.csrf_token()},
    )
    assert len(_subscriptions(app)) == 2
    actions.sign_out()
    assert _subscriptions(app) == [(other_device.endpoint, business["owner"][0], business["id"])]


def test_without_a_vapid_key_the_control_says_push_is_not_set_up_and_nothing_is_queued(
    app, actions, make_business
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    page = page_text(actions.client.get("/notifications"))
    assert "Push notifications are not set up on this server" in page
    assert "data-push-control" not in page
    device = Device("https://push.example.com/send/1")
    response = actions.client.post(
        "/push/subscriptions",
        json=device.subscription_json(),
        headers={"X-CSRFToken": actions.csrf_token()},
    )
    assert response.status_code == 409
    assert _subscriptions(app) == []
    with app.app_context():
        queued_before = queues.get_queue().count
    _notify(app, business["id"])
    with app.app_context():
        assert queues.get_queue().count == queued_before


# --- Sending ---------------------------------------------------------------------------------


def test_a_push_that_cannot_be_queued_never_fails_the_change_that_made_the_notification(
    app, make_business, vapid_key, monkeypatch, caplog
):
    business = make_business()

    def redis_is_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(queues, "enqueue", redis_is_down)
    with caplog.at_level(logging.ERROR, logger="app.services.push"):
        _notify(app, business["id"], "Stored whatever happens to the push")
    assert "not queued" in caplog.text


def test_a_notification_for_all_staff_reaches_each_of_their_devices_once_and_no_other_business(
    app, make_business, vapid_key, push_service, run_jobs
):
    business = make_business(staff=("admin", "staff"))
    other = make_business()
    devices = {
        "owner-phone": Device(push_service.endpoint("owner-phone")),
        "owner-laptop": Device(push_service.endpoint("owner-laptop")),
        "admin": Device(push_service.endpoint("admin")),
        "staff": Device(push_service.endpoint("staff")),
        "other-business": Device(push_service.endpoint("other-business")),
    }
    _subscribe(app, business["owner"][0], devices["owner-phone"])
    _subscribe(app, business["owner"][0], devices["owner-laptop"])
    _subscribe(app, business["admin"][0], devices["admin"])
    _subscribe(app, business["staff"][0], devices["staff"])
    _subscribe(app, other["owner"][0], devices["other-business"])

    notification_id = _notify(
        app, business["id"], "New lead: +1 555-010-1234 texted", kind="new_lead", link="/clients/7"
    )
    run_jobs()

    for name, device in devices.items():
        received = push_service.pushes_to(name)
        if name == "other-business":
            assert received == []
            continue
        assert len(received) == 1, name
        assert device.read(received[0]) == {
            "title": "New lead",
            "body": "New lead: +1 555-010-1234 texted",
            "url": f"/notifications/{notification_id}",
            "tag": f"notification-{notification_id}",
        }
        assert int(received[0].headers["ttl"]) > 0
    with app.app_context():
        used = db.session.execute(
            db.select(PushSubscription.last_used_at).where(
                PushSubscription.business_id == business["id"]
            )
        ).scalars()
        assert all(moment is not None for moment in used)

    # The job run again (an RQ retry, a worker restart): nothing is pushed twice.
    push_jobs.send_push(notification_id)
    assert len(push_service.requests) == 4


def test_a_text_from_a_client_is_pushed_to_staff_and_opens_their_conversation(
    app, client, actions, make_business, vapid_key, push_service, run_jobs
):
    business = make_business()
    dedicated_number(app, business["id"])
    client_id = make_known_client(app, business["id"], name="Dana Reyes")
    device = Device(push_service.endpoint("owner"))
    _subscribe(app, business["owner"][0], device)
    assert deliver(client, text_fields("Running 10 min late, sorry!")) == 200
    run_jobs()
    [received] = push_service.pushes_to("owner")
    pushed = device.read(received)
    assert pushed["title"] == "New text"
    assert pushed["body"] == "Dana Reyes: Running 10 min late, sorry!"
    actions.sign_in(business["owner"][1])
    opened = actions.client.get(pushed["url"])
    notification_id = pushed["url"].removeprefix("/notifications/")
    assert opened.headers["Location"] == (
        f"/clients/{client_id}?tab=conversation&notification={notification_id}"
    )


def test_a_notification_for_one_staff_member_reaches_only_their_devices(
    app, make_business, vapid_key, push_service, run_jobs
):
    business = make_business(staff=("staff",))
    _subscribe(app, business["owner"][0], Device(push_service.endpoint("owner")))
    staff_device = Device(push_service.endpoint("staff"))
    _subscribe(app, business["staff"][0], staff_device)
    _notify(app, business["id"], "Your client replied", user_id=business["staff"][0])
    run_jobs()
    assert push_service.pushes_to("owner") == []
    [received] = push_service.pushes_to("staff")
    assert staff_device.read(received)["body"] == "Your client replied"


def test_a_staff_member_whose_access_was_removed_gets_no_pushes(
    app, make_business, vapid_key, push_service, run_jobs
):
    business = make_business(staff=("staff",))
    _subscribe(app, business["staff"][0], Device(push_service.endpoint("staff")))
    with app.app_context():
        db.session.get(User, business["staff"][0]).deactivated_at = utcnow()
        db.session.commit()
    _notify(app, business["id"])
    run_jobs()
    assert push_service.requests == []


def test_each_push_carries_a_vapid_token_for_its_own_push_service(
    app, make_business, vapid_key, push_services, run_jobs
):
    google, mozilla = push_services(), push_services()
    business = make_business(staff=("staff",))
    _subscribe(app, business["owner"][0], Device(google.endpoint("owner")))
    _subscribe(app, business["staff"][0], Device(mozilla.endpoint("staff")))
    _notify(app, business["id"])
    _notify(app, business["id"], "A second text")
    run_jobs()
    with app.app_context():
        public_key = push.application_server_key()
    assert len(google.requests) == 2 and len(mozilla.requests) == 2
    for service in (google, mozilla):
        for request in service.requests:
            claims = _jwt_claims(request, public_key)
            assert claims["aud"] == service.origin
            assert claims["sub"] == "mailto:push@twoway.test"
            assert claims["exp"] > utcnow().timestamp()


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_its_push_service_calls_gone_is_deleted(
    app, make_business, vapid_key, push_service, run_jobs, status
):
    business = make_business()
    _subscribe(app, business["owner"][0], Device(push_service.endpoint("gone")))
    kept = Device(push_service.endpoint("kept"))
    _subscribe(app, business["owner"][0], kept)
    push_service.answer("gone", status)
    _notify(app, business["id"])
    run_jobs()
    assert len(push_service.pushes_to("gone")) == 1
    assert [endpoint for endpoint, _, _ in _subscriptions(app)] == [kept.endpoint]


@pytest.fixture
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(push, "retry_delay", lambda attempt, retry_after: dt.timedelta(0))


def test_a_push_service_error_is_retried_and_the_push_then_sent_once(
    app, make_business, vapid_key, push_service, run_jobs, no_retry_delay
):
    business = make_business()
    device = Device(push_service.endpoint("busy"))
    _subscribe(app, business["owner"][0], device)
    push_service.answer("busy", 503, 429, 201)
    notification_id = _notify(app, business["id"], "Third time lucky")
    run_jobs()
    received = push_service.pushes_to("busy")
    assert len(received) == 3
    assert [device.read(request)["body"] for request in received] == ["Third time lucky"] * 3
    with app.app_context():
        assert db.session.execute(db.select(PushSubscription.last_used_at)).scalar() is not None
    for attempt in (1, 2, 3):  # any attempt run again sends nothing
        push_jobs.retry_push(notification_id, _subscription_id(app), attempt)
    push_jobs.send_push(notification_id)
    assert len(push_service.pushes_to("busy")) == 3


def _subscription_id(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(PushSubscription.id)).scalar_one()


def test_a_push_service_that_keeps_failing_is_tried_a_bounded_number_of_times(
    app, make_business, vapid_key, push_service, run_jobs, no_retry_delay, caplog
):
    business = make_business()
    _subscribe(app, business["owner"][0], Device(push_service.endpoint("down")))
    push_service.answer("down", 500)
    with caplog.at_level(logging.WARNING, logger="app.services.push"):
        _notify(app, business["id"])
        run_jobs()
    assert len(push_service.pushes_to("down")) == push.MAX_ATTEMPTS
    assert len(_subscriptions(app)) == 1  # kept: the push service may recover
    assert "giving up" in caplog.text


@pytest.mark.parametrize("status", [400, 403, 413])
def test_a_push_refused_for_another_reason_is_logged_and_not_retried(
    app, make_business, vapid_key, push_service, run_jobs, no_retry_delay, caplog, status
):
    business = make_business()
    _subscribe(app, business["owner"][0], Device(push_service.endpoint("refused")))
    push_service.answer("refused", status)
    with caplog.at_level(logging.WARNING, logger="app.services.push"):
        _notify(app, business["id"])
        run_jobs()
    assert len(push_service.pushes_to("refused")) == 1
    assert len(_subscriptions(app)) == 1
    assert f"refused: {status}" in caplog.text


def test_an_unreachable_push_service_is_retried_then_given_up(
    app, make_business, vapid_key, run_jobs, no_retry_delay, caplog
):
    business = make_business()
    # A port nothing listens on (its server closed): every attempt fails to connect.
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    _allow_test_origin(app, f"https://127.0.0.1:{port}")
    _subscribe(app, business["owner"][0], Device(f"https://127.0.0.1:{port}/push/x"))
    with caplog.at_level(logging.WARNING, logger="app.services.push"):
        _notify(app, business["id"])
        run_jobs()
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.services.push"]
    assert len(warnings) == push.MAX_ATTEMPTS + 1  # each attempt, then giving up
    assert "giving up" in warnings[-1]


def test_the_retry_delay_follows_retry_after_within_an_hour_else_backs_off():
    assert push.retry_delay(2, "120") == dt.timedelta(seconds=120)
    assert push.retry_delay(2, "999999") == dt.timedelta(hours=1)
    assert push.retry_delay(2, None) == dt.timedelta(seconds=30)
    assert push.retry_delay(3, "Wed, 21 Oct 2026 07:28:00 GMT") == dt.timedelta(minutes=2)


def test_a_push_to_a_device_that_moved_to_another_business_is_not_retried_there(
    app, make_business, vapid_key, push_service, run_jobs, monkeypatch
):
    business = make_business()
    other = make_business()
    device = Device(push_service.endpoint("moved"))
    subscription_id = _subscribe(app, business["owner"][0], device)
    push_service.answer("moved", 503, 201)
    monkeypatch.setattr(push, "retry_delay", lambda attempt, retry_after: dt.timedelta(hours=1))
    notification_id = _notify(app, business["id"], "For the first business only")
    run_jobs()  # first attempt: 503, a retry is scheduled
    _subscribe(app, other["owner"][0], device)  # the browser is now another business's
    push_jobs.retry_push(notification_id, subscription_id, 2)
    assert len(push_service.pushes_to("moved")) == 1


# --- The service worker and the manifest -----------------------------------------------------


def test_the_service_worker_is_served_from_the_site_root_as_javascript(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response.headers["Cache-Control"]
    script = response.get_data(as_text=True)
    assert 'addEventListener("push"' in script and "showNotification" in script
    assert 'addEventListener("notificationclick"' in script and "openWindow" in script
    assert 'addEventListener("fetch"' not in script  # no caching, no offline copy


def test_the_web_app_manifest_covers_the_whole_app(client):
    with client.get("/static/manifest.webmanifest") as response:
        manifest = json.loads(response.get_data(as_text=True))
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert any(icon["src"] == "/static/icon.svg" for icon in manifest["icons"])


def test_the_demo_vapid_key_is_made_once_and_kept(app, tmp_path):
    first = push.development_private_key(str(tmp_path))
    assert push.development_private_key(str(tmp_path)) == first
    assert (tmp_path / "vapid_private_key").stat().st_mode & 0o777 == 0o600
    app.config["VAPID_PRIVATE_KEY"] = first
    with app.app_context():
        key = _b64url_decode(push.application_server_key())
    assert len(key) == 65 and key[0] == 4  # an uncompressed P-256 point, as PushManager wants


def test_a_pem_vapid_key_is_accepted(app):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    app.config["VAPID_PRIVATE_KEY"] = pem
    expected = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    with app.app_context():
        assert push.application_server_key() == _b64url(expected)


@pytest.mark.parametrize(
    "agent, name",
    [
        (CHROME_ON_ANDROID, "Chrome on Android"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Linux",
        ),
        (None, "Unknown browser"),
    ],
)
def test_devices_are_named_by_browser_and_system(agent, name):
    assert push.describe_device(agent) == name


# --- The in-app list -------------------------------------------------------------------------


def test_new_leads_and_texts_are_listed_with_their_links_and_html_in_them_shows_as_text(
    app, actions, make_business
):
    business = make_business()
    lead = _notify(
        app,
        business["id"],
        "New lead <script>alert(1)</script> texted: <b>hi</b>",
        kind="new_lead",
        link="/clients/41",
    )
    text = _notify(app, business["id"], "Dana: <img src=x onerror=alert(2)>", link="/clients/42")
    actions.sign_in(business["owner"][1])
    response = actions.client.get("/notifications")
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    shown = page_text(response)
    assert "New lead <script>alert(1)</script> texted: <b>hi</b>" in shown
    assert "Dana: <img src=x onerror=alert(2)>" in shown
    assert "New lead" in shown and "New text" in shown  # each kind is labelled
    assert f'href="/notifications/{lead}"' in html and f'href="/notifications/{text}"' in html
    opened = lambda n: actions.client.get(f"/notifications/{n}").headers["Location"]  # noqa: E731
    assert opened(lead) == f"/clients/41?notification={lead}"
    assert opened(text) == f"/clients/42?notification={text}"


def test_the_list_refreshes_itself_when_a_notification_arrives(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    page = actions.client.get("/notifications").get_data(as_text=True)
    assert 'hx-trigger="sse:notification-created, notification-read from:body"' in page
    _notify(app, business["id"], "Arrived while the page was open")
    fragment = actions.client.get("/notifications", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert 'id="notification-list"' in body and "<nav" not in body
    assert "Arrived while the page was open" in page_text(fragment)
