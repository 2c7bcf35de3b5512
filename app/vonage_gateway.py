"""The one place Twoway talks to Vonage.

Every call to Vonage's REST APIs (SMS send, Numbers, toll-free verification) and every check of
a signed Vonage webhook goes through this module, and this is the only module that imports the
Vonage SDK. It imports only the sub-packages it uses (``vonage_sms``, ``vonage_numbers``,
``vonage_http_client``): the umbrella ``vonage`` package costs about half a second to import.

The SDK (4.9.1) has sharp edges, listed in ``VONAGE.md``; this module works around each one:

1. The SDK always calls ``https://{host}``. For the local sandbox (``plain_http``) a requests
   adapter mounted on the SDK client's session rewrites the scheme, for our two hosts only.
2. The SDK has no default timeout. Our adapter applies ``VonageSettings.timeout`` to every call.
3. An SDK client keeps one mutable header dict: a JSON call leaves ``Content-Type:
   application/json`` behind for later form calls, and threads sharing a client can swap auth
   headers. Each thread gets its own clients, and form and JSON calls use different clients.
4. On a dropped connection the SDK re-POSTs up to ``pool_maxsize`` times, which would send a
   text twice. Our clients have ``pool_maxsize=1`` (one attempt) and urllib3 retries off; a
   dropped send raises :class:`OutcomeUnknown` so the caller reconciles by client-ref.
5. An ``Auth`` with a signature secret makes the SDK sign its SMS requests, wrongly. We send
   with key + secret (Basic auth) and check webhook signatures with a separate ``Auth``.
6. SDK, pydantic and requests exceptions are all mapped to our own hierarchy below.
7. The SDK logs request data and the Authorization header at DEBUG on the ``vonage`` logger; we
   keep that logger at INFO and drop its DEBUG records.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.metadata
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from flask import current_app
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_exceptions
from urllib3.exceptions import MaxRetryError, NewConnectionError
from vonage_http_client import (
    Auth,
    HttpClient,
    HttpClientOptions,
    HttpRequestError,
    RateLimitedError,
)
from vonage_numbers import (
    ListOwnedNumbersFilter,
    NumberParams,
    Numbers,
    NumbersError,
    SearchAvailableNumbersFilter,
    UpdateNumberParams,
)
from vonage_sms import Sms, SmsError, SmsMessage
from vonage_utils.errors import VonageError

__all__ = [
    "DELIVERY_ERROR_REASONS",
    "SIGNATURE_METHODS",
    "SMS_STATUS_REASONS",
    "AvailableNumber",
    "Gateway",
    "GatewayError",
    "NumberUnavailable",
    "OutcomeUnknown",
    "OwnedNumber",
    "PermanentFailure",
    "SentPart",
    "TemporaryFailure",
    "Throttled",
    "TollFreeVerificationRequest",
    "VerificationStatus",
    "VonageSettings",
    "delivery_failure_reason",
    "get_gateway",
]

log = logging.getLogger(__name__)

SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
"""Vonage's webhook signature methods: the old "MD5 hash" and the four HMAC digests."""

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class GatewayError(Exception):
    """Base of every error this module raises; no SDK or requests exception escapes it."""


class Throttled(GatewayError):
    """Vonage asked us to slow down (SMS status 1 or 10, or HTTP 429): retry later."""


class TemporaryFailure(GatewayError):
    """Vonage or the network failed in a way that is safe to retry.

    Raised for HTTP 5xx, SMS status 5, and failures before the request was sent (connection
    refused, connect timeout, TLS handshake failure). Also for any failure of a read-only call.
    """


class OutcomeUnknown(GatewayError):
    """The request may have reached Vonage, but its answer was lost.

    Raised when the connection dropped or the answer timed out after the request was sent.
    Before sending the same part again, the caller must reconcile by client-ref (a delivery
    receipt carrying it proves the first send went out).
    """


