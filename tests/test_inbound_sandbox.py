"""End to end through real HTTP: the Vonage sandbox delivers a handset's reply as Vonage does
(signed, GET, form or JSON, long texts in parts) to the app served on a port, whose own job
worker turns it into a message (issue 6 item 7, as `make run` does it)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask, got_request_exception
from werkzeug.serving import make_server

from app.extensions import db
from app.inprocess_worker import start_inprocess_worker
from app.models import Business, Message
from app.services import texting
from tests.inbound_helpers import make_known_client
from tests.sending_helpers import give_dedicated_number
from tests.texting_helpers import complete_business_info, use_sandbox

PERSON = "+15557654321"


@contextlib.contextmanager
def served(app: Flask, port: int) -> Iterator[str]:
    """The app on 127.0.0.1:`port` with its in-process worker; yields its URL. Fails if a
    request raised or the worker loop broke."""
    logging.getLogger("werkzeug").addHandler(logging.NullHandler())
    server = make_server("127.0.0.1", port, app, threaded=True)
    errors: list[BaseException] = []

    def record(sender: Flask, exception: BaseException, **extra: object) -> None:
        errors.append(exception)

    got_request_exception.connect(record, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    worker = start_inprocess_worker(app, poll_seconds=0.1)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        worker.stop(timeout=30)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        got_request_exception.disconnect(record, app)
    assert not errors, f"the app raised while serving: {errors!r}"
    assert not worker.errors, f"the job worker loop raised: {worker.errors!r}"


def _wait_for_inbound(app: Flask, count: int, timeout: float = 20) -> list[Message]:
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            rows = list(
                db.session.execute(
                    db.select(Message).where(Message.direction == "inbound").order_by(Message.id)
                ).scalars()
            )
            for row in rows:
                db.session.expunge(row)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def texting_business(app, sandbox, make_business, run_jobs):
    """A business with a verified number bought from the sandbox, whose inbound URL points at
    the port the app is about to be served on."""
    use_sandbox(app, sandbox)
    probe = make_server("127.0.0.1", 0, app)  # take a free port, then free it for `served`
    port = probe.server_port
    probe.server_close()
    app.config["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    made = make_business("Bright Smile Dental")
    complete_business_info(app, made["id"])
    made["number"] = give_dedicated_number(app, made["id"], sandbox, run_jobs)
    made["client_id"] = make_known_client(app, made["id"], number=PERSON)
    made["port"] = port
    return made


@pytest.mark.parametrize("method", ["GET", "POST", "POST-JSON"])
def test_a_reply_from_the_phone_simulator_lands_in_the_conversation(
    app, sandbox, texting_business, method
):
    sandbox.configure(webhook_method=method)
    with served(app, texting_business["port"]):
        sandbox.send_inbound(PERSON, texting_business["number"], "Hi! Is 4pm still OK?")
        (message,) = _wait_for_inbound(app, 1)
    assert message.body == "Hi! Is 4pm still OK?"
    assert message.client_id == texting_business["client_id"]
    assert message.visibility == "inbox"
    assert all(record["delivered"] for record in sandbox.snapshot()["inbound"])


def test_a_long_reply_arrives_in_parts_and_becomes_one_message(app, sandbox, texting_business):
    text = "Sorry, something came up at work. " * 12  # 408 characters: 3 parts
    with served(app, texting_business["port"]):
        ids = sandbox.send_inbound(PERSON, texting_business["number"], text)
        messages = _wait_for_inbound(app, 1)
    assert len(ids) == 3
    assert [m.body for m in messages] == [text]
    assert not messages[0].incomplete


def test_a_reply_to_a_system_number_reaches_the_webhook_and_is_answered(
    app, sandbox, texting_business
):
    with app.app_context():
        business = db.session.get(Business, texting_business["id"])
        business.sms_setting = "do_not_reply"
        db.session.add(
            Message(
                business_id=business.id,
                client_id=texting_business["client_id"],
                channel="text",
                direction="outbound",
                kind="marketing",
                body="Whitening 20% off this week",
                sender=texting.system_numbers().marketing,
                recipient=PERSON,
                status="delivered",
            )
        )
        db.session.commit()
        system = texting.system_numbers().marketing
    sandbox.configure(inbound_url=f"{app.config['PUBLIC_URL']}/webhooks/vonage/inbound")
    with served(app, texting_business["port"]):
        sandbox.send_inbound(PERSON, system, "ok thanks")
        (message,) = _wait_for_inbound(app, 1)
        deadline = time.monotonic() + 20
        while not sandbox.snapshot()["messages"] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert message.visibility == "system"
    (answer,) = sandbox.snapshot()["messages"]
    assert answer["from"] == system.lstrip("+")
    assert answer["text"].startswith("Replies to this number aren't read.")
