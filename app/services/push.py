"""Web Push: staff turn notifications on per device, and every in-app notification is pushed
to the devices of the staff it is for.

- A device's subscription (its push service endpoint and encryption keys, from the browser's
  PushManager) is stored for the signed-in staff member. The same endpoint sent again (or by
  a colleague signing in on that browser) moves to whoever sent it last: one row per browser.
- `notification_created` (app.services.notifications) only queues `jobs.push.send_push`; the
  job pushes to each subscription of the staff the notification is for (one staff member, or
  every active staff member of *its* business), never anyone else.
- Each push is signed with the app's VAPID key and a fresh claims dict: pywebpush writes the
  endpoint's origin (`aud`) and an expiry into the dict it is given, so a shared dict would
  carry the first push service's audience to the next one, which refuses it.
- A push endpoint is an https URL of a public host on the default port: an address on the
  internet, never loopback, private, link-local, shared (CGNAT), multicast, reserved or
  unspecified, and no other port, because the app itself makes the request (a subscription
  could otherwise make it post to anything on our own network). The endpoint is checked when
  it is subscribed (an IP literal, and what a host name resolves to then), and again on every
  connection a push makes: the address actually connected to must be public, so a host name
  that resolves elsewhere later (DNS rebinding) still gets nothing. Tests' push service
  stand-ins listen on 127.0.0.1: only a TESTING app lets `PUSH_TEST_ORIGINS` (set by the tests'
  config, never read from the environment) name such origins.
- Nothing is pushed twice: before each request the (notification, subscription, attempt) is
  claimed in Redis (SET NX), so a job that runs again skips what it already sent. A push
  service that answers 429 or 5xx, or that could not be reached, is tried again later (at most
  `MAX_ATTEMPTS` in all, each attempt its own claim); a read time-out is not, because the push
  may have been accepted (each push's `tag` is the notification's, so even then the device
  shows one). A subscription the push service calls gone (404/410) is deleted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import logging
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, has_app_context
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter
from rq import Retry
from sqlalchemy.exc import IntegrityError
from urllib3 import HTTPSConnectionPool
from urllib3.connection import HTTPSConnection

from app.extensions import db, get_redis
from app.models import Business, Notification, PushSubscription, User
from app.models.types import utcnow
from app.services import notifications, queues

log = logging.getLogger(__name__)

MAX_ENDPOINT_LENGTH = 1000  # PushSubscription.endpoint
MAX_USER_AGENT_LENGTH = 300  # PushSubscription.user_agent
PUSH_TIMEOUT_SECONDS = 10  # one request to a push service
PUSH_TTL_SECONDS = 24 * 3600  # how long a push service keeps a push for an offline device
MAX_ATTEMPTS = 3  # per subscription and notification: the first send and two retries
CLAIM_TTL_SECONDS = 2 * 24 * 3600  # longer than every retry of one notification takes
SEND_JOB_TIMEOUT = 300  # one notification to every device of a business's staff
GONE = {404, 410}

KIND_TITLES = {
    "new_lead": "New lead",
    "text_received": "New text",
    "new_booking": "New booking",
    "booking_cancelled": "Booking cancelled",
    "booking_confirmed": "Booking confirmed",
    "number_verified": "Texting number verified",
    "verification_rejected": "Verification needs changes",
}


class InvalidSubscription(ValueError):
    """The browser's subscription can't be used; the message says why."""


class NonPublicPushAddress(Exception):
    """A push was about to connect to an address that is not a public one (not an OSError:
    urllib3 and requests would retry or wrap those, and this must stop the push as it is)."""


# ---------------------------------------------------------------------------------------------
# VAPID keys


@functools.lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    """The VAPID key from its setting: base64url raw (32 bytes) or DER, or PEM text."""
    if "-----BEGIN" in private_key:
        return Vapid.from_pem(private_key.strip().encode())
    return Vapid.from_string(private_key.strip())


def push_configured() -> bool:
    """True when this app has a VAPID key, so devices can subscribe and pushes can be sent."""
    return bool(current_app.config.get("VAPID_PRIVATE_KEY"))


def application_server_key() -> str | None:
    """The VAPID public key as the browser's PushManager wants it (base64url of the
    uncompressed point), derived from the private key; None when push is not set up."""
    if not push_configured():
        return None
    public = _vapid(current_app.config["VAPID_PRIVATE_KEY"]).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(public)


def vapid_subject() -> str:
    """Who push services contact about our pushes: VAPID_SUBJECT, else MAIL_FROM's address."""
    subject = current_app.config.get("VAPID_SUBJECT")
    if subject:
        return subject
    return "mailto:" + (parseaddr(current_app.config["MAIL_FROM"])[1] or "no-reply@twoway.local")


