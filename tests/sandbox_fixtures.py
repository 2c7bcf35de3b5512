"""Pytest fixtures for the Vonage sandbox and the gateway that talks to it.

Import them into a conftest with ``from tests.sandbox_fixtures import *``.

- ``sandbox_server`` (session): one running sandbox for the whole run.
- ``sandbox``: that sandbox, reset before and after the test (state, faults, deliveries).
- ``vonage_settings``: :class:`VonageSettings` pointing at the sandbox over plain HTTP.
- ``gateway``: a :class:`Gateway` built from ``vonage_settings``, closed after the test.
- ``webhook_catcher``: a tiny HTTP server that records the webhooks it receives.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from app.vonage_gateway import Gateway, VonageSettings
from sandbox import SandboxServer, start_sandbox

__all__ = [
    "SANDBOX_TEST_CONFIG",
    "CaughtRequest",
    "WebhookCatcher",
    "gateway",
    "sandbox",
    "sandbox_server",
    "vonage_settings",
    "webhook_catcher",
]

SANDBOX_TEST_CONFIG: dict[str, Any] = {
    "receipt_delay": 0.0,
    "webhook_retry_base": 0.05,
    "webhook_retry_max": 0.2,
    "webhook_max_attempts": 10,
    "webhook_timeout": 2.0,
}
"""Sandbox settings for fast tests: receipts at once, retries every 50-200 ms."""


@dataclass
class CaughtRequest:
    """One request the catcher received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    json: Any
    headers: dict[str, str]
    body_kind: str  # "query", "form", "json" or "empty"

    @property
    def params(self) -> dict[str, Any]:
        """Query, form and JSON parameters together, as a webhook handler reads them."""
        params: dict[str, Any] = dict(self.query)
        params.update(self.form)
        if isinstance(self.json, dict):
            params.update(self.json)
        return params


@dataclass
class WebhookCatcher:
    """A threaded HTTP server that records every request and answers 200 (or as told)."""

    _server: ThreadingHTTPServer = field(init=False)
    _thread: threading.Thread = field(init=False)
    _requests: list[CaughtRequest] = field(default_factory=list, init=False)
    _answers: deque[int] = field(default_factory=deque, init=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, init=False)

    def __post_init__(self) -> None:
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                content_type = (self.headers.get("Content-Type") or "").split(";")[0]
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                form: dict[str, str] = {}
                payload: Any = None
                if content_type == "application/json" and body:
                    payload = json.loads(body)
                    kind = "json"
                elif body:
                    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                    kind = "form"
                else:
                    kind = "query" if query else "empty"
                caught = CaughtRequest(
                    self.command, parts.path, query, form, payload, dict(self.headers), kind
                )
                with catcher._changed:
                    status = catcher._answers.popleft() if catcher._answers else 200
                    catcher._requests.append(caught)
                    catcher._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def host_port(self) -> str:
        """``127.0.0.1:port``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        """The catcher's base URL."""
        return f"http://{self.host_port}"

    def url_for(self, path: str = "/hook") -> str:
        """A full URL on the catcher."""
        return self.url + path

    def respond_with(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again)."""
        with self._changed:
            self._answers.extend([status] * times)

    def requests(self, path: str | None = None) -> list[CaughtRequest]:
        """Requests received so far (optionally only those to ``path``)."""
        with self._changed:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 5.0
    ) -> list[CaughtRequest]:
        """Wait until ``count`` requests (to ``path``) arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self._requests if path is None or r.path == path]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    break
                self._changed.wait(remaining)
        if len(found) < count:
            raise AssertionError(f"expected {count} webhook(s), got {len(found)}: {found}")
        return found

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox for the whole test run (use ``sandbox`` in tests: it resets it)."""
    server = start_sandbox(config=SANDBOX_TEST_CONFIG)
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The running sandbox, fresh for this test."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def vonage_settings(sandbox: SandboxServer) -> VonageSettings:
    """Gateway settings for the sandbox: its credentials, its host, plain HTTP."""
    return VonageSettings(
        api_key="sandbox-key",
        api_secret="sandbox-secret",
        signature_secret="sandbox-signature-secret",
        signature_method="sha256",
        rest_host=sandbox.host_port,
        api_host=sandbox.host_port,
        timeout=5.0,
        plain_http=True,
    )


@pytest.fixture
def gateway(vonage_settings: VonageSettings) -> Iterator[Gateway]:
    """A gateway talking to the sandbox."""
    gateway = Gateway(vonage_settings)
    yield gateway
    gateway.close()


@pytest.fixture
def webhook_catcher() -> Iterator[WebhookCatcher]:
    """A recording webhook endpoint (``.url_for(path)``, ``.wait_for(n)``)."""
    catcher = WebhookCatcher()
    yield catcher
    catcher.stop()
