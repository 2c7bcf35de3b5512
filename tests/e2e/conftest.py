"""Fixtures for browser tests: the real app on a real port, and Chromium pages to drive it.

`live_server` serves the `app` fixture (same database and Redis as the rest of the suite) from
the demo's threaded werkzeug server (`app.dev_server`: it closes every response, also when the
browser drops a connection), with the job worker running beside it as the demo runs it.
`phone` (360×740, touch) and `desktop` (1280×800) are fresh Playwright pages in Debian's
Chromium (`CHROMIUM_PATH`, default /usr/bin/chromium; Playwright never downloads a browser
here). Each fails its test on a JavaScript error or on anything the Content-Security-Policy
refused: the `securitypolicyviolation` event, the browser's report of each refusal in a page.

Without Chromium the browser tests are skipped, except under CI (`CI` set), where a missing
browser fails them: CI must never pass with the browser journeys silently left out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, got_request_exception
from playwright.sync_api import Browser, Error, Page, Playwright, expect, sync_playwright

from app import dev_server
from app.inprocess_worker import start_inprocess_worker
from app.services import events
from tests.conftest import PASSWORD

E2E_DIR = Path(__file__).parent
RESULTS_DIR = Path(__file__).parents[2] / "test-results"

# Playwright adds --headless itself; the rest keep Chromium off this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
ACTION_TIMEOUT_MS = 10_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def running_under_ci() -> bool:
    """True when the `CI` variable says so (GitHub, GitLab and most runners set CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def chromium_path() -> str:
    return os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is a browser test, so `-m "not e2e"` always leaves it out."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keeps each phase's report on the test, so page fixtures know when to take a screenshot."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


# --- the app on a real port -------------------------------------------------------------


@dataclass
class LiveServer:
    """The running app: `url` for the browser, `app` for setting up data in the test."""

    url: str
    app: Flask
    server_errors: list[BaseException] = field(default_factory=list)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """Serves `app` on 127.0.0.1 and a free port until the test ends; runs its jobs meanwhile.

    The test fails if a request raised an exception in the app (a 500 the browser may not
    show), the worker loop broke, or an event stream was never closed. Event-stream heartbeats
    come every 2 s here.
    """
    # Request lines still reach pytest's captured log; this only stops werkzeug from adding
    # its own stderr handler, which printed every line twice in a failure's report.
    werkzeug_log = logging.getLogger("werkzeug")
    if not werkzeug_log.handlers:
        werkzeug_log.addHandler(logging.NullHandler())
    server = dev_server.DevServer("127.0.0.1", 0, app)
    live = LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    app.config["PUBLIC_URL"] = live.url  # links in emails and pages point at this server
    # A closed page's event stream ends at its next heartbeat: keep that soon, so streams of
    # finished tests don't linger (and hold Redis connections) for the default 15 s.
    app.config["SSE_HEARTBEAT_SECONDS"] = 2

    def record_error(sender: Flask, exception: BaseException, **extra: Any) -> None:
        live.server_errors.append(exception)

    got_request_exception.connect(record_error, app)
    server_thread = threading.Thread(
        target=server.serve_forever, name="twoway-live-server", daemon=True
    )
    server_thread.start()
    # The demo's own in-process worker: jobs run as they come due.
    worker = start_inprocess_worker(app, poll_seconds=0.1)
    try:
        yield live
    finally:
        worker.stop(timeout=30)
        server.shutdown()
        # The browser pages are closed by now: their event streams end at the next heartbeat.
        requests_ended = server.wait_for_requests(timeout=10)
        server.server_close()
        server_thread.join(timeout=10)
        got_request_exception.disconnect(record_error, app)
    # Every request has ended: a stream still in the hub is one whose close() never came.
    open_streams = events.hub_for(app).open_streams
    assert requests_ended, "requests to the live server were still running 10 s after the test"
    assert not worker.thread.is_alive(), (
        f"the job worker did not stop within 30 s; it is at:\n{_stack_of(worker.thread)}"
    )
    assert not live.server_errors, f"the app raised while serving: {live.server_errors!r}"
    assert not worker.errors, f"the job worker loop raised: {worker.errors!r}"
    assert not open_streams, f"{open_streams} event stream(s) never closed: still in the hub"


def _stack_of(thread: threading.Thread) -> str:
    """Where `thread` is right now, as a traceback (for a failure that says it is stuck)."""
    frame = sys._current_frames().get(thread.ident or 0)
    return "".join(traceback.format_stack(frame)) if frame else "(not running)"


# --- Chromium ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


def require_chromium() -> str:
    """The Chromium to launch. Missing: skips the test, or fails it under CI."""
    path = chromium_path()
    if not Path(path).is_file():
        reason = (
            f"no Chromium at {path} (install Debian's `chromium` package, e.g. with "
            "`make test` as root, or set CHROMIUM_PATH)"
        )
        if running_under_ci():
            pytest.fail(f"{reason}; under CI the browser tests must run", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, shared by the whole run (each page gets its own context)."""
    path = require_chromium()
    try:
        chromium = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
    except Error as error:  # present but broken is a failure everywhere, never a skip
        pytest.fail(f"Chromium at {path} did not start: {error}", pytrace=False)
    yield chromium
    chromium.close()


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


# Every page reports what the Content-Security-Policy refused. Init scripts come from DevTools,
# which the policy does not govern, and run before any of the page's own.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.twowayCspViolation([event.effectiveDirective, event.blockedURI || "inline",
    event.sourceFile + ":" + event.lineNumber, event.sample].join(" "));
}, true);
"""


def _open_page(
    browser: Browser,
    live_server: LiveServer,
    request: pytest.FixtureRequest,
    name: str,
    options: dict[str, Any],
) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, locale="en-US", **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    csp_violations: list[str] = []

    def record_refusal(report: str) -> None:
        csp_violations.append(report)

    context.expose_function("twowayCspViolation", record_refusal)
    context.add_init_script(_REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.csp_violations = csp_violations  # type: ignore[attr-defined]  (tests may look)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        yield page
        with contextlib.suppress(Error):  # let reports still on their way arrive
            page.evaluate("0")
        reports = request.node.stash.get(_REPORTS, {})
        if "call" in reports and reports["call"].failed:
            RESULTS_DIR.mkdir(exist_ok=True)
            shot = RESULTS_DIR / f"{_safe_name(request.node.nodeid)}-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the {name} page at failure: {shot}")
    finally:
        context.close()
    assert not page_errors, f"JavaScript errors on the {name} page: {page_errors}"
    assert not csp_violations, f"Content-Security-Policy violations on the {name} page: " + (
        "\n".join(csp_violations)
    )


@pytest.fixture
def phone(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh 360×740 touch-screen page (its own cookies) on the live server."""
    yield from _open_page(browser, live_server, request, "phone", PHONE)


@pytest.fixture
def desktop(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh 1280×800 page (its own cookies) on the live server."""
    yield from _open_page(browser, live_server, request, "desktop", DESKTOP)


@pytest.fixture
def sign_in() -> Callable[..., None]:
    """Signs a person in through the sign-in form and waits for the inbox."""

    def sign_in_as(page: Page, email: str, password: str = PASSWORD) -> None:
        page.goto("/sign-in")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1, name="Inbox")).to_be_visible()

    return sign_in_as
