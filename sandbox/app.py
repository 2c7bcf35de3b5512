"""The Vonage sandbox: a local stand-in for Vonage's REST API, plus a phone simulator.

The real Vonage SDK talks to it over plain HTTP. It answers the SMS API, the Numbers API and
the toll-free (TFN) registration API in Vonage's shapes, sends signed delivery receipts and
inbound texts to our webhooks, and can inject faults. It imports neither the Vonage SDK nor
anything from ``app/``.

Routes:

- Vonage's API: ``POST /sms/json``; ``GET /number/search``, ``POST /number/buy``,
  ``POST /number/update``, ``POST /number/cancel``, ``GET /account/numbers``;
  ``POST /tfn/v1/registrations``, ``GET /tfn/v1/registrations[/<id>]``,
  ``PATCH /tfn/v1/registrations/<id>`` (Vonage's documented way to correct and resubmit).
- Controls (JSON, or forms from the simulator page): ``GET /_sandbox/state``,
  ``POST /_sandbox/reset``, ``GET|POST /_sandbox/settings``, ``GET|POST /_sandbox/faults``,
  ``POST /_sandbox/inbound``, ``POST /_sandbox/handsets``,
  ``POST /_sandbox/registrations/<id>/approve|reject|updates-required``.
- The phone simulator page: ``GET /`` (also ``/phones``).
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from sandbox.delivery import probe
from sandbox.signing import check_signature
from sandbox.state import (
    SandboxError,
    SandboxState,
    registration_json,
)
from sandbox.texts import split_parts

api = Blueprint("api", __name__)
ops = Blueprint("ops", __name__, url_prefix="/_sandbox")
pages = Blueprint("pages", __name__)


def create_sandbox_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox app. ``config`` overrides ``sandbox.state.DEFAULT_CONFIG``."""
    app = Flask(__name__, template_folder="templates")
    app.config["SECRET_KEY"] = secrets.token_hex(16)
    # Its own cookie name: served on the same host as the app (another port), a cookie called
    # "session" would replace the signed-in app's and sign the person out.
    app.config["SESSION_COOKIE_NAME"] = "vonage_sandbox_session"
    app.extensions["vonage_sandbox"] = SandboxState(config)
    app.register_blueprint(api)
    app.register_blueprint(ops)
    app.register_blueprint(pages)
    return app


def sandbox_state(app: Flask | None = None) -> SandboxState:
    """The state of the given (or current) sandbox app."""
    return (app or current_app).extensions["vonage_sandbox"]


# --------------------------------------------------------------------------------------------
# Vonage API plumbing
# --------------------------------------------------------------------------------------------


def _request_params() -> dict[str, Any]:
    """Query, form and JSON parameters together, as Vonage reads them.

    A body labelled JSON that is not JSON yields nothing, as a form body sent with
    ``Content-Type: application/json`` (SDK pitfall 3) would at Vonage.
    """
    params: dict[str, Any] = dict(request.args.items())
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(request.form.items())
    return params


def _auth_kind(state: SandboxState, params: dict[str, Any]) -> str | None:
    """How the request authenticated: "basic", "params", "signature"; or why it failed.

    Failures: None (no or wrong credentials), "bad-signature", "signature-and-secret".
    """
    settings = state.settings
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        if auth.username == settings["api_key"] and auth.password == settings["api_secret"]:
            return "basic"
        return None
    if params.get("api_key") != settings["api_key"]:
        return None
    if params.get("sig"):
        if params.get("api_secret"):
            return "signature-and-secret"
        signed = {k: v for k, v in params.items()}
        ok = check_signature(signed, settings["signature_secret"], settings["signature_method"])
        return "signature" if ok else "bad-signature"
    if params.get("api_secret") == settings["api_secret"]:
        return "params"
    return None


def _drop_connection(record: dict[str, Any]) -> Response:
    """Close the client's connection without answering (a "dropped connection" fault)."""
    record["outcome"] = "dropped"
    sock = request.environ.get("werkzeug.socket")
    if sock is None:  # not served by werkzeug: the best we can do is a bare failure
        return Response("connection drop needs the werkzeug server", status=500)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    # werkzeug's attempt to write this answer fails quietly as a dropped connection.
    return Response(status=500)


def _http_error(status: int) -> Response:
    labels = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}
    label = labels.get(status, "Service Unavailable" if status >= 500 else "Error")
    response = jsonify({"error-code": str(status), "error-code-label": label})
    response.status_code = status
    return response


ApiView = Callable[..., Response | tuple[Response, int]]


