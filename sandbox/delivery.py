"""Webhook delivery the way Vonage does it: signed, in the background, retried until 2xx."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from sandbox.signing import sign_params

if TYPE_CHECKING:
    from sandbox.state import SandboxState

CONNECT_TIMEOUT = 3.0  # Vonage gives a webhook about 3 s to connect and 15 s to answer


def send_webhook(
    url: str, params: dict[str, str], method: str, timeout: float
) -> requests.Response:
    """One webhook call: GET with a query string, POST form-encoded, or POST JSON."""
    if method == "GET":
        return requests.get(url, params=params, timeout=(CONNECT_TIMEOUT, timeout))
    if method == "POST-JSON":
        return requests.post(url, json=params, timeout=(CONNECT_TIMEOUT, timeout))
    return requests.post(url, data=params, timeout=(CONNECT_TIMEOUT, timeout))


def probe(url: str, timeout: float = 5.0) -> str | None:
    """GET ``url`` like Vonage does before accepting a ``moHttpUrl``; returns a problem or None."""
    try:
        response = requests.get(url, timeout=(CONNECT_TIMEOUT, timeout))
    except requests.RequestException as exc:
        return f"could not reach {url}: {exc.__class__.__name__}"
    if not 200 <= response.status_code < 300:
        return f"{url} answered {response.status_code} to a GET"
    return None


class Deliverer:
    """Sends webhooks from background threads, retrying with backoff until they answer 2xx.

    ``cancel_all`` stops every pending delivery (used by reset and shutdown).
    """

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._cancel = threading.Event()
        self._ids = itertools.count(1)

    def cancel_all(self) -> None:
        """Abandon every pending delivery; later submissions start afresh."""
        old, self._cancel = self._cancel, threading.Event()
        old.set()

    def submit(
        self,
        *,
        kind: str,
        url: str,
        payload: Callable[[], dict[str, str]],
        delay: float,
        reference: str,
        on_delivered: Callable[[], None],
    ) -> dict[str, Any]:
        """Schedule one webhook. ``payload`` builds the unsigned fields at sending time.

        Call with the state's lock held; returns the delivery's record.
        """
        record: dict[str, Any] = {
            "id": next(self._ids),
            "kind": kind,
            "reference": reference,
            "url": url,
            "attempts": 0,
            "last_status": None,
            "last_error": None,
            "delivered": False,
            "gave_up": False,
            "last_payload": None,
        }
        self._state.webhooks.append(record)
        thread = threading.Thread(
            target=self._run,
            args=(record, payload, delay, on_delivered, self._cancel),
            name=f"sandbox-webhook-{record['id']}",
            daemon=True,
        )
        thread.start()
        return record

    def _run(
        self,
        record: dict[str, Any],
        payload: Callable[[], dict[str, str]],
        delay: float,
        on_delivered: Callable[[], None],
        cancel: threading.Event,
    ) -> None:
        state = self._state
        if cancel.wait(delay):
            return
        attempt = 0
        while True:
            with state.lock:
                settings = dict(state.settings)
                fields = payload()
            secret = settings["signature_secret"]
            if secret:
                fields = sign_params(fields, secret, settings["signature_method"])
            status: int | None = None
            error: str | None = None
            try:
                response = send_webhook(
                    record["url"],
                    fields,
                    settings["webhook_method"],
                    float(settings["webhook_timeout"]),
                )
                status = response.status_code
            except requests.RequestException as exc:
                error = exc.__class__.__name__
            except Exception as exc:  # noqa: BLE001 - a bad URL must not kill the thread loudly
                error = repr(exc)
            attempt += 1
            with state.lock:
                if cancel.is_set():
                    return
                record.update(
                    attempts=attempt,
                    last_status=status,
                    last_error=error,
                    last_payload=fields,
                    last_attempt_at=time.time(),
                )
                if status is not None and 200 <= status < 300:
                    record["delivered"] = True
                    on_delivered()
                    return
                if attempt >= int(settings["webhook_max_attempts"]):
                    record["gave_up"] = True
                    return
            wait = min(
                float(settings["webhook_retry_base"]) * 2 ** (attempt - 1),
                float(settings["webhook_retry_max"]),
            )
            if cancel.wait(wait):
                return