def new_private_key() -> str:
    """A new VAPID private key in the form VAPID_PRIVATE_KEY takes (base64url, raw)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def development_private_key(instance_path: str) -> str:
    """The demo's VAPID key: generated once into the instance folder, then reused, so devices
    that subscribed stay subscribed across restarts."""
    key_file = Path(instance_path) / "vapid_private_key"
    if not key_file.exists():
        key_file.write_text(new_private_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


# ---------------------------------------------------------------------------------------------
# Devices


# ---------------------------------------------------------------------------------------------
# Push endpoints: https on public hosts only

PUSH_PORT = 443
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses written as IPv6


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address on the public internet. An IPv6 address that carries an IPv4 one
    (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it leads to."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        else:
            address = address.ipv4_mapped or address.sixtofour or address
    return address.is_global and not address.is_multicast


def _test_origin(host: str | None, port: int | None) -> bool:
    """True for an origin a TESTING app's PUSH_TEST_ORIGINS lets through (the tests' push
    services on 127.0.0.1); never in a real deployment."""
    if not has_app_context() or not current_app.testing:
        return False
    return f"https://{host}:{port}" in current_app.config.get("PUSH_TEST_ORIGINS", ())


def _check_public_host(host: str, port: int | None) -> None:
    """Raises InvalidSubscription unless the endpoint's host is public and on port 443. A host
    name that does not resolve now is let through: every connection is checked again."""
    if _test_origin(host, port):
        return
    if port not in (None, PUSH_PORT):
        raise InvalidSubscription("The push endpoint must use the standard https port (443).")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:  # a name (or a number only the resolver reads as an address, "2130706433")
        try:
            found = socket.getaddrinfo(host, PUSH_PORT, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if not all(is_public_address(address) for address in addresses):
        raise InvalidSubscription(
            "The push endpoint must be a public address on the internet, not a local or "
            "private one."
        )


class _PublicOnlyConnection(HTTPSConnection):
    """An https connection that refuses to go on unless the address it connected to is public
    (checked after connecting, before anything is sent: what a host name resolved to at that
    moment, whatever it resolved to before) and the port is 443."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = ipaddress.ip_address(sock.getpeername()[0])
        if not _test_origin(self.host, self.port) and (
            self.port != PUSH_PORT or not is_public_address(peer)
        ):
            sock.close()
            raise NonPublicPushAddress(f"{self.host}:{self.port} is {peer}, not a public address")
        return sock


class _PublicOnlyPool(HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _PublicOnlyPool}


def push_session() -> requests.Session:
    """The HTTP session pushes are sent with: https only, to public addresses only."""
    session = requests.Session()
    session.adapters.clear()
    session.mount("https://", _PublicOnlyAdapter())
    return session


def validate_subscription(endpoint: str, p256dh: str, auth: str) -> None:
    """Raises InvalidSubscription unless this is a subscription a push service could have
    issued: an https endpoint of sane length on a public host, a P-256 public key and a 16-byte
    auth secret."""
    if not endpoint or len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise InvalidSubscription("The push endpoint is missing or too long.")
    if any(ch.isspace() or ord(ch) < 32 for ch in endpoint):
        raise InvalidSubscription("The push endpoint is not a valid address.")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as error:
        raise InvalidSubscription("The push endpoint is not a valid address.") from error
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise InvalidSubscription("The push endpoint must be an https address.")
    _check_public_host(parts.hostname, parts.port)
    try:
        key = _b64url_decode(p256dh) if len(p256dh) <= 200 else b""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    except (ValueError, binascii.Error) as error:
        raise InvalidSubscription("The device's encryption key (p256dh) is not valid.") from error
    try:
        secret = _b64url_decode(auth) if len(auth) <= 100 else b""
    except (ValueError, binascii.Error) as error:
        raise InvalidSubscription("The device's auth secret is not valid.") from error
    if len(secret) != 16:
        raise InvalidSubscription("The device's auth secret is not valid.")