class PermanentFailure(GatewayError):
    """Vonage refused the request; retrying the same request will not help.

    ``code`` is Vonage's status code as a string (SMS statuses such as ``"7"``, or
    ``"http-401"`` style codes for HTTP errors, or ``"invalid-request"`` when the SDK refused
    our parameters before sending). ``reason`` is plain English, fit to show staff.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class NumberUnavailable(GatewayError):
    """The number could not be bought (Vonage answered 420, or it is no longer for sale)."""


SMS_STATUS_REASONS: dict[str, str] = {
    "1": "Vonage is receiving texts faster than our account allows; it will be retried.",
    "2": "The text was missing a required detail (sender, recipient or message).",
    "3": "Vonage said a detail of the text was invalid, such as the recipient's number.",
    "4": "Vonage refused our account credentials.",
    "5": "Vonage had an internal error; it will be retried.",
    "6": "Vonage could not process the text; the recipient's number may not be valid.",
    "7": "The recipient's number is barred from receiving texts.",
    "8": "Our Vonage account is suspended.",
    "9": "Our Vonage account is out of credit.",
    "10": "Too many connections to Vonage at once; it will be retried.",
    "11": "Our Vonage account is not enabled for sending texts this way.",
    "12": "The text is too long.",
    "14": "Vonage could not verify the request's signature.",
    "15": "The sending number is not allowed to send texts (it is not one of our numbers).",
    "22": "The recipient's network code was not recognised.",
    "23": "The delivery receipt address was too long or invalid.",
    "29": "The recipient is not on the allowed list of our demo Vonage account.",
    "32": "A signed request must not also carry the API secret.",
    "33": "The recipient's number is deactivated.",
}
"""Plain-English reasons for the SMS API's non-zero send statuses."""

DELIVERY_ERROR_REASONS: dict[str, str] = {
    "0": "Delivered.",
    "1": "The carrier did not say why the text was not delivered.",
    "2": "The phone was off or out of coverage for too long.",
    "3": "The number is not in service.",
    "4": "The recipient has blocked texts from this sender.",
    "5": "The number was ported to another carrier and could not be reached.",
    "6": "The carrier rejected the text as spam.",
    "7": "The phone was busy and the text could not be delivered.",
    "8": "A network error stopped the text.",
    "9": "The number is not a valid phone number.",
    "10": "The carrier rejected the text's content.",
    "11": "The text could not be routed to the recipient's carrier.",
    "12": "The recipient could not be reached.",
    "13": "The text was blocked by an age restriction.",
    "14": "The recipient's carrier blocked the text.",
}
"""Plain-English reasons for delivery-receipt ``err-code`` values."""


def delivery_failure_reason(err_code: str) -> str:
    """Return a plain-English reason for a delivery receipt's ``err-code``."""
    return DELIVERY_ERROR_REASONS.get(
        str(err_code), f"The carrier could not deliver the text (error {err_code})."
    )


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


@dataclass(frozen=True)
class VonageSettings:
    """Everything the gateway needs to reach Vonage (or the sandbox)."""

    api_key: str
    api_secret: str
    signature_secret: str
    signature_method: str = "sha256"
    rest_host: str = "rest.nexmo.com"
    api_host: str = "api.nexmo.com"
    timeout: float = 10.0
    webhook_max_age: int = 300
    """Seconds a signed webhook's timestamp may be old (or in the future)."""
    plain_http: bool = False
    """True only for the local sandbox: call rest_host and api_host over plain HTTP."""

    def __post_init__(self) -> None:
        if self.signature_method not in SIGNATURE_METHODS:
            raise ValueError(
                f"VONAGE_SIGNATURE_METHOD must be one of {', '.join(SIGNATURE_METHODS)}"
            )
        if not self.api_key or not self.api_secret:
            raise ValueError("VONAGE_API_KEY and VONAGE_API_SECRET must be set")
        if self.timeout <= 0:
            raise ValueError("VONAGE_TIMEOUT must be positive")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VonageSettings:
        """Build settings from a Flask config (or any mapping) using the ``VONAGE_*`` keys."""
        defaults = cls.__dataclass_fields__
        return cls(
            api_key=str(config.get("VONAGE_API_KEY") or ""),
            api_secret=str(config.get("VONAGE_API_SECRET") or ""),
            signature_secret=str(config.get("VONAGE_SIGNATURE_SECRET") or ""),
            signature_method=str(
                config.get("VONAGE_SIGNATURE_METHOD") or defaults["signature_method"].default
            ).lower(),
            rest_host=str(config.get("VONAGE_REST_HOST") or defaults["rest_host"].default),
            api_host=str(config.get("VONAGE_API_HOST") or defaults["api_host"].default),
            timeout=float(config.get("VONAGE_TIMEOUT") or defaults["timeout"].default),
            webhook_max_age=int(
                config.get("VONAGE_WEBHOOK_MAX_AGE") or defaults["webhook_max_age"].default
            ),
            plain_http=_as_bool(config.get("VONAGE_PLAIN_HTTP", False)),
        )


