"""The sandbox's memory: settings, faults, numbers, texts, registrations, webhook deliveries.

Everything lives in one :class:`SandboxState` behind one lock, in one process.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.delivery import Deliverer
from sandbox.signing import SIGNATURE_METHODS
from sandbox.texts import is_gsm, split_parts


def _numbers(prefix: str, start: int, count: int) -> list[str]:
    return [f"{prefix}{n:04d}" for n in range(start, start + count)]


DEFAULT_CONFIG: dict[str, Any] = {
    # Credentials the sandbox accepts, and the secret it signs webhooks with.
    "api_key": "sandbox-key",
    "api_secret": "sandbox-secret",
    "signature_secret": "sandbox-signature-secret",
    "signature_method": "sha256",  # md5hash, md5, sha1, sha256 or sha512
    # Where webhooks go. A number's own moHttpUrl wins over inbound_url for inbound texts;
    # a send's ``callback`` parameter wins over status_url for delivery receipts.
    "inbound_url": None,
    "status_url": None,
    "webhook_method": "POST",  # GET (query), POST (form) or POST-JSON, as in Vonage's dashboard
    "receipt_delay": 1.0,  # seconds between accepting a text and sending its receipt
    "verification_delay": None,  # seconds until a submitted verification is approved; None: button
    "webhook_retry_base": 0.5,  # first retry after this many seconds, then doubling...
    "webhook_retry_max": 30.0,  # ...up to this
    "webhook_max_attempts": 10,
    "webhook_timeout": 15.0,
    "probe_webhooks": True,  # GET a moHttpUrl before accepting it, like Vonage
    "check_sender": True,  # refuse (status 15) texts from numbers the account does not own
    "system_numbers": ["18885550000", "18885550001"],  # owned from the start (US toll-free)
    "available_numbers": {
        "US": _numbers("1888555", 100, 100),
        "CA": _numbers("1844555", 100, 50),
    },
    "balance": "100.00000000",
    "message_price": "0.00790000",
    "number_cost": "0.98",
    "network": "310260",
}

SETTABLE_AT_RUNTIME = frozenset(DEFAULT_CONFIG) - {"system_numbers", "available_numbers"}
WEBHOOK_METHODS = ("GET", "POST", "POST-JSON")
REGISTRATION_STATUSES = (
    "DRAFT",
    "CARRIER_REVIEW",
    "REGISTERED",
    "REJECTED",
    "UPDATES_REQUIRED",
    "BLOCKED",
)
EDITABLE_STATUSES = frozenset({"DRAFT", "UPDATES_REQUIRED", "REJECTED"})


class SandboxError(ValueError):
    """Bad input to a sandbox control (faults, settings, simulator forms)."""


@dataclass
class Faults:
    """Failures the sandbox injects into its Vonage API endpoints.

    Counters (``*_count``) are used up one request or receipt at a time.
    """

    throttle_per_second: int | None = None  # answer status "1" (HTTP 200) past N sends/second
    http_error_count: int = 0  # the next K API requests answer http_error_status
    http_error_status: int = 500
    drop_count: int = 0  # the next K API requests get their connection closed, no answer
    drop_after_processing: bool = True  # True: the request took effect before the drop
    delay_seconds: float = 0.0  # every API answer waits this long (after processing)
    fail_delivery_count: int = 0  # the next K receipts say failed with fail_delivery_err_code
    fail_delivery_err_code: str = "1"
    fail_delivery_to: dict[str, str] = field(default_factory=dict)  # recipient -> err-code
    reject_count: int = 0  # the next K sends answer SMS status reject_status
    reject_status: str = "7"
    paths: list[str] | None = None  # API path prefixes the HTTP faults apply to; None: all

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the given fields, checking and converting their types."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise SandboxError(f"unknown fault {name!r}")
            setattr(self, name, _coerce_fault(name, value))


def _coerce_fault(name: str, value: Any) -> Any:
    try:
        if name == "throttle_per_second":
            return None if value in (None, "", 0, "0") else max(1, int(value))
        if name in ("http_error_count", "drop_count", "fail_delivery_count", "reject_count"):
            return max(0, int(value or 0))
        if name == "http_error_status":
            status = int(value)
            if not 400 <= status <= 599:
                raise SandboxError("http_error_status must be 4xx or 5xx")
            return status
        if name == "delay_seconds":
            return max(0.0, float(value or 0))
        if name == "drop_after_processing":
            return _as_bool(value)
        if name in ("fail_delivery_err_code", "reject_status"):
            return str(value).strip()
        if name == "fail_delivery_to":
            if isinstance(value, str):  # "15551234567=6, 15557654321" from the simulator form
                result = {}
                for item in filter(None, (i.strip() for i in value.split(","))):
                    number, _, code = item.partition("=")
                    result[number.strip().lstrip("+")] = code.strip() or "1"
                return result
            return {str(k).lstrip("+"): str(v) for k, v in dict(value or {}).items()}
        if name == "paths":
            if value in (None, "", []):
                return None
            items = value.split(",") if isinstance(value, str) else value
            return [str(p).strip() for p in items if str(p).strip()]
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"bad value for {name}: {value!r}") from exc
    raise SandboxError(f"unknown fault {name!r}")  # pragma: no cover


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _optional_float(value: Any) -> float | None:
    if value in (None, "", "none", "None"):
        return None
    return max(0.0, float(value))


def _coerce_setting(name: str, value: Any) -> Any:
    try:
        if name in ("inbound_url", "status_url"):
            return str(value).strip() or None if value is not None else None
        if name == "webhook_method":
            method = str(value).upper()
            if method not in WEBHOOK_METHODS:
                raise SandboxError(f"webhook_method must be one of {', '.join(WEBHOOK_METHODS)}")
            return method
        if name == "signature_method":
            if value not in SIGNATURE_METHODS:
                raise SandboxError(f"signature_method must be one of {SIGNATURE_METHODS}")
            return value
        if name == "verification_delay":
            return _optional_float(value)
        if name in ("receipt_delay", "webhook_retry_base", "webhook_retry_max", "webhook_timeout"):
            return max(0.0, float(value))
        if name == "webhook_max_attempts":
            return max(1, int(value))
        if name in ("probe_webhooks", "check_sender"):
            return _as_bool(value)
        if name in ("balance", "message_price"):
            return str(Decimal(str(value)))
        return str(value)
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise SandboxError(f"bad value for {name}: {value!r}") from exc


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def vonage_timestamp(moment: datetime | None = None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, as in Vonage's webhooks."""
    return (moment or utc_now()).strftime("%Y-%m-%d %H:%M:%S")


