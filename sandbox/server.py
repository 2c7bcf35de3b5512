"""Run the sandbox on a real socket: in a background thread (tests, demo) or in the foreground."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox.app import create_sandbox_app, sandbox_state
from sandbox.state import SandboxState


class _QuietRequestHandler(WSGIRequestHandler):
    """Does not log every request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing about successful requests."""


class SandboxServer:
    """A running sandbox: its address, its Flask app, and shortcuts to its state."""

    def __init__(self, server: BaseWSGIServer, app: Flask, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.app = app
        self.host_port = f"{server.host}:{server.port}"
        self.url = f"http://{self.host_port}"

    @property
    def state(self) -> SandboxState:
        """The sandbox's in-memory state (thread-safe behind ``state.lock``)."""
        return sandbox_state(self.app)

    def stop(self) -> None:
        """Stop serving and abandon pending webhook deliveries."""
        self.state.shutdown()
        self._server.shutdown()
        self._thread.join(timeout=5)

    # Shortcuts for tests, the same as the /_sandbox endpoints without the HTTP round trip.

    def reset(self) -> None:
        """Forget everything: texts, requests, faults, numbers bought, registrations."""
        self.state.reset()

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change settings, as ``POST /_sandbox/settings``."""
        return self.state.update_settings(settings)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Set faults, as ``POST /_sandbox/faults``."""
        return self.state.update_faults(faults)

    def snapshot(self) -> dict[str, Any]:
        """Everything, as ``GET /_sandbox/state``."""
        return self.state.snapshot()

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """The API requests received (optionally only those to ``path``), duplicates included."""
        with self.state.lock:
            return [dict(r) for r in self.state.requests if path is None or r["path"] == path]

    def send_inbound(self, sender: str, to: str, text: str) -> list[str]:
        """A handset texts one of our numbers; returns each part's message id."""
        return self.state.send_inbound(sender, to, text)

    def approve(self, registration_id: str) -> None:
        """The carriers approve the verification."""
        self.state.decide_registration(registration_id, "REGISTERED")

    def reject(self, registration_id: str, reason: str) -> None:
        """The carriers reject the verification with a reason."""
        self.state.decide_registration(registration_id, "REJECTED", reason)


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    config: dict[str, Any] | None = None,
    *,
    quiet: bool = True,
) -> SandboxServer:
    """Start the sandbox with werkzeug's threaded server in a daemon thread.

    ``port=0`` picks a free port; read it from ``.url`` or ``.host_port``.
    """
    app = create_sandbox_app(config)
    server = make_server(
        host,
        port,
        app,
        threaded=True,
        request_handler=_QuietRequestHandler if quiet else None,
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"vonage-sandbox-{server.port}",
        daemon=True,
    )
    thread.start()
    return SandboxServer(server, app, thread)
