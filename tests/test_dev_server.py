"""The development server (browser tests, demo) closes every response, however the client goes.

Real sockets against the real server: a client that resets its connection while werkzeug is
still reading what the client sent must not leave the static file it was sent open.
"""

from __future__ import annotations

import gc
import socket
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from flask import Flask

from app import dev_server

UNREAD_BODY_BYTES = 64 * 1024  # fits the server's receive buffer; sent before the response


def _serve(app: Callable[..., Iterable[bytes]]) -> tuple[dev_server.DevServer, threading.Thread]:
    server = dev_server.DevServer("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def _stop(server: dev_server.DevServer, thread: threading.Thread) -> None:
    server.shutdown()
    assert server.wait_for_requests(timeout=10), "a request was still running after 10 s"
    thread.join(timeout=10)


def _request_then_reset(port: int, path: str) -> bytes:
    """GETs `path` with a body the app never reads, takes the whole response, then resets the
    connection (as a browser does when it drops a request it no longer needs). The unread body
    keeps werkzeug reading from the socket after the response, so the reset lands there."""
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {UNREAD_BODY_BYTES}\r\n\r\n".encode()
            + b"x" * UNREAD_BODY_BYTES
        )
        response = b""
        while not _is_complete(response):
            chunk = client.recv(65536)
            assert chunk, f"the server closed before the whole response: {response!r}"
            response += chunk
        # Linger 0: close() sends a reset instead of a graceful end.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return response


def _is_complete(response: bytes) -> bool:
    head, separator, body = response.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    raise AssertionError(f"no Content-Length in {head!r}")


def test_a_static_file_is_closed_when_the_browser_resets_the_connection(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(repr(u.exc_value)))
    server, thread = _serve(app)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # an unclosed file is reported
        try:
            response = _request_then_reset(server.server_port, "/static/icon.svg")
        finally:
            _stop(server, thread)
        gc.collect()
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert not unraisable, f"left open after the reset: {unraisable}"


class _TrackedBody:
    """A response body that counts its close() calls."""

    def __init__(self) -> None:
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        return iter([b"ok"])

    def close(self) -> None:
        self.closes += 1


def test_a_response_is_closed_exactly_once_when_the_request_ends_normally() -> None:
    bodies: list[_TrackedBody] = []

    def tracked_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> _TrackedBody:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        bodies.append(_TrackedBody())
        return bodies[-1]

    server, thread = _serve(tracked_app)
    try:
        with socket.create_connection(("127.0.0.1", server.server_port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            response = b""
            while chunk := client.recv(65536):  # the server ends every connection
                response += chunk
    finally:
        _stop(server, thread)
    assert response.endswith(b"\r\n\r\nok"), response
    assert [body.closes for body in bodies] == [1]


def test_waiting_for_requests_returns_only_once_the_running_one_has_ended() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        entered.set()
        release.wait(timeout=30)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server, thread = _serve(slow_app)
    try:
        with socket.create_connection(("127.0.0.1", server.server_port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert entered.wait(timeout=10), "the request never reached the app"
            still_running = not server.wait_for_requests(timeout=0.5)
            release.set()
            while client.recv(65536):
                pass
    finally:
        release.set()
        _stop(server, thread)
    assert still_running