@dataclass(frozen=True)
class SentPart:
    """Vonage's answer to one accepted part."""

    message_id: str
    price: str | None
    network: str | None
    remaining_balance: str | None = None
    message_count: int = 1
    """Parts Vonage made of it; more than 1 means our own splitting let a long part through."""


@dataclass(frozen=True)
class AvailableNumber:
    """A number Vonage offers for sale."""

    msisdn: str
    country: str
    type: str | None
    cost: str | None
    features: tuple[str, ...]


@dataclass(frozen=True)
class OwnedNumber:
    """A number our Vonage account rents."""

    msisdn: str
    country: str | None
    type: str | None
    features: tuple[str, ...]
    inbound_url: str | None


@dataclass(frozen=True)
class TollFreeVerificationRequest:
    """What the carriers need to verify a toll-free number for texting."""

    business_name: str
    street: str
    city: str
    state: str
    postal_code: str
    country: str
    website: str
    contact_first_name: str
    contact_last_name: str
    contact_email: str
    contact_phone: str
    use_case: str
    use_case_summary: str
    sample_messages: tuple[str, ...]
    opt_in_workflow: str
    numbers: tuple[str, ...]
    monthly_volume: int = 1000
    brand_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request body of Vonage's TFN registration API."""
        business: dict[str, Any] = {
            "name": self.business_name,
            "address": {
                "street": self.street,
                "city": self.city,
                "state": self.state,
                "postal_code": self.postal_code,
                "country": self.country,
            },
            "company_website": self.website,
            "contact": {
                "first_name": self.contact_first_name,
                "last_name": self.contact_last_name,
                "email": self.contact_email,
                "phone": _digits(self.contact_phone),
            },
        }
        if self.brand_name:
            business["brand_name"] = self.brand_name
        return {
            "business": business,
            "use_case": {
                "category": self.use_case,
                "summary": self.use_case_summary,
                "message_samples": list(self.sample_messages),
                "opt_in_workflow": self.opt_in_workflow,
                "estimated_monthly_volume": self.monthly_volume,
            },
            "numbers": [_digits(n) for n in self.numbers],
        }


VerificationState = Literal["pending", "verified", "rejected"]


@dataclass(frozen=True)
class VerificationStatus:
    """Where a toll-free verification stands, in the product's words and Vonage's."""

    state: VerificationState
    raw_status: str
    reason: str | None


_VERIFIED_STATUSES = frozenset({"REGISTERED"})
_REJECTED_STATUSES = frozenset({"REJECTED", "UPDATES_REQUIRED", "BLOCKED"})


def _verification_state(raw_status: str) -> VerificationState:
    if raw_status in _VERIFIED_STATUSES:
        return "verified"
    if raw_status in _REJECTED_STATUSES:
        return "rejected"
    return "pending"  # DRAFT, IN_REVIEW, CARRIER_REVIEW and anything new


