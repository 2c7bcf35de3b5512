"""Vonage's webhooks (fixed paths: Vonage's dashboard and other tools rely on them).

`/webhooks/vonage/status` takes delivery receipts as Vonage sends them: GET with a query
string, POST form or POST JSON. Each must carry a valid signature with a fresh timestamp
(401 otherwise, nothing changed); a receipt that is not one is 400; a body over
WEBHOOK_MAX_BYTES is 413. Anything Vonage should stop retrying answers 2xx, including a
receipt for a part we do not know.

`/webhooks/vonage/inbound` takes inbound texts in the same three forms, with the same
signature check (401, nothing stored) and size limit (413). A text whose fields are not what
Vonage sends answers 400 with the reason. Each text (each part of a long one) is stored once
per `messageId` and handled by a job (`app.services.inbound`); the answer is 200 as soon as it
is stored, also for a retry of one already stored and for a text to a number that is no one's
(so Vonage stops retrying). An empty GET is Vonage's probe of the URL: 200.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, request

from app.extensions import csrf
from app.models.types import utcnow
from app.services import inbound, sending
from app.vonage_gateway import get_gateway

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # signed by Vonage instead

# A receipt is a few hundred bytes; an inbound part at most about 1.6 KB (160 characters, each
# up to 9 bytes once percent-encoded, and the other fields), so this leaves ample room.
WEBHOOK_MAX_BYTES = 16 * 1024
_FIELD_MAX = 200  # no single value of a receipt is anywhere near this long


def _limit_size(view):
    view.max_upload_bytes = WEBHOOK_MAX_BYTES  # read by create_app's before_request hook
    return view


def _params() -> dict[str, Any]:
    """The webhook's parameters from the query, the form or a JSON object; 400/413 on junk."""
    if len(request.query_string) > WEBHOOK_MAX_BYTES:
        abort(413)
    if (request.content_length or 0) > WEBHOOK_MAX_BYTES:
        abort(413)
    params: dict[str, Any] = dict(request.args.items())
    if request.method == "POST":
        if request.is_json:
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict):
                abort(400)
            params.update(payload)
        else:
            params.update(request.form.items())
    return params


def _ok() -> Response:
    return Response("ok", status=200, mimetype="text/plain")


@bp.route("/vonage/status", methods=["GET", "POST"])
@_limit_size
def vonage_status():
    params = _params()
    if not params:
        return _ok()  # a reachability probe
    if not get_gateway().check_webhook_signature(params):
        return Response("invalid or missing signature", status=401, mimetype="text/plain")
    status = params.get("status")
    client_ref = params.get("client-ref")
    message_id = params.get("messageId")
    err_code = params.get("err-code")
    values = [status, client_ref, message_id, err_code]
    if (
        not isinstance(status, str)
        or not status.strip()
        or not (client_ref or message_id)
        or any(v is not None and (not isinstance(v, str) or len(v) > _FIELD_MAX) for v in values)
    ):
        return Response("not a delivery receipt", status=400, mimetype="text/plain")
    part = sending.record_receipt(
        client_ref=client_ref or None,
        vonage_message_id=message_id or None,
        status=status.strip(),
        err_code=err_code,
        now=utcnow(),
    )
    if part is None:
        log.info("receipt for no part of ours: client-ref %r, messageId %r", client_ref, message_id)
    return _ok()


@bp.route("/vonage/inbound", methods=["GET", "POST"])
@_limit_size
def vonage_inbound():
    params = _params()
    if not params:
        return _ok()  # Vonage probes the URL when a number's inbound URL is set
    if not get_gateway().check_webhook_signature(params):
        return Response("invalid or missing signature", status=401, mimetype="text/plain")
    try:
        fields = inbound.parse_inbound(params)
    except inbound.BadInbound as error:
        return Response(f"not an inbound text: {error}", status=400, mimetype="text/plain")
    inbound.record_part(fields, now=utcnow())
    return _ok()