def new_message_id() -> str:
    """A Vonage-style message id: 16 upper-case hex characters."""
    return secrets.token_hex(8).upper()


def _country_of(msisdn: str) -> str:
    return "CA" if msisdn.startswith(("1844", "1833")) else "US"


class SandboxState:
    """All of the sandbox's state, behind ``self.lock``."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        unknown = set(config or {}) - set(DEFAULT_CONFIG)
        if unknown:
            raise SandboxError(f"unknown sandbox config: {', '.join(sorted(unknown))}")
        self.defaults = copy.deepcopy(DEFAULT_CONFIG)
        for name, value in (config or {}).items():
            if name in ("system_numbers", "available_numbers"):
                self.defaults[name] = copy.deepcopy(value)
            else:
                self.defaults[name] = _coerce_setting(name, value)
        self.lock = threading.RLock()
        self.deliverer = Deliverer(self)
        self.reset()

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the configured start: no texts, no faults, stock numbers, no deliveries."""
        self.deliverer.cancel_all()
        with self.lock:
            self.settings: dict[str, Any] = copy.deepcopy(self.defaults)
            self.faults = Faults()
            self.requests: list[dict[str, Any]] = []
            self.client_ref_counts: Counter[str] = Counter()
            self.messages: list[dict[str, Any]] = []
            self.inbound: list[dict[str, Any]] = []
            self.webhooks: list[dict[str, Any]] = []
            self.handsets: list[str] = []
            self.registrations: dict[str, dict[str, Any]] = {}
            self.balance = Decimal(self.settings["balance"])
            self.recent_sends: deque[float] = deque()
            self.owned: dict[str, dict[str, Any]] = {}
            for entry in self.settings["system_numbers"]:
                number = dict(entry) if isinstance(entry, dict) else {"msisdn": str(entry)}
                msisdn = number["msisdn"].lstrip("+")
                self.owned[msisdn] = self.number_record(
                    msisdn, number.get("country") or _country_of(msisdn), system=True
                )
            self.available: dict[str, list[str]] = {
                country.upper(): [n.lstrip("+") for n in numbers if n.lstrip("+") not in self.owned]
                for country, numbers in self.settings["available_numbers"].items()
            }

    def shutdown(self) -> None:
        """Stop every pending webhook delivery."""
        self.deliverer.cancel_all()

    @staticmethod
    def number_record(msisdn: str, country: str, *, system: bool = False) -> dict[str, Any]:
        """A number as the account holds it (Vonage's owned-number fields plus ``system``)."""
        return {
            "country": country.upper(),
            "msisdn": msisdn,
            "moHttpUrl": None,
            "type": "landline-toll-free",
            "features": ["SMS", "VOICE"],
            "system": system,
        }

    # -- settings and faults ---------------------------------------------------------------

    def update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change settings at runtime; returns the settings now in force."""
        with self.lock:
            for name, value in changes.items():
                if name not in SETTABLE_AT_RUNTIME:
                    raise SandboxError(f"unknown or fixed setting {name!r}")
                self.settings[name] = _coerce_setting(name, value)
                if name == "balance":
                    self.balance = Decimal(self.settings["balance"])
            return dict(self.settings)

    def update_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Set faults (``{"clear": true}`` first clears them all); returns the faults in force."""
        with self.lock:
            changes = dict(changes)
            if _as_bool(changes.pop("clear", False)):
                self.faults = Faults()
            trial = copy.deepcopy(self.faults)
            trial.update(changes)
            self.faults = trial
            return asdict(self.faults)

    def fault_applies(self, path: str) -> bool:
        """True when the HTTP faults cover this API path."""
        paths = self.faults.paths
        return paths is None or any(path.startswith(p) for p in paths)

    def take_http_fault(self, path: str) -> tuple[str | None, int, float]:
        """Use up one HTTP fault for a request to ``path``.

        Returns (action, HTTP status for "error", delay seconds), where action is None,
        "drop-before", "drop-after" or "error".
        """
        with self.lock:
            faults = self.faults
            if not self.fault_applies(path):
                return None, 0, 0.0
            if faults.drop_count > 0:
                faults.drop_count -= 1
                action = "drop-after" if faults.drop_after_processing else "drop-before"
                return action, 0, faults.delay_seconds
            if faults.http_error_count > 0:
                faults.http_error_count -= 1
                return "error", faults.http_error_status, faults.delay_seconds
            return None, 0, faults.delay_seconds

    # -- requests --------------------------------------------------------------------------

    def record_request(
        self,
        *,
        method: str,
        path: str,
        content_type: str,
        auth: str | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        """Remember one API request, duplicates included; returns the record."""
        shown = {k: ("***" if k in ("api_secret", "sig") else v) for k, v in params.items()}
        client_ref = params.get("client-ref")
        with self.lock:
            record = {
                "seq": len(self.requests) + 1,
                "at": time.time(),
                "method": method,
                "path": path,
                "content_type": content_type,
                "auth": auth,
                "params": shown,
                "client_ref": client_ref,
                "outcome": None,
            }
            self.requests.append(record)
            if client_ref:
                self.client_ref_counts[str(client_ref)] += 1
            return record

    def throttled(self, now: float | None = None) -> bool:
        """True when one more send this second would pass the throttle fault's rate."""
        limit = self.faults.throttle_per_second
        if not limit:
            return False
        now = time.monotonic() if now is None else now
        while self.recent_sends and now - self.recent_sends[0] >= 1.0:
            self.recent_sends.popleft()
        return len(self.recent_sends) >= limit

    # -- sending ---------------------------------------------------------------------------

    def accept_send(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Store an accepted text (split into parts if too long) and schedule its receipts.

        Call with the lock held, after validation. Returns the stored parts.
        """
        text = params.get("text", "")
        msg_type = params.get("type") or "text"
        unicode = msg_type == "unicode"
        garbled = not unicode and not is_gsm(text)
        pieces = split_parts(text, unicode)
        price = Decimal(self.settings["message_price"])
        self.recent_sends.append(time.monotonic())
        callback = params.get("callback") or self.settings["status_url"]
        recipient = params["to"]
        if recipient not in self.handsets:
            self.handsets.append(recipient)
        parts = []
        for number, piece in enumerate(pieces, start=1):
            self.balance -= price
            err_code = self._receipt_err_code(recipient)
            part = {
                "message_id": new_message_id(),
                "from": params["from"],
                "to": recipient,
                "text": piece,
                "type": msg_type,
                "garbled": garbled,
                "client_ref": params.get("client-ref"),
                "callback": callback,
                "price": f"{price:.8f}",
                "network": self.settings["network"],
                "sent_at": vonage_timestamp(),
                "at": time.time(),
                "part": number,
                "parts": len(pieces),
                "status": "accepted",
                "err_code": None,
                "receipt_planned": {
                    "status": "delivered" if err_code == "0" else "failed",
                    "err_code": err_code,
                },
            }
            self.messages.append(part)
            parts.append(part)
            if callback:
                self._schedule_receipt(part, callback)
        return parts

    def _receipt_err_code(self, recipient: str) -> str:
        if recipient in self.faults.fail_delivery_to:
            return self.faults.fail_delivery_to[recipient] or "1"
        if self.faults.fail_delivery_count > 0:
            self.faults.fail_delivery_count -= 1
            return self.faults.fail_delivery_err_code or "1"
        return "0"

    def _schedule_receipt(self, part: dict[str, Any], url: str) -> None:
        planned = part["receipt_planned"]

        def payload() -> dict[str, str]:
            now = utc_now()
            receipt = {
                "msisdn": part["to"],
                "to": part["from"],
                "network-code": part["network"],
                "messageId": part["message_id"],
                "price": part["price"],
                "status": planned["status"],
                "err-code": planned["err_code"],
                "scts": now.strftime("%y%m%d%H%M"),
                "message-timestamp": vonage_timestamp(now),
                "api-key": self.settings["api_key"],
            }
            if part["client_ref"]:
                receipt["client-ref"] = part["client_ref"]
            return receipt

        def delivered() -> None:
            part["status"] = planned["status"]
            part["err_code"] = planned["err_code"]

        self.deliverer.submit(
            kind="receipt",
            url=url,
            payload=payload,
            delay=float(self.settings["receipt_delay"]),
            reference=part["message_id"],
            on_delivered=delivered,
        )

    # -- inbound (the simulated handsets replying) ------------------------------------------

    def add_handset(self, msisdn: str) -> str:
        """Add a simulated handset; returns its number as Vonage writes it."""
        number = msisdn.strip().lstrip("+").replace(" ", "").replace("-", "")
        if not number.isdigit() or not 7 <= len(number) <= 15:
            raise SandboxError("A handset needs a phone number of 7 to 15 digits.")
        with self.lock:
            if number not in self.handsets:
                self.handsets.append(number)
        return number

    def send_inbound(self, sender: str, to: str, text: str) -> list[str]:
        """A handset texts one of our numbers: deliver it as Vonage's inbound webhook(s).

        Returns the message id of each part.
        """
        if not text:
            raise SandboxError("Type a reply first.")
        sender = self.add_handset(sender)
        to = to.strip().lstrip("+")
        with self.lock:
            number = self.owned.get(to)
            if number is None:
                raise SandboxError(f"{to} is not one of the account's numbers.")
            url = number["moHttpUrl"] or self.settings["inbound_url"]
            unicode = not is_gsm(text)
            pieces = split_parts(text, unicode)
            concat_ref = str(random.randint(1, 255))
            ids = []
            for index, piece in enumerate(pieces, start=1):
                message_id = new_message_id()
                fields_ = {
                    "msisdn": sender,
                    "to": to,
                    "messageId": message_id,
                    "text": piece,
                    "type": "unicode" if unicode else "text",
                    "keyword": (piece.split() or [""])[0].upper(),
                    "api-key": self.settings["api_key"],
                }
                if len(pieces) > 1:
                    fields_.update(
                        {
                            "concat": "true",
                            "concat-ref": concat_ref,
                            "concat-total": str(len(pieces)),
                            "concat-part": str(index),
                        }
                    )
                record = {
                    "message_id": message_id,
                    "from": sender,
                    "to": to,
                    "text": piece,
                    "type": fields_["type"],
                    "part": index,
                    "parts": len(pieces),
                    "received_at": vonage_timestamp(),
                    "at": time.time(),
                    "url": url,
                    "delivered": False,
                }
                self.inbound.append(record)
                ids.append(message_id)
                if url:
                    self._schedule_inbound(fields_, record, url)
            return ids

    def _schedule_inbound(self, fields_: dict[str, str], record: dict[str, Any], url: str) -> None:
        def payload() -> dict[str, str]:
            return {**fields_, "message-timestamp": vonage_timestamp()}

        def delivered() -> None:
            record["delivered"] = True

        self.deliverer.submit(
            kind="inbound",
            url=url,
            payload=payload,
            delay=0.0,
            reference=record["message_id"],
            on_delivered=delivered,
        )

    # -- numbers -----------------------------------------------------------------------------

    def our_numbers(self) -> list[dict[str, Any]]:
        """Numbers the account owns, system numbers first."""
        with self.lock:
            return sorted(
                (dict(n) for n in self.owned.values()),
                key=lambda n: (not n["system"], n["msisdn"]),
            )

    # -- registrations -------------------------------------------------------------------------

    def create_registration(self, details: dict[str, Any], *, submit: bool) -> dict[str, Any]:
        """Store a new toll-free registration, submitted to carrier review unless a draft."""
        now = time.time()
        with self.lock:
            registration = {
                "id": str(uuid.uuid4()),
                "status": "CARRIER_REVIEW" if submit else "DRAFT",
                "rejection_reason": None,
                "details": details,
                "created_at": vonage_timestamp(),
                "updated_at": vonage_timestamp(),
                "submitted_at": now if submit else None,
                "history": [],
            }
            self._log_status(registration)
            self.registrations[registration["id"]] = registration
            return registration

    def registration(self, registration_id: str) -> dict[str, Any] | None:
        """The registration, with any due automatic approval applied."""
        with self.lock:
            registration = self.registrations.get(registration_id)
            if registration is not None:
                self._auto_approve(registration)
            return registration

    def all_registrations(self) -> list[dict[str, Any]]:
        """Every registration, newest first, automatic approvals applied."""
        with self.lock:
            for registration in self.registrations.values():
                self._auto_approve(registration)
            return sorted(self.registrations.values(), key=lambda r: r["created_at"], reverse=True)

    def _auto_approve(self, registration: dict[str, Any]) -> None:
        delay = self.settings["verification_delay"]
        if (
            delay is not None
            and registration["status"] == "CARRIER_REVIEW"
            and registration["submitted_at"] is not None
            and time.time() - registration["submitted_at"] >= delay
        ):
            self.decide_registration(registration["id"], "REGISTERED")

    def update_registration(self, registration_id: str, details: dict[str, Any]) -> dict[str, Any]:
        """Merge corrected details into an editable registration and resubmit it."""
        with self.lock:
            registration = self.registrations.get(registration_id)
            if registration is None:
                raise KeyError(registration_id)
            if registration["status"] not in EDITABLE_STATUSES:
                raise SandboxError(f"a registration in {registration['status']} cannot be changed")
            submit = _as_bool(details.pop("submit", True))
            registration["details"] = {**registration["details"], **details}
            if submit:
                registration["status"] = "CARRIER_REVIEW"
                registration["rejection_reason"] = None
                registration["submitted_at"] = time.time()
            registration["updated_at"] = vonage_timestamp()
            self._log_status(registration)
            return registration

    def decide_registration(
        self, registration_id: str, status: str, reason: str | None = None
    ) -> dict[str, Any]:
        """The carriers' decision: REGISTERED, REJECTED or UPDATES_REQUIRED (with a reason)."""
        if status not in REGISTRATION_STATUSES:
            raise SandboxError(f"unknown registration status {status!r}")
        with self.lock:
            registration = self.registrations.get(registration_id)
            if registration is None:
                raise KeyError(registration_id)
            if status in ("REJECTED", "UPDATES_REQUIRED") and not (reason or "").strip():
                raise SandboxError("Give the reason for the rejection.")
            registration["status"] = status
            registration["rejection_reason"] = (reason or "").strip() or None
            registration["updated_at"] = vonage_timestamp()
            self._log_status(registration)
            return registration

    @staticmethod
    def _log_status(registration: dict[str, Any]) -> None:
        registration["history"].append(
            {
                "status": registration["status"],
                "reason": registration["rejection_reason"],
                "at": vonage_timestamp(),
            }
        )

    # -- views -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (``GET /_sandbox/state``)."""
        registrations = [registration_json(r) for r in self.all_registrations()]
        with self.lock:
            return {
                "messages": copy.deepcopy(self.messages),
                "requests": copy.deepcopy(self.requests),
                "requests_by_client_ref": dict(self.client_ref_counts),
                "inbound": copy.deepcopy(self.inbound),
                "webhooks": [
                    {k: v for k, v in hook.items() if not callable(v)} for hook in self.webhooks
                ],
                "handsets": list(self.handsets),
                "numbers": {
                    "owned": [dict(n) for n in self.owned.values()],
                    "available": {c: len(ns) for c, ns in self.available.items()},
                },
                "registrations": registrations,
                "faults": asdict(self.faults),
                "settings": dict(self.settings),
                "balance": f"{self.balance:.8f}",
            }


def registration_json(registration: dict[str, Any]) -> dict[str, Any]:
    """A registration as the TFN API shows it: the submitted details plus id and status."""
    return {
        **copy.deepcopy(registration["details"]),
        "id": registration["id"],
        "status": registration["status"],
        "rejection_reason": registration["rejection_reason"],
        "created_at": registration["created_at"],
        "updated_at": registration["updated_at"],
        "history": copy.deepcopy(registration["history"]),
    }