def _digits(number: str) -> str:
    """Vonage wants E.164 without the ``+``; leave short codes and alphanumerics alone."""
    number = number.strip()
    if number.startswith("+") and number[1:].isdigit():
        return number[1:]
    return number


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _QuietSdkDebug(logging.Filter):
    """Drops the SDK's DEBUG records: they print request data and the Authorization header."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


_sdk_logger = logging.getLogger("vonage")
_sdk_filter = _QuietSdkDebug()


def _quiet_sdk_logger() -> None:
    """Keep the ``vonage`` logger at INFO or above, even when the root logger is at DEBUG."""
    if _sdk_logger.level < logging.INFO:  # NOTSET (0) inherits the root's level
        _sdk_logger.setLevel(logging.INFO)
    if _sdk_filter not in _sdk_logger.filters:
        _sdk_logger.addFilter(_sdk_filter)


_quiet_sdk_logger()


class _VonageAdapter(HTTPAdapter):
    """The transport under every SDK client.

    One connection, no urllib3 retries, our timeout on every request, and (for the sandbox)
    ``https://`` rewritten to ``http://`` for the configured hosts only.
    """

    def __init__(self, *, timeout: float, plain_http_hosts: frozenset[str]) -> None:
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)
        self._timeout = timeout
        self._plain_http_hosts = plain_http_hosts

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send with our timeout, after rewriting the scheme for plain-HTTP hosts."""
        url = request.url or ""
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.netloc.lower() in self._plain_http_hosts:
            request.url = urlunsplit(("http", *parts[1:]))
        return super().send(
            request,
            stream=stream,
            timeout=(self._timeout, self._timeout),
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


@dataclass
class _ThreadClients:
    """One thread's SDK clients: form-encoded calls and JSON calls never share a client."""

    form: HttpClient
    json: HttpClient
    sms: Sms
    numbers: Numbers


T = TypeVar("T")


def _sdk_version() -> str:
    try:
        return importlib.metadata.version("vonage")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - always installed
        return "unknown"


def _request_never_left(exc: requests.RequestException) -> bool:
    """True when the failure happened before any byte of the request reached Vonage.

    Connection refused, DNS failure, connect timeout, TLS handshake failure and a malformed
    URL qualify. A dropped connection or a read timeout does not: Vonage may have acted.
    """
    if isinstance(
        exc,
        requests.ConnectTimeout
        | requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema,
    ):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(
        reason.reason, NewConnectionError | urllib3_exceptions.SSLError
    )


def _error_label(response: requests.Response) -> str:
    """Vonage's own words from an error answer, whichever API format it used."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    for key in ("error-code-label", "detail", "title", "error_title", "error-text"):
        if body.get(key):
            return str(body[key])
    return str(body)[:200]


# --------------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------------


class Gateway:
    """Calls Vonage for Twoway. Safe to share between threads: each thread gets its own clients.

    Every method raises only :class:`GatewayError` subclasses.
    """

    def __init__(self, settings: VonageSettings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._all_clients: list[HttpClient] = []
        self._clients_lock = threading.Lock()
        self._plain_http_hosts = (
            frozenset({settings.rest_host.lower(), settings.api_host.lower()})
            if settings.plain_http
            else frozenset()
        )
        # A separate Auth that only checks webhook signatures: giving the sending clients a
        # signature secret would switch the SDK to signed (and wrongly signed) requests.
        self._signature_auth: Auth | None = None
        if settings.signature_secret and settings.signature_method != "md5hash":
            self._signature_auth = Auth(
                api_key=settings.api_key,
                signature_secret=settings.signature_secret,
                signature_method=settings.signature_method,
            )
        _quiet_sdk_logger()

    # -- clients -------------------------------------------------------------------------

    def _new_client(self) -> HttpClient:
        settings = self.settings
        client = HttpClient(
            Auth(api_key=settings.api_key, api_secret=settings.api_secret),
            HttpClientOptions(
                api_host=settings.api_host,
                rest_host=settings.rest_host,
                timeout=max(1, math.ceil(settings.timeout)),  # the adapter applies the exact one
                pool_connections=1,
                pool_maxsize=1,  # the SDK re-sends a dropped request pool_maxsize - 1 times
                max_retries=0,
            ),
            _sdk_version(),
        )
        adapter = _VonageAdapter(timeout=settings.timeout, plain_http_hosts=self._plain_http_hosts)
        session: requests.Session = client._session
        session.mount("https://", adapter)
        client._adapter = adapter
        with self._clients_lock:
            self._all_clients.append(client)
        return client

    def _clients(self) -> _ThreadClients:
        """This thread's clients, made on first use."""
        clients: _ThreadClients | None = getattr(self._local, "clients", None)
        if clients is None:
            form_client = self._new_client()
            clients = _ThreadClients(
                form=form_client,
                json=self._new_client(),
                sms=Sms(form_client),
                numbers=Numbers(form_client),
            )
            self._local.clients = clients
        return clients

    def prepare(self) -> None:
        """Build this thread's SDK clients now (the first build is slow): a sender calls it
        before taking a rate-limited slot, so the first call does not reach Vonage late."""
        self._clients()

    def close(self) -> None:
        """Close every connection this gateway opened, in every thread."""
        with self._clients_lock:
            clients, self._all_clients = self._all_clients, []
        for client in clients:
            client._session.close()
        self._local = threading.local()

    # -- error mapping -------------------------------------------------------------------

    def _call(self, call: Callable[[], T], *, idempotent: bool) -> T:
        """Run one SDK call, turning everything it can raise into a :class:`GatewayError`.

        ``idempotent`` calls (reads) are safe to repeat, so a lost answer is a temporary
        failure for them rather than an unknown outcome.
        """
        try:
            return call()
        except RateLimitedError as exc:
            raise Throttled("Vonage answered 429 Too Many Requests") from exc
        except HttpRequestError as exc:
            status = exc.response.status_code
            label = _error_label(exc.response)
            if status >= 500:
                raise TemporaryFailure(f"Vonage answered {status}: {label}") from exc
            if status in (401, 403):
                raise PermanentFailure(
                    f"http-{status}", "Vonage refused our API key and secret."
                ) from exc
            raise PermanentFailure(
                f"http-{status}", f"Vonage refused the request: {label}"
            ) from exc
        except requests.RequestException as exc:
            if idempotent or _request_never_left(exc):
                raise TemporaryFailure(f"Could not reach Vonage: {exc}") from exc
            raise OutcomeUnknown(f"Vonage's answer was lost: {exc}") from exc
        except ValidationError as exc:
            raise PermanentFailure(
                "invalid-request", f"The request was not valid: {exc.errors()[0]['msg']}"
            ) from exc
        except NumbersError as exc:
            raise PermanentFailure("numbers-error", f"Vonage refused the request: {exc}") from exc
        except (VonageError, KeyError, TypeError, ValueError) as exc:
            # An answer we could not read: for a send, it may still have gone out.
            if idempotent:
                raise TemporaryFailure(f"Unreadable answer from Vonage: {exc!r}") from exc
            raise OutcomeUnknown(f"Unreadable answer from Vonage: {exc!r}") from exc

    # -- SMS -----------------------------------------------------------------------------

    def send_part(
        self,
        *,
        sender: str,
        to: str,
        text: str,
        unicode: bool,
        client_ref: str,
        callback_url: str | None = None,
    ) -> SentPart:
        """Send one part (one SMS API call) and return Vonage's message id for it.

        ``client_ref`` is echoed in the delivery receipt; it is what ties a receipt to the part
        when this call raises :class:`OutcomeUnknown`.
        """
        try:
            message = SmsMessage(
                to=_digits(to),
                from_=_digits(sender),
                text=text,
                type="unicode" if unicode else "text",
                client_ref=client_ref,
                callback=callback_url,
            )
        except ValidationError as exc:
            raise PermanentFailure(
                "invalid-request", f"The text was not valid: {exc.errors()[0]['msg']}"
            ) from exc
        clients = self._clients()

        def send() -> requests.Response | None:
            # The SDK raises SmsError for any non-zero part status with the code only in its
            # message text (and KeyError on odd answers); the answer itself is still on the
            # client, so the status is read from there.
            clients.form._last_response = None  # never read a previous call's answer
            with contextlib.suppress(SmsError, KeyError, TypeError, ValidationError):
                clients.sms.send(message)
            return clients.form.last_response

        return self._read_send_answer(self._call(send, idempotent=False))

    @staticmethod
    def _read_send_answer(response: requests.Response | None) -> SentPart:
        """The sent part from the SMS API's answer, or the error its status means."""
        try:
            body = response.json() if response is not None else None
            messages = body["messages"]
            failed = [m for m in messages if str(m.get("status")) != "0"]
            first = messages[0]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise OutcomeUnknown("Vonage's answer to the send could not be read") from exc
        if failed:
            status = str(failed[0].get("status"))
            error_text = str(failed[0].get("error-text") or "")
            if status in ("1", "10"):
                raise Throttled(f"Vonage throttled the send (status {status}: {error_text})")
            if status == "5":
                raise TemporaryFailure(f"Vonage had an internal error (status 5: {error_text})")
            reason = SMS_STATUS_REASONS.get(
                status, f"Vonage refused the text (status {status}: {error_text})."
            )
            raise PermanentFailure(status, reason)
        try:
            return SentPart(
                message_id=str(first["message-id"]),
                price=first.get("message-price"),
                network=first.get("network"),
                remaining_balance=first.get("remaining-balance"),
                message_count=int(body.get("message-count", len(messages))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise OutcomeUnknown("Vonage accepted the send but its answer was unreadable") from exc

    # -- Numbers -------------------------------------------------------------------------

    def search_numbers(
        self, country: str, *, number_type: str = "landline-toll-free", features: str = "SMS"
    ) -> list[AvailableNumber]:
        """Numbers for sale in ``country`` (ISO code), toll-free with SMS by default."""
        numbers = self._clients().numbers

        def search() -> list[AvailableNumber]:
            found, _count, _next = numbers.search_available_numbers(
                SearchAvailableNumbersFilter(
                    country=country.upper(), type=number_type, features=features, size=100
                )
            )
            return [
                AvailableNumber(
                    msisdn=str(n.msisdn),
                    country=str(n.country or country.upper()),
                    type=n.type,
                    cost=n.cost,
                    features=tuple(n.features or ()),
                )
                for n in found
                if n.msisdn
            ]

        return self._call(search, idempotent=True)

    def buy_number(self, country: str, msisdn: str) -> None:
        """Buy ``msisdn``; raises :class:`NumberUnavailable` if it is no longer for sale."""
        numbers = self._clients().numbers
        params = {"country": country.upper(), "msisdn": _digits(msisdn)}
        try:
            self._call(lambda: numbers.buy_number(NumberParams(**params)), idempotent=False)
        except PermanentFailure as exc:
            if exc.code == "http-420":
                raise NumberUnavailable(f"{msisdn} is not available to buy") from exc
            raise

    def update_number(self, country: str, msisdn: str, *, inbound_url: str) -> None:
        """Point the number's inbound texts at ``inbound_url`` (Vonage's ``moHttpUrl``).

        Vonage checks the URL with a GET first, so the endpoint must already answer 200.
        """
        numbers = self._clients().numbers
        params = UpdateNumberParams(
            country=country.upper(), msisdn=_digits(msisdn), mo_http_url=inbound_url
        )
        self._call(lambda: numbers.update_number(params), idempotent=True)

    def cancel_number(self, country: str, msisdn: str) -> None:
        """Stop renting ``msisdn``; it goes back to Vonage."""
        numbers = self._clients().numbers
        params = {"country": country.upper(), "msisdn": _digits(msisdn)}
        self._call(lambda: numbers.cancel_number(NumberParams(**params)), idempotent=False)

    def owned_numbers(self) -> list[OwnedNumber]:
        """Every number the account rents, all pages."""
        numbers = self._clients().numbers

        def list_all() -> list[OwnedNumber]:
            owned: list[OwnedNumber] = []
            index: int | None = 1
            while index is not None:
                page, _count, index = numbers.list_owned_numbers(
                    ListOwnedNumbersFilter(size=100, index=index)
                )
                owned.extend(
                    OwnedNumber(
                        msisdn=str(n.msisdn),
                        country=n.country,
                        type=n.type,
                        features=tuple(n.features or ()),
                        inbound_url=n.mo_http_url or None,
                    )
                    for n in page
                    if n.msisdn
                )
            return owned

        return self._call(list_all, idempotent=True)

    # -- Toll-free verification (no SDK support: the generic JSON client) ----------------

    def submit_tollfree_verification(self, details: TollFreeVerificationRequest) -> str:
        """Start the carriers' verification of toll-free numbers; returns the registration id."""
        client = self._clients().json
        body = self._call(
            lambda: client.post(
                self.settings.api_host,
                "/tfn/v1/registrations",
                details.to_json(),
                auth_type="basic",
                sent_data_type="json",
            ),
            idempotent=False,
        )
        try:
            return str(body["id"])
        except (KeyError, TypeError) as exc:
            raise OutcomeUnknown("Vonage's answer to the registration was unreadable") from exc

    def resubmit_tollfree_verification(
        self, registration_id: str, details: TollFreeVerificationRequest
    ) -> None:
        """Send corrected details for a rejected registration (PATCH), which resubmits it."""
        client = self._clients().json
        path = f"/tfn/v1/registrations/{quote(registration_id, safe='')}"
        self._call(
            lambda: client.patch(
                self.settings.api_host,
                path,
                details.to_json(),
                auth_type="basic",
                sent_data_type="json",
            ),
            idempotent=True,
        )

    def tollfree_verification_status(self, registration_id: str) -> VerificationStatus:
        """Where the registration stands: pending, verified, or rejected with the reason."""
        client = self._clients().json
        path = f"/tfn/v1/registrations/{quote(registration_id, safe='')}"
        body = self._call(
            lambda: client.get(self.settings.api_host, path, auth_type="basic"),
            idempotent=True,
        )
        try:
            raw_status = str(body["status"]).upper()
        except (KeyError, TypeError) as exc:
            raise TemporaryFailure("Vonage's registration answer had no status") from exc
        reason = body.get("rejection_reason") or body.get("reason") or None
        return VerificationStatus(
            state=_verification_state(raw_status),
            raw_status=raw_status,
            reason=str(reason) if reason else None,
        )

    # -- Webhook signatures ----------------------------------------------------------------

    def check_webhook_signature(
        self, params: Mapping[str, Any], *, now: float | None = None
    ) -> bool:
        """True only for a webhook signed with our secret whose timestamp is fresh.

        Unsigned parameters, a wrong signature, and a timestamp more than
        ``webhook_max_age`` seconds old or in the future are all refused.
        """
        secret = self.settings.signature_secret
        values = {str(k): v for k, v in params.items()}
        sig = values.get("sig")
        if not secret or not isinstance(sig, str) or not sig:
            return False
        try:
            timestamp = int(str(values.get("timestamp", "")).strip())
        except ValueError:
            return False
        current = time.time() if now is None else now
        if abs(current - timestamp) > self.settings.webhook_max_age:
            return False
        if self._signature_auth is not None:
            try:
                return bool(self._signature_auth.check_signature(dict(values)))
            except (ValidationError, TypeError, ValueError):
                return False
        expected = _md5_hash_signature(values, secret)
        return hmac.compare_digest(sig.lower(), expected)


def _md5_hash_signature(params: Mapping[str, Any], secret: str) -> str:
    """Vonage's old "MD5 hash" signature, which the SDK cannot check."""
    base = "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )
    return hashlib.md5((base + secret).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Flask integration
# --------------------------------------------------------------------------------------------

_gateways: dict[VonageSettings, Gateway] = {}
_gateways_lock = threading.Lock()


def get_gateway() -> Gateway:
    """The gateway for the current Flask app's ``VONAGE_*`` settings.

    One :class:`Gateway` per distinct settings, shared by threads; it keeps separate SDK
    clients per thread.
    """
    settings = VonageSettings.from_config(current_app.config)
    with _gateways_lock:
        gateway = _gateways.get(settings)
        if gateway is None:
            gateway = _gateways[settings] = Gateway(settings)
        return gateway