def save_subscription(
    user: User,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str | None,
    now: datetime | None = None,
) -> PushSubscription:
    """Stores this device's subscription for `user` (validated first: nothing is stored when
    it is invalid). An endpoint already stored, for them or another staff member (of any
    business: the browser is the one that subscribed), now belongs to `user`."""
    validate_subscription(endpoint, p256dh, auth)
    agent = (user_agent or "")[:MAX_USER_AGENT_LENGTH] or None
    for _ in range(2):  # a concurrent save of the same endpoint wins the insert: update then
        existing = db.session.execute(
            db.select(PushSubscription).where(PushSubscription.endpoint == endpoint)
        ).scalar_one_or_none()
        subscription = existing or PushSubscription(endpoint=endpoint, created_at=now or utcnow())
        subscription.business_id = user.business_id
        subscription.user_id = user.id
        subscription.p256dh = p256dh
        subscription.auth = auth
        subscription.user_agent = agent
        if existing is None:
            db.session.add(subscription)
        try:
            db.session.commit()
            return subscription
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError("push subscription kept conflicting")  # pragma: no cover


def remove_this_device(user: User, endpoint: str) -> bool:
    """Deletes the staff member's subscription with this endpoint (their browser turned push
    off); False when they had none with it."""
    removed = db.session.execute(
        db.delete(PushSubscription).where(
            PushSubscription.endpoint == endpoint, PushSubscription.user_id == user.id
        )
    ).rowcount
    db.session.commit()
    return removed > 0


def forget_device(user: User, subscription_id: int) -> bool:
    """Deletes the staff member's subscription with this id, if it is still theirs (Remove in
    their list of devices; signing out of a browser turns its notifications off: the next
    person there isn't sent ours); False when they have none with it."""
    removed = db.session.execute(
        db.delete(PushSubscription).where(
            PushSubscription.id == subscription_id, PushSubscription.user_id == user.id
        )
    ).rowcount
    db.session.commit()
    return removed > 0


@dataclass(frozen=True)
class Device:
    """One of a staff member's devices with push on, as the Notifications page lists it."""

    id: int
    name: str
    endpoint: str  # lets this device's page tell which row is itself
    created_at: datetime
    last_used_at: datetime | None


def devices_of(user: User) -> list[Device]:
    """The staff member's devices with push on, newest first."""
    subscriptions = db.session.execute(
        db.select(PushSubscription)
        .where(
            PushSubscription.user_id == user.id,
            PushSubscription.business_id == user.business_id,
        )
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
    ).scalars()
    return [
        Device(
            id=s.id,
            name=describe_device(s.user_agent),
            endpoint=s.endpoint,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
        )
        for s in subscriptions
    ]


