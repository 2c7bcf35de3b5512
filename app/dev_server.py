"""Werkzeug's development server, made to close every response however the client leaves.

The demo (`python -m app.demo`) and the browser tests serve the app with `DevServer`; in
production gunicorn serves it, and gunicorn closes the response in a `finally` of its own.

The rule (PEP 3333): when a request ends, the server calls the response iterable's `close()`,
whether it ended normally or not. That is how a static file (`send_file`'s file wrapper) gets
closed and how an `/events` stream leaves its hub. Werkzeug 3.1's `WSGIRequestHandler.run_wsgi`
calls it last in a `finally` that first reads away whatever the client still sends; when the
client resets the connection meanwhile (a browser dropping a request it no longer needs, such
as the icon while the page navigates away), that read raises ConnectionResetError and
`close()` is skipped. The file is then closed only when it is collected, with a ResourceWarning
(which the suite's `filterwarnings = error` turns into a failure of whatever test runs then).

So `DevServer` wraps the app to keep each response in its environ (closed at most once) and
serves with a request handler that closes it once werkzeug is done, whatever happened: a
normal request is closed by werkzeug as before, and the second close does nothing.

Werkzeug's request threads are daemons that `server_close()` does not wait for, so a test could
not tell when the requests it made have ended (and any leak in them has shown). `DevServer`
counts them: `wait_for_requests` returns once none is running.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug import serving

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

RESPONSE_KEY = "twoway.dev_server.response"


class _Response:
    """The app's response iterable; `close()` closes it the first time and then does nothing."""

    def __init__(self, iterable: Iterable[bytes]) -> None:
        self._iterable = iterable
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._iterable, "close", None)
        if close is not None:
            close()


def _keeping_the_response(app: WSGIApplication) -> WSGIApplication:
    """`app`, with each response also kept in the request's environ for the handler."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> _Response:
        response = _Response(app(environ, start_response))
        environ[RESPONSE_KEY] = response
        return response

    return application


class ClosingRequestHandler(serving.WSGIRequestHandler):
    """Werkzeug's handler, then a `close()` of the response it may have skipped."""

    def run_wsgi(self) -> None:
        try:
            super().run_wsgi()
        finally:
            environ = getattr(self, "environ", None)  # unset if the request never parsed
            response = environ.pop(RESPONSE_KEY, None) if environ is not None else None
            if response is not None:
                response.close()


class DevServer(serving.ThreadedWSGIServer):
    """Werkzeug's threaded server for `app` on `host`:`port` (0: a free port) that closes every
    response, and can wait until the requests it took have ended (`wait_for_requests`). Run it
    with `serve_forever()`; its request threads are daemons, so an open stream never holds up
    the process's exit."""

    def __init__(self, host: str, port: int, app: WSGIApplication) -> None:
        super().__init__(host, port, _keeping_the_response(app), handler=ClosingRequestHandler)
        self._requests_in_flight = 0
        self._request_ended = threading.Condition()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._request_ended:
            self._requests_in_flight += 1
        try:
            super().process_request(request, client_address)  # starts the request's thread
        except BaseException:
            self._end_request()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._end_request()

    def _end_request(self) -> None:
        with self._request_ended:
            self._requests_in_flight -= 1
            self._request_ended.notify_all()

    def wait_for_requests(self, timeout: float) -> bool:
        """Waits until no request is being handled (call it after `shutdown()`, so no new one
        starts); False if some were still running after `timeout` seconds."""
        with self._request_ended:
            return self._request_ended.wait_for(lambda: self._requests_in_flight == 0, timeout)