def vonage_api(view: ApiView) -> Callable[..., Response]:
    """Wrap a Vonage API view: record the request, apply faults, answer or drop."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Response:
        state = sandbox_state()
        params = _request_params()
        record = state.record_request(
            method=request.method,
            path=request.path,
            content_type=request.mimetype or "",
            auth=_auth_kind(state, params),
            params=params,
        )
        action, error_status, delay = state.take_http_fault(request.path)
        if action == "drop-before":
            return _drop_connection(record)
        if action == "error":
            response = _http_error(error_status)
        else:
            response = current_app.make_response(view(params, record, **kwargs))
        if delay:
            time.sleep(delay)
        if action == "drop-after":
            return _drop_connection(record)
        record["outcome"] = response.status_code
        return response

    return wrapper


# --------------------------------------------------------------------------------------------
# SMS API
# --------------------------------------------------------------------------------------------


def _sms_error(status: str, text: str) -> Response:
    return jsonify({"message-count": "1", "messages": [{"status": status, "error-text": text}]})


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


_MSISDN = re.compile(r"^\d{7,15}$")


@api.post("/sms/json")
@vonage_api
def send_sms(raw: dict[str, Any], record: dict[str, Any]) -> Response:
    """Vonage's SMS API: accept one text (split into parts if it is too long)."""
    state = sandbox_state()
    params = {k: _as_text(v) for k, v in raw.items()}
    auth = record["auth"]
    if auth == "bad-signature":
        return _sms_error("14", "Invalid Signature")
    if auth == "signature-and-secret":
        return _sms_error("32", "Signature And API Secret Disallowed")
    if auth is None:
        return _sms_error("4", "Bad Credentials")
    with state.lock:
        settings = state.settings
        if state.throttled():
            return _sms_error("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
        for name in ("from", "to", "text"):
            if not params.get(name):
                return _sms_error("2", f"Missing {name} param")
        msg_type = params.get("type") or "text"
        if msg_type not in ("text", "unicode"):
            return _sms_error("3", "Invalid type param: the sandbox sends text or unicode")
        if not _MSISDN.match(params["to"]):
            return _sms_error("3", "Invalid to address")
        callback = params.get("callback", "")
        if callback and (len(callback) > 100 or not re.match(r"^https?://", callback)):
            return _sms_error("23", "Invalid Callback Url")
        if len(params.get("client-ref", "")) > 100:
            return _sms_error("3", "Invalid client-ref param")
        if settings["check_sender"] and params["from"] not in state.owned:
            return _sms_error("15", "Illegal Sender Address - rejected")
        if state.faults.reject_count > 0:
            state.faults.reject_count -= 1
            return _sms_error(state.faults.reject_status, "Rejected (sandbox fault)")
        unicode = msg_type == "unicode"
        parts_needed = len(split_parts(params["text"], unicode))
        if Decimal(settings["message_price"]) * parts_needed > state.balance:
            return _sms_error("9", "Partner quota exceeded")
        parts = state.accept_send(params)
        balance = f"{state.balance:.8f}"
    messages = []
    for part in parts:
        message = {
            "to": part["to"],
            "message-id": part["message_id"],
            "status": "0",
            "remaining-balance": balance,
            "message-price": part["price"],
            "network": part["network"],
        }
        if part["client_ref"]:
            message["client-ref"] = part["client_ref"]
        messages.append(message)
    return jsonify({"message-count": str(len(messages)), "messages": messages})


# --------------------------------------------------------------------------------------------
# Numbers API
# --------------------------------------------------------------------------------------------


def _numbers_status(code: int, label: str) -> tuple[Response, int]:
    return jsonify({"error-code": str(code), "error-code-label": label}), code


def _numbers_auth_failed(record: dict[str, Any]) -> bool:
    return record["auth"] not in ("basic", "params")


def _page(items: list[Any], params: dict[str, Any], default_size: int) -> list[Any]:
    try:
        size = min(100, max(1, int(params.get("size") or default_size)))
        index = max(1, int(params.get("index") or 1))
    except ValueError:
        size, index = default_size, 1
    return items[(index - 1) * size : index * size]


def _matches_pattern(msisdn: str, params: dict[str, Any]) -> bool:
    pattern = str(params.get("pattern") or "")
    if not pattern:
        return True
    strategy = str(params.get("search_pattern") or "0")
    if strategy == "1":
        return pattern in msisdn
    if strategy == "2":
        return msisdn.endswith(pattern)
    return msisdn.startswith(pattern)


def _number_json(number: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in number.items() if k != "system" and v is not None}
    return shown


@api.get("/number/search")
@vonage_api
def search_numbers(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """Numbers for sale in a country."""
    state = sandbox_state()
    if _numbers_auth_failed(record):
        return _numbers_status(401, "authentication failed")
    country = str(params.get("country") or "").upper()
    if len(country) != 2:
        return _numbers_status(400, "country is required")
    number_type = params.get("type")
    features = set(str(params.get("features") or "").split(",")) - {""}
    with state.lock:
        supply = list(state.available.get(country, []))
        cost = state.settings["number_cost"]
    offered_features = {"SMS", "VOICE"}
    if (number_type and number_type != "landline-toll-free") or not features <= offered_features:
        supply = []
    matching = [n for n in supply if _matches_pattern(n, params)]
    body: dict[str, Any] = {"count": len(matching)}
    if matching:
        body["numbers"] = [
            {
                "country": country,
                "msisdn": msisdn,
                "type": "landline-toll-free",
                "cost": cost,
                "features": ["SMS", "VOICE"],
            }
            for msisdn in _page(matching, params, default_size=10)
        ]
    return jsonify(body)


@api.post("/number/buy")
@vonage_api
def buy_number(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """Buy a number that is for sale; 420 if it is not."""
    state = sandbox_state()
    if _numbers_auth_failed(record):
        return _numbers_status(401, "authentication failed")
    country = str(params.get("country") or "").upper()
    msisdn = str(params.get("msisdn") or "").lstrip("+")
    with state.lock:
        supply = state.available.get(country, [])
        if msisdn not in supply:
            return _numbers_status(420, "method failed")
        supply.remove(msisdn)
        state.owned[msisdn] = state.number_record(msisdn, country)
    return _numbers_status(200, "success")


@api.post("/number/update")
@vonage_api
def update_number(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """Change a number's inbound webhook (``moHttpUrl``), probing it first like Vonage."""
    state = sandbox_state()
    if _numbers_auth_failed(record):
        return _numbers_status(401, "authentication failed")
    msisdn = str(params.get("msisdn") or "").lstrip("+")
    country = str(params.get("country") or "").upper()
    with state.lock:
        number = state.owned.get(msisdn)
        should_probe = state.settings["probe_webhooks"]
    if number is None or (country and number["country"] != country):
        return _numbers_status(420, "method failed")
    if "moHttpUrl" in params:
        url = str(params["moHttpUrl"] or "").strip()
        if url and should_probe:
            problem = probe(url)
            if problem:
                return _numbers_status(420, f"method failed: {problem}")
        with state.lock:
            if msisdn in state.owned:
                state.owned[msisdn]["moHttpUrl"] = url or None
    return _numbers_status(200, "success")


@api.post("/number/cancel")
@vonage_api
def cancel_number(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """Give a number back; it goes on sale again."""
    state = sandbox_state()
    if _numbers_auth_failed(record):
        return _numbers_status(401, "authentication failed")
    msisdn = str(params.get("msisdn") or "").lstrip("+")
    with state.lock:
        number = state.owned.get(msisdn)
        if number is None:
            return _numbers_status(420, "method failed")
        del state.owned[msisdn]
        if not number["system"]:
            state.available.setdefault(number["country"], []).append(msisdn)
    return _numbers_status(200, "success")


@api.get("/account/numbers")
@vonage_api
def owned_numbers(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """The numbers the account owns."""
    state = sandbox_state()
    if _numbers_auth_failed(record):
        return _numbers_status(401, "authentication failed")
    country = str(params.get("country") or "").upper()
    numbers = [
        n
        for n in state.our_numbers()
        if (not country or n["country"] == country) and _matches_pattern(n["msisdn"], params)
    ]
    body: dict[str, Any] = {"count": len(numbers)}
    page = _page(numbers, params, default_size=10)
    if page:
        body["numbers"] = [_number_json(n) for n in page]
    return jsonify(body)


# --------------------------------------------------------------------------------------------
# TFN registration API
# --------------------------------------------------------------------------------------------


def _problem(status: int, title: str, detail: str, **extra: Any) -> tuple[Response, int]:
    body = {
        "type": f"https://developer.vonage.com/api-errors#{title.lower().replace(' ', '-')}",
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
        **extra,
    }
    response = jsonify(body)
    response.mimetype = "application/problem+json"
    return response, status


def _tfn_unauthorized() -> tuple[Response, int]:
    return _problem(401, "Unauthorized", "You did not provide correct credentials.")


def _registration_problems(body: Any, state: SandboxState) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"name": "body", "reason": "must be a JSON object"}]
    problems = []
    business = body.get("business") if isinstance(body.get("business"), dict) else {}
    if not str(business.get("name") or "").strip():
        problems.append({"name": "business.name", "reason": "is required"})
    use_case = body.get("use_case") if isinstance(body.get("use_case"), dict) else {}
    if not use_case.get("message_samples"):
        problems.append({"name": "use_case.message_samples", "reason": "is required"})
    numbers = body.get("numbers")
    if not isinstance(numbers, list) or not numbers:
        problems.append({"name": "numbers", "reason": "at least one toll-free number"})
    else:
        for number in numbers:
            if str(number).lstrip("+") not in state.owned:
                problems.append({"name": "numbers", "reason": f"{number} is not your number"})
    return problems


@api.post("/tfn/v1/registrations")
@vonage_api
def create_registration(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """Create a toll-free registration; it goes to carrier review unless ``submit`` is false."""
    state = sandbox_state()
    if record["auth"] != "basic":
        return _tfn_unauthorized()
    body = request.get_json(silent=True)
    problems = _registration_problems(body, state)
    if problems:
        return _problem(
            400, "Bad Request", "The registration is incomplete.", invalid_parameters=problems
        )
    details = dict(body)
    submit = details.pop("submit", True) not in (False, "false")
    registration = state.create_registration(details, submit=submit)
    return jsonify(registration_json(registration))


@api.get("/tfn/v1/registrations")
@vonage_api
def list_registrations(params: dict[str, Any], record: dict[str, Any]) -> Any:
    """Every registration of the account."""
    if record["auth"] != "basic":
        return _tfn_unauthorized()
    registrations = sandbox_state().all_registrations()
    return jsonify({"registrations": [registration_json(r) for r in registrations]})


@api.get("/tfn/v1/registrations/<registration_id>")
@vonage_api
def get_registration(params: dict[str, Any], record: dict[str, Any], registration_id: str) -> Any:
    """One registration, with its status and any rejection reason."""
    if record["auth"] != "basic":
        return _tfn_unauthorized()
    registration = sandbox_state().registration(registration_id)
    if registration is None:
        return _problem(404, "Not Found", f"No registration {registration_id}.")
    return jsonify(registration_json(registration))


@api.patch("/tfn/v1/registrations/<registration_id>")
@vonage_api
def patch_registration(params: dict[str, Any], record: dict[str, Any], registration_id: str) -> Any:
    """Correct a draft, rejected or updates-required registration; this resubmits it."""
    state = sandbox_state()
    if record["auth"] != "basic":
        return _tfn_unauthorized()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _problem(400, "Bad Request", "The body must be a JSON object.")
    try:
        registration = state.update_registration(registration_id, dict(body))
    except KeyError:
        return _problem(404, "Not Found", f"No registration {registration_id}.")
    except SandboxError as exc:
        return _problem(409, "Conflict", str(exc))
    return jsonify(registration_json(registration))


# --------------------------------------------------------------------------------------------
# Controls
# --------------------------------------------------------------------------------------------


def _control_input() -> dict[str, Any]:
    if request.is_json:
        body = request.get_json(silent=True)
        return dict(body) if isinstance(body, dict) else {}
    return {k: v for k, v in request.form.items() if not k.startswith("_")}


def _control_done(payload: dict[str, Any], notice: str, anchor: str = "") -> Response:
    if request.is_json:
        return jsonify(payload)
    flash(notice)
    return redirect(url_for("pages.phones") + (f"#{anchor}" if anchor else ""))


def _control_failed(message: str, status: int = 400, anchor: str = "") -> Any:
    if request.is_json:
        return jsonify({"error": message}), status
    flash(f"Error: {message}")
    return redirect(url_for("pages.phones") + (f"#{anchor}" if anchor else ""))


@ops.get("/state")
def state_json() -> Response:
    """Everything the sandbox knows, as JSON."""
    return jsonify(sandbox_state().snapshot())


@ops.post("/reset")
def reset() -> Response:
    """Forget everything and stop pending deliveries."""
    sandbox_state().reset()
    return _control_done({"ok": True}, "Sandbox reset.")


@ops.get("/settings")
def get_settings() -> Response:
    """The settings in force."""
    return jsonify(sandbox_state().settings)


@ops.post("/settings")
def post_settings() -> Any:
    """Change settings (webhook URLs, delays, ...) at runtime."""
    try:
        settings = sandbox_state().update_settings(_control_input())
    except SandboxError as exc:
        return _control_failed(str(exc), anchor="settings")
    return _control_done(settings, "Settings saved.", "settings")


@ops.get("/faults")
def get_faults() -> Response:
    """The faults in force."""
    return jsonify(sandbox_state().update_faults({}))


@ops.post("/faults")
def post_faults() -> Any:
    """Set faults; ``{"clear": true}`` clears them first."""
    changes = _control_input()
    if not request.is_json:
        changes["clear"] = True  # the simulator's form always shows every fault
    try:
        faults = sandbox_state().update_faults(changes)
    except SandboxError as exc:
        return _control_failed(str(exc), anchor="faults")
    return _control_done(faults, "Faults set.", "faults")


@ops.post("/handsets")
def add_handset() -> Any:
    """Add a simulated handset."""
    try:
        number = sandbox_state().add_handset(str(_control_input().get("msisdn") or ""))
    except SandboxError as exc:
        return _control_failed(str(exc), anchor="handsets")
    return _control_done({"msisdn": number}, f"Handset {number} added.", f"handset-{number}")


@ops.post("/inbound")
def inbound() -> Any:
    """A handset texts one of our numbers (``from``, ``to``, ``text``)."""
    data = _control_input()
    sender = str(data.get("from") or data.get("msisdn") or "")
    try:
        ids = sandbox_state().send_inbound(
            sender, str(data.get("to") or ""), str(data.get("text") or "")
        )
    except SandboxError as exc:
        return _control_failed(str(exc), anchor=f"handset-{sender.lstrip('+')}")
    notice = f"Reply sent as {len(ids)} part{'s' if len(ids) != 1 else ''}."
    return _control_done({"message_ids": ids}, notice, f"handset-{sender.lstrip('+')}")


def _decide(registration_id: str, status: str) -> Any:
    reason = str(_control_input().get("reason") or "")
    try:
        registration = sandbox_state().decide_registration(registration_id, status, reason)
    except KeyError:
        return _control_failed(f"no registration {registration_id}", 404, "verifications")
    except SandboxError as exc:
        return _control_failed(str(exc), anchor="verifications")
    return _control_done(
        registration_json(registration), f"Registration now {status}.", "verifications"
    )


@ops.post("/registrations/<registration_id>/approve")
def approve_registration(registration_id: str) -> Any:
    """The carriers approve the registration (REGISTERED)."""
    return _decide(registration_id, "REGISTERED")


@ops.post("/registrations/<registration_id>/reject")
def reject_registration(registration_id: str) -> Any:
    """The carriers reject the registration, with a reason (REJECTED)."""
    return _decide(registration_id, "REJECTED")


@ops.post("/registrations/<registration_id>/updates-required")
def registration_needs_updates(registration_id: str) -> Any:
    """The carriers ask for corrections, with a reason (UPDATES_REQUIRED)."""
    return _decide(registration_id, "UPDATES_REQUIRED")


# --------------------------------------------------------------------------------------------
# The phone simulator page
# --------------------------------------------------------------------------------------------


def _handset_views(state: SandboxState) -> list[dict[str, Any]]:
    owned = state.our_numbers()
    our_numbers = [n["msisdn"] for n in owned]
    # A handset that hasn't been texted yet replies to a number a business bought (its texting
    # number) rather than to a shared system number, which nobody reads.
    bought = [n["msisdn"] for n in owned if not n["system"]]
    first_choice = bought[0] if bought else (our_numbers[0] if our_numbers else None)
    with state.lock:
        views = []
        for msisdn in reversed(state.handsets):
            received = [{**m, "direction": "in"} for m in state.messages if m["to"] == msisdn]
            sent = [{**m, "direction": "out"} for m in state.inbound if m["from"] == msisdn]
            events = sorted(received + sent, key=lambda e: e["at"])
            last_sender = next(
                (e["from"] for e in reversed(events) if e["direction"] == "in"), None
            )
            default_from = last_sender if last_sender in our_numbers else first_choice
            views.append({"msisdn": msisdn, "events": events, "default_from": default_from})
        return views


@pages.get("/")
@pages.get("/phones")
def phones() -> str:
    """The phone simulator: handsets, what they received, reply forms, and the controls."""
    state = sandbox_state()
    snapshot = state.snapshot()
    refresh = request.args.get("refresh", type=int)
    return render_template(
        "sandbox/phones.html",
        handsets=_handset_views(state),
        our_numbers=state.our_numbers(),
        registrations=snapshot["registrations"],
        faults=snapshot["faults"],
        settings=snapshot["settings"],
        webhooks=list(reversed(snapshot["webhooks"]))[:20],
        available=snapshot["numbers"]["available"],
        balance=snapshot["balance"],
        refresh=refresh if refresh and refresh > 0 else None,
    )
