"""Input the app must survive: ids no row can have in query strings (the URL map's own walk is
in test_tenant_isolation.py), and request bodies sent without a length (chunked) over the
limit, which answer 413 instead of being cut off at the limit."""

from __future__ import annotations

import http.client
import io
import logging
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from werkzeug.serving import make_server

from app.routes.webhooks import WEBHOOK_MAX_BYTES
from tests.inbound_helpers import INBOUND_PATH, dedicated_number, stored_parts, text_fields
from tests.sending_helpers import signed

TOO_LARGE_ID = "1" + "0" * 22  # 23 digits: beyond every id column (integer)


@pytest.fixture
def owner(actions, make_business) -> dict:
    business = make_business()
    actions.sign_in(business["owner"][1])
    return business


# --- Ids in query strings ----------------------------------------------------------------------


def test_a_client_id_beyond_the_databases_range_in_the_new_message_picker_is_404(actions, owner):
    for value in (TOO_LARGE_ID, str(2**31), "-1"):
        response = actions.client.get(f"/messages/new?client_id={value}")
        assert response.status_code == 404, value


def test_an_inbox_cursor_naming_an_id_beyond_the_range_shows_the_first_page(actions, owner):
    cursor = f"2026-11-02T15:00:00+00:00_{TOO_LARGE_ID}"
    for parameter in ("after", "through"):
        response = actions.client.get(f"/inbox?{parameter}={cursor}", headers={"HX-Request": "1"})
        assert response.status_code == 200, parameter


def test_a_client_list_page_beyond_every_row_there_can_be_is_empty(actions, owner):
    response = actions.client.get(f"/clients?page={TOO_LARGE_ID}")
    assert response.status_code == 200


def test_an_event_id_too_large_for_redis_resumes_the_stream_with_a_reset(actions, owner):
    too_large = "9" * 20  # 20 digits: past Redis's 64-bit halves of a stream id
    response = actions.client.get(f"/events?last_event_id={too_large}-{too_large}")
    try:
        assert response.status_code == 200
        assert b"event: reset" in next(iter(response.response))
    finally:
        response.close()


# --- Bodies without a length (chunked) ---------------------------------------------------------


def _chunked(client, path: str, body: bytes, content_type: str):
    """A POST whose body is streamed with no Content-Length, as a server hands a chunked
    request to the app (it has de-chunked the stream and marks it terminated)."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": content_type},
        environ_overrides={"wsgi.input_terminated": True},
    )


FORM = "application/x-www-form-urlencoded"


def test_a_chunked_form_over_the_size_limit_is_refused_with_413(app, actions, owner):
    token = actions.csrf_token()
    body = f"csrf_token={token}&name=".encode()
    body += b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1 - len(body))

    response = _chunked(actions.client, "/clients", body, FORM)

    assert response.status_code == 413


@pytest.mark.parametrize("content_type", [FORM, "application/json", "multipart/form-data; b=x"])
def test_a_chunked_webhook_over_its_16_kb_limit_is_refused_with_413(app, client, content_type):
    response = _chunked(client, INBOUND_PATH, b"x" * (WEBHOOK_MAX_BYTES + 1), content_type)

    assert response.status_code == 413
    assert stored_parts(app) == []


def test_a_chunked_body_within_the_limit_is_read_whole(app, client, make_business):
    dedicated_number(app, make_business()["id"])
    body = urlencode(signed(text_fields("Hi, can I move my appointment?"))).encode()

    response = _chunked(client, INBOUND_PATH, body, FORM)

    assert response.status_code == 200
    assert [part.text for part in stored_parts(app)] == ["Hi, can I move my appointment?"]


@pytest.fixture
def dev_server(app) -> Iterator[int]:
    """The app behind Werkzeug's development server (which de-chunks requests itself)."""
    werkzeug_log = logging.getLogger("werkzeug")
    if not werkzeug_log.handlers:
        werkzeug_log.addHandler(logging.NullHandler())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _post_chunked(port: int, path: str, body: bytes) -> int:
    """POSTs `body` over a real socket in 4 KB chunks (Transfer-Encoding: chunked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", FORM)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for start in range(0, len(body), 4096):
            chunk = body[start : start + 4096]
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_chunked_webhook_over_its_limit_through_the_dev_server_is_refused_with_413(
    app, dev_server
):
    body = b"text=" + b"x" * WEBHOOK_MAX_BYTES

    assert _post_chunked(dev_server, INBOUND_PATH, body) == 413
    assert stored_parts(app) == []


def test_a_chunked_webhook_within_its_limit_through_the_dev_server_is_stored(
    app, dev_server, make_business
):
    dedicated_number(app, make_business()["id"])
    body = urlencode(signed(text_fields("Running late"))).encode()

    assert _post_chunked(dev_server, INBOUND_PATH, body) == 200
    assert [part.text for part in stored_parts(app)] == ["Running late"]