_BROWSERS = (
    ("EdgA/", "Edge"),
    ("Edg/", "Edge"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str | None) -> str:
    """A person's name for the device, e.g. "Chrome on Android", from its user agent."""
    agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


# ---------------------------------------------------------------------------------------------
# Sending


def queue_push(sender: object, notification: Notification) -> None:
    """`notification_created` receiver: runs in the sender's request or job, so it only
    queues the job that pushes (and nothing at all when push is not set up)."""
    if not push_configured():
        return
    from jobs.push import send_push

    try:
        queues.enqueue(
            send_push,
            notification.id,
            timeout=SEND_JOB_TIMEOUT,
            # Safe to run again after a crash: every push is claimed before it is sent.
            retry=Retry(max=2, interval=[10, 60]),
        )
    except Exception:  # a push is a courtesy: never fail the change that was just committed
        log.exception("push for notification %s not queued", notification.id)


notifications.notification_created.connect(queue_push)


def push_payload(notification: Notification) -> str:
    """The push for a notification, as the service worker shows it ({title, body, url, tag}):
    opening it goes through the in-app notification, which leads on to its link (the
    conversation, the lead, …), and the page there marks it read."""
    title = KIND_TITLES.get(notification.kind)
    if title is None:
        business = db.session.get(Business, notification.business_id)
        title = business.name if business else "Twoway"
    return json.dumps(
        {
            "title": title,
            "body": notification.text,
            "url": f"/notifications/{notification.id}",
            "tag": f"notification-{notification.id}",
        }
    )


def _targets(notification: Notification):
    """The subscriptions a notification goes to: its staff member's, or every active staff
    member's of its business, and only ever that business's."""
    query = (
        db.select(PushSubscription)
        .join(User, User.id == PushSubscription.user_id)
        .where(
            PushSubscription.business_id == notification.business_id,
            User.business_id == notification.business_id,
            User.deactivated_at.is_(None),
        )
        .order_by(PushSubscription.id)
    )
    if notification.user_id is not None:
        query = query.where(PushSubscription.user_id == notification.user_id)
    return query


def send_push(notification_id: int, *, now: datetime | None = None) -> dict[int, str]:
    """Pushes the notification to every device it is for; returns each subscription's
    outcome (sent, gone, retry, failed, already sent)."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or not push_configured():
        return {}
    subscriptions = list(db.session.execute(_targets(notification)).scalars())
    with push_session() as session:
        return {
            subscription.id: _push_once(notification, subscription, 1, session, now)
            for subscription in subscriptions
        }


def retry_push(
    notification_id: int, subscription_id: int, attempt: int, *, now: datetime | None = None
) -> str | None:
    """Another attempt at one device after its push service said "later"; None when the
    notification or the device is gone, or the device no longer belongs to its staff."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or not push_configured():
        return None
    subscription = db.session.execute(
        _targets(notification).where(PushSubscription.id == subscription_id)
    ).scalar_one_or_none()
    if subscription is None:
        return None
    with push_session() as session:
        return _push_once(notification, subscription, attempt, session, now)


def retry_delay(attempt: int, retry_after: str | None) -> timedelta:
    """How long before attempt `attempt` (2, 3, …): the push service's Retry-After in seconds
    when it gave one (at most an hour), else 30 s, then 2 min."""
    if retry_after and retry_after.strip().isdigit():
        return timedelta(seconds=min(int(retry_after), 3600))
    return timedelta(seconds=30 * 4 ** (attempt - 2))


def _claim(notification_id: int, subscription_id: int, attempt: int) -> bool:
    key = f"twoway:push-sent:{notification_id}:{subscription_id}:{attempt}"
    return bool(get_redis().set(key, 1, nx=True, ex=CLAIM_TTL_SECONDS))


def _push_once(
    notification: Notification,
    subscription: PushSubscription,
    attempt: int,
    session: requests.Session,
    now: datetime | None,
) -> str:
    if not _claim(notification.id, subscription.id, attempt):
        return "already sent"
    config = current_app.config
    status: int | None = None
    retry_after: str | None = None
    try:
        webpush(
            {
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=push_payload(notification),
            vapid_private_key=_vapid(config["VAPID_PRIVATE_KEY"]),
            # A new dict every time: pywebpush adds this endpoint's `aud` (and `exp`) to it.
            vapid_claims={"sub": vapid_subject()},
            timeout=PUSH_TIMEOUT_SECONDS,
            ttl=PUSH_TTL_SECONDS,
            headers={"Urgency": "high"},
            requests_session=session,
        )
    except WebPushException as error:
        status = error.status_code
        retry_after = error.retry_after
        if status in GONE:
            db.session.delete(subscription)
            db.session.commit()
            return "gone"
        if status is None or not (status == 429 or status >= 500):
            log.warning(
                "push %s to subscription %s refused: %s",
                notification.id,
                subscription.id,
                status,
            )
            return "failed"
    except NonPublicPushAddress as error:  # e.g. its host name now resolves to one of ours
        log.warning(
            "push %s to subscription %s refused: %s", notification.id, subscription.id, error
        )
        return "failed"
    except requests.ConnectionError as error:  # never reached the push service's answer
        log.warning("push %s to subscription %s: %s", notification.id, subscription.id, error)
    except requests.Timeout as error:  # sent, no answer: it may be shown, don't send again
        log.warning(
            "push %s to subscription %s timed out: %s", notification.id, subscription.id, error
        )
        return "failed"
    else:
        subscription.last_used_at = now or utcnow()
        db.session.commit()
        return "sent"

    # 429, 5xx or unreachable: later, a bounded number of times.
    if attempt >= MAX_ATTEMPTS:
        log.warning(
            "push %s to subscription %s failed %s times (last: %s); giving up",
            notification.id,
            subscription.id,
            attempt,
            status or "unreachable",
        )
        return "failed"
    from jobs.push import retry_push as retry_job

    delay = retry_delay(attempt + 1, retry_after)
    queues.enqueue(
        retry_job,
        notification.id,
        subscription.id,
        attempt + 1,
        timeout=PUSH_TIMEOUT_SECONDS * 3,
        delay=delay if delay > timedelta(0) else None,
    )
    return "retry"
