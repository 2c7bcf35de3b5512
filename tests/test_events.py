"""Live events: `publish` and the `/events` server-sent event stream.

Streams are read through the test client without buffering: each read returns within one
heartbeat (set to 0.1 s here), so every wait below has a deadline and none can hang.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_login import current_user, login_user
from hypothesis import given
from hypothesis import strategies as st

from app.extensions import db
from app.models import User, UserSession
from app.services import events, sessions
from app.services.queues import enqueue
from jobs import app_job
from tests.conftest import PASSWORD, TEST_REDIS_URL, Actions, sign_in_without_password

pytestmark = pytest.mark.timeout(30)

HEARTBEAT_SECONDS = 0.1


# Reading a stream -------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One dispatched SSE message as the browser's EventSource sees it."""

    event: str
    data: str
    id: str


def parse_sse(text: str, last_id: str = "") -> tuple[list[Message | str], str]:
    """The messages and comments in complete SSE `text`, parsed as the HTML standard's
    event-stream interpretation says (comments are kept, as ": ..." strings)."""
    parsed: list[Message | str] = []
    event, data = "", ""
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:  # an empty data buffer dispatches nothing (but the id still counts)
                parsed.append(Message(event or "message", data.removesuffix("\n"), last_id))
            event, data = "", ""
            continue
        if line.startswith(":"):
            parsed.append(line)
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data += value + "\n"
        elif field == "id" and "\0" not in value:
            last_id = value
    return parsed, last_id


class EventReader:
    """An open `/events` response, read message by message."""

    def __init__(self, response):
        self.response = response
        self.chunks = iter(response.response)
        self.buffer = ""
        self.last_id = ""
        self.backlog: list[Message | str] = []
        self.ended = False

    def read(self, seconds: float = 5.0) -> Message | str | None:
        """The next message or comment, or None if none came within `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.backlog:
            if self.ended or time.monotonic() > deadline:
                return None
            try:
                self.buffer += next(self.chunks).decode()
            except StopIteration:
                self.ended = True
                continue
            complete, _, self.buffer = self.buffer.rpartition("\n\n")
            if complete:
                parsed, self.last_id = parse_sse(complete + "\n\n", self.last_id)
                self.backlog.extend(parsed)
        return self.backlog.pop(0)

    def messages_until(self, event: str, seconds: float = 5.0) -> list[Message]:
        """Every message up to and including the first named `event`; fails after `seconds`."""
        deadline = time.monotonic() + seconds
        seen: list[Message] = []
        while time.monotonic() < deadline:
            item = self.read(deadline - time.monotonic())
            if isinstance(item, Message):
                seen.append(item)
                if item.event == event:
                    return seen
        raise AssertionError(f"no {event!r} event within {seconds} s; got {seen!r}")

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def open_stream(app: Flask, client: FlaskClient) -> Iterator[Callable[..., EventReader]]:
    """Opens `/events` like an EventSource; every stream opened is closed after the test."""
    app.config["SSE_HEARTBEAT_SECONDS"] = HEARTBEAT_SECONDS
    readers: list[EventReader] = []

    def open_(
        url: str = "/events", *, through: FlaskClient | None = None, headers=None
    ) -> EventReader:
        response = (through or client).get(url, headers=headers or {}, buffered=False)
        assert response.status_code == 200, response.status
        reader = EventReader(response)
        readers.append(reader)
        return reader

    yield open_
    for reader in readers:
        reader.close()


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient, make_business) -> int:
    """Signs the test client in as a business's owner; returns the business's id."""
    business = make_business()
    sign_in_without_password(app, client, business["owner"][0])
    return business["id"]


def publish(app: Flask, business_id: int, name: str, data: str | dict = "") -> str:
    with app.app_context():
        return events.publish(business_id, name, data)


@app_job
def publish_from_a_job(business_id: int, text: str) -> str:
    """A job that publishes, as the product's jobs will (RQ imports it from here)."""
    return events.publish(business_id, "note.added", text)


# Delivery ---------------------------------------------------------------------------------


@pytest.fixture
def publishing_route(app: Flask) -> str:
    """A test-only view that publishes for the signed-in staff member's business, as the
    product's views will (added before the app serves its first request)."""

    @app.get("/test-only/publish")
    def publish_in_a_request():
        events.publish(current_user.business_id, "message.created", "<p>Hello</p>")
        return "published"

    return "/test-only/publish"


def test_an_event_published_during_a_request_arrives_on_an_open_stream(
    publishing_route, client, signed_in, open_stream
):
    stream = open_stream()
    stream.messages_until("ready")
    assert client.get(publishing_route).status_code == 200
    [message] = stream.messages_until("message.created")
    assert message.data == "<p>Hello</p>"


def test_an_event_for_another_business_never_arrives(app, signed_in, make_business, open_stream):
    other = make_business()
    stream = open_stream()
    stream.messages_until("ready")
    publish(app, other["id"], "message.created", "theirs")
    publish(app, signed_in, "message.created", "ours")
    assert [m.data for m in stream.messages_until("message.created")] == ["ours"]


def test_an_event_published_from_another_thread_arrives(app, signed_in, open_stream):
    stream = open_stream()
    stream.messages_until("ready")
    worker = threading.Thread(target=publish, args=(app, signed_in, "inbox.count", {"n": 3}))
    worker.start()
    worker.join()
    [message] = stream.messages_until("inbox.count")
    assert message.data == '{"n":3}'


def test_an_event_published_by_a_job_arrives(app, signed_in, open_stream, run_jobs):
    stream = open_stream()
    stream.messages_until("ready")
    with app.app_context():
        enqueue(publish_from_a_job, signed_in, "from the worker")
    run_jobs()
    [message] = stream.messages_until("note.added")
    assert message.data == "from the worker"


def test_many_open_streams_share_one_redis_subscription(app, signed_in, open_stream, monkeypatch):
    redis = app.extensions["twoway.redis"]
    subscriptions = []
    real_pubsub = redis.pubsub

    def counting_pubsub(**kwargs):
        subscriptions.append(kwargs)
        return real_pubsub(**kwargs)

    monkeypatch.setattr(redis, "pubsub", counting_pubsub)
    streams = [open_stream() for _ in range(25)]
    for stream in streams:
        stream.messages_until("ready")
    event_id = publish(app, signed_in, "message.created", "to all")
    for stream in streams:
        assert [m.id for m in stream.messages_until("message.created")] == [event_id]
    assert len(subscriptions) == 1


def test_an_idle_stream_sends_heartbeats(signed_in, open_stream):
    stream = open_stream()
    stream.messages_until("ready")
    assert stream.read(seconds=2) == ": heartbeat"
    assert stream.read(seconds=2) == ": heartbeat"


# Framing ----------------------------------------------------------------------------------


def test_a_stream_opens_with_a_retry_delay_and_a_ready_event_at_the_newest_id(
    app, signed_in, client
):
    event_id = publish(app, signed_in, "message.created", "before")
    response = client.get("/events", buffered=False)
    try:
        opening = next(iter(response.response)).decode()
    finally:
        response.close()
    assert opening.startswith("retry: 3000\n\n")
    [ready], _ = parse_sse(opening)
    assert (ready.event, ready.id) == ("ready", event_id)


def test_the_stream_is_served_as_uncached_unbuffered_event_stream(signed_in, client):
    response = client.get("/events", buffered=False)
    response.close()
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"


def test_multi_line_html_is_sent_as_one_data_line_per_line(app, signed_in, client, open_stream):
    stream = open_stream()
    stream.messages_until("ready")
    fragment = '<li id="m1">\n  <p>Hi</p>\r\n</li>'
    event_id = publish(app, signed_in, "message.created", fragment)
    raw = next(stream.chunks).decode()
    assert raw == (
        f"id: {event_id}\nevent: message.created\n"
        'data: <li id="m1">\ndata:   <p>Hi</p>\ndata: </li>\n\n'
    )


@given(st.text())
def test_any_text_arrives_as_sent_with_its_line_ends_made_newlines(text):
    [message], last_id = parse_sse(events.format_event("note.added", text, "5-0").decode())
    assert (message.event, message.data, last_id) == (
        "note.added",
        re.sub(r"\r\n|\r", "\n", text),
        "5-0",
    )


def test_unusable_event_names_are_refused(app):
    with app.app_context():
        for name in ["", "two words", "a,b", "line\nbreak", "ready", "reset", ".dot"]:
            with pytest.raises(ValueError):
                events.publish(1, name, "x")


# Resuming ---------------------------------------------------------------------------------


def test_reconnecting_with_last_event_id_replays_exactly_the_missed_events_in_order(
    app, signed_in, open_stream
):
    ids = [publish(app, signed_in, "message.created", f"m{n}") for n in range(6)]
    stream = open_stream(headers={"Last-Event-ID": ids[2]})
    replayed = stream.messages_until("ready")
    assert [(m.id, m.data) for m in replayed] == [
        (ids[3], "m3"),
        (ids[4], "m4"),
        (ids[5], "m5"),
        (ids[5], ""),  # ready
    ]
    live = publish(app, signed_in, "message.created", "m6")
    assert [m.id for m in stream.messages_until("message.created")] == [live]
    assert stream.read(seconds=0.3) in {": heartbeat", None}  # nothing else, nothing twice


def test_events_published_while_reconnecting_arrive_once_each_in_order(app, signed_in, open_stream):
    resume_from = publish(app, signed_in, "message.created", "seen")
    published: list[str] = []
    started = threading.Event()

    def keep_publishing() -> None:
        with app.app_context():
            for n in range(150):
                published.append(events.publish(signed_in, "message.created", str(n)))
                if n == 20:
                    started.set()

    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    started.wait(5)
    stream = open_stream(headers={"Last-Event-ID": resume_from})  # mid-flow
    publisher.join()
    received: list[str] = []
    while len(received) < len(published):
        item = stream.read(seconds=5)
        assert item is not None, f"stopped after {len(received)} of {len(published)}"
        if isinstance(item, Message) and item.event == "message.created":
            received.append(item.id)
    assert received == published


def test_a_stream_reads_what_it_missed_only_once_it_is_subscribed(
    app, signed_in, open_stream, monkeypatch
):
    with app.app_context():
        resume_from = events.latest_event_id(signed_in)
    redis = app.extensions["twoway.redis"]
    real_pubsub = redis.pubsub
    published: list[str] = []

    def slow_pubsub(**kwargs):
        pubsub = real_pubsub(**kwargs)
        real_psubscribe = pubsub.psubscribe

        def psubscribe(*patterns):
            time.sleep(0.2)  # Redis is slow to subscribe, and meanwhile an event is published
            published.append(publish(app, signed_in, "message.created", "meanwhile"))
            return real_psubscribe(*patterns)

        pubsub.psubscribe = psubscribe
        return pubsub

    monkeypatch.setattr(redis, "pubsub", slow_pubsub)
    stream = open_stream(headers={"Last-Event-ID": resume_from})
    assert [m.id for m in stream.messages_until("message.created")] == published


def test_the_stream_answers_503_when_redis_cannot_be_subscribed_to(
    app, signed_in, client, monkeypatch
):
    def broken_pubsub(**kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(app.extensions["twoway.redis"], "pubsub", broken_pubsub)
    monkeypatch.setattr(events, "HUB_READY_TIMEOUT", 0.2)
    response = client.get("/events")
    assert (response.status_code, response.mimetype) == (503, "text/plain")


def test_the_last_event_id_query_parameter_resumes_a_new_event_source(app, signed_in, open_stream):
    with app.app_context():
        rendered_at = events.latest_event_id(signed_in)  # the page renders its stream's URL
    missed = publish(app, signed_in, "message.created", "while the page was loading")
    stream = open_stream(f"/events?last_event_id={rendered_at}")
    assert [m.id for m in stream.messages_until("ready")] == [missed, missed]


def test_the_last_event_id_header_wins_over_the_query_parameter(app, signed_in, open_stream):
    first = publish(app, signed_in, "message.created", "one")
    second = publish(app, signed_in, "message.created", "two")
    stream = open_stream(f"/events?last_event_id={first}", headers={"Last-Event-ID": second})
    assert [m.event for m in stream.messages_until("ready")] == ["ready"]


def test_a_page_rendered_before_any_event_gets_them_all(app, signed_in, open_stream):
    with app.app_context():
        rendered_at = events.latest_event_id(signed_in)
    assert rendered_at == "0-0"
    first = publish(app, signed_in, "message.created", "first ever")
    stream = open_stream(f"/events?last_event_id={rendered_at}")
    assert [m.id for m in stream.messages_until("message.created")] == [first]


def test_resuming_after_events_no_longer_kept_sends_reset(app, signed_in, open_stream):
    app.config["EVENTS_RETAINED"] = 10
    gone = publish(app, signed_in, "message.created", "old")
    for n in range(250):  # Redis trims whole nodes of 100 entries
        newest = publish(app, signed_in, "message.created", str(n))
    stream = open_stream(headers={"Last-Event-ID": gone})
    assert [(m.event, m.id) for m in stream.messages_until("ready")] == [
        ("reset", newest),
        ("ready", newest),
    ]


def test_resuming_from_an_id_that_was_never_given_out_sends_reset(app, signed_in, open_stream):
    publish(app, signed_in, "message.created", "x")
    for nonsense in ["banana", "99999999999999-0"]:
        stream = open_stream(headers={"Last-Event-ID": nonsense})
        assert [m.event for m in stream.messages_until("ready")] == ["reset", "ready"]


def test_open_streams_catch_up_after_the_redis_subscription_drops(app, signed_in, open_stream):
    redis = app.extensions["twoway.redis"]
    name = f"twoway-test-{uuid.uuid4().hex}"  # to find this app's connections on a shared Redis
    redis.connection_pool.connection_kwargs["client_name"] = name
    redis.connection_pool.reset()  # new connections from here on carry the name
    stream = open_stream()
    stream.messages_until("ready")
    hub = events.hub_for(app)
    # An event whose pub/sub message never reached the hub, as when it is published while the
    # subscription is down: it is only in the business's stream.
    missed = redis.xadd(events.stream_key(signed_in), {"event": "message.created", "data": "x"})
    if TEST_REDIS_URL:
        for client in redis.client_list(_type="pubsub"):
            if client["name"] == name:
                redis.client_kill_filter(_id=client["id"])
    else:
        server = redis.connection_pool.connection_kwargs["server"]
        server.connected = False
        _wait_for(lambda: not hub.is_subscribed)
        server.connected = True
    assert [m.id for m in stream.messages_until("message.created")] == [missed.decode()]
    _wait_for(lambda: hub.is_subscribed)
    later = publish(app, signed_in, "message.created", "after")
    assert [m.id for m in stream.messages_until("message.created")] == [later]


# Access and resources ---------------------------------------------------------------------


def test_a_signed_out_request_is_refused_without_a_redirect(client):
    response = client.get("/events")
    assert response.status_code == 401
    assert "Location" not in response.headers


def test_a_removed_staff_member_is_refused(app, client, make_business):
    business = make_business(staff=("staff",))
    sign_in_without_password(app, client, business["staff"][0])
    with app.app_context():
        db.session.get(User, business["staff"][0]).deactivated_at = db.func.now()
        db.session.commit()
    assert client.get("/events").status_code == 401


def test_pages_connect_from_the_newest_event_id_at_render_time(app, make_business):
    business = make_business()
    newest = publish(app, business["id"], "message.created", "x")
    with app.test_request_context():
        owner = db.session.get(User, business["owner"][0])
        sessions.start(owner, remembered=False, user_agent="pytest")
        login_user(owner)
        url = render_template_string("{{ events_stream_url() }}")
    assert url == f"/events?last_event_id={newest}"


def test_an_open_stream_holds_no_database_connection(app, signed_in, open_stream):
    stream = open_stream()
    stream.messages_until("ready")
    with app.app_context():
        assert db.engine.pool.checkedout() == 0


def test_closing_a_stream_leaves_the_hub(app, signed_in, open_stream):
    first, second = open_stream(), open_stream()
    hub = events.hub_for(app)
    assert hub.open_streams == 2
    first.close()
    assert hub.open_streams == 1
    second.close()
    assert hub.open_streams == 0


def test_a_stream_ends_after_its_maximum_age_so_the_browser_reconnects(
    app, signed_in, open_stream, monkeypatch
):
    monkeypatch.setattr(events, "STREAM_MAX_SECONDS", 0.3)
    stream = open_stream()
    stream.messages_until("ready")
    while stream.read(seconds=2) is not None:
        pass
    assert stream.ended
    assert events.hub_for(app).open_streams == 0


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# Sessions: a stream lasts only as long as the signed-in session it belongs to ----------------


@pytest.fixture
def told_only(monkeypatch) -> None:
    """Streams check their session by themselves only once an hour here: what ends them in
    these tests is being told (events.close_streams)."""
    monkeypatch.setattr(events, "SESSION_CHECK_SECONDS", 3600.0)


def _ends_with_session_changed(stream: EventReader) -> None:
    stream.messages_until("session.changed")
    assert stream.read(seconds=2) is None and stream.ended, "the stream went on"


def _staff_stream(app, make_business, open_stream) -> tuple[dict, EventReader, Actions]:
    """A business whose staff member has a stream open in their own browser, and its owner
    signed in in another; returns the business, the stream and the owner's browser."""
    business = make_business(staff=("staff",))
    staff_browser = app.test_client()
    sign_in_without_password(app, staff_browser, business["staff"][0])
    stream = open_stream(through=staff_browser)
    stream.messages_until("ready")
    owner_browser = app.test_client()
    sign_in_without_password(app, owner_browser, business["owner"][0])
    return business, stream, Actions(app, owner_browser)


def test_a_removed_members_open_stream_is_closed_at_once(
    app, make_business, open_stream, told_only
):
    business, stream, owner = _staff_stream(app, make_business, open_stream)
    assert owner.post(f"/settings/team/{business['staff'][0]}/remove").status_code == 302
    publish(app, business["id"], "message.created", "after the removal")
    _ends_with_session_changed(stream)


def test_a_role_change_reaches_the_members_open_stream(app, make_business, open_stream, told_only):
    business, stream, owner = _staff_stream(app, make_business, open_stream)
    role_url = f"/settings/team/{business['staff'][0]}/role"
    assert owner.post(role_url, {"role": "admin"}).status_code == 302
    _ends_with_session_changed(stream)


def test_saving_the_same_role_leaves_the_members_stream_open(
    app, make_business, open_stream, told_only
):
    business, stream, owner = _staff_stream(app, make_business, open_stream)
    role_url = f"/settings/team/{business['staff'][0]}/role"
    assert owner.post(role_url, {"role": "staff"}).status_code == 302
    event_id = publish(app, business["id"], "message.created", "still here")
    assert [m.id for m in stream.messages_until("message.created")] == [event_id]


def test_signing_out_closes_the_open_streams_of_that_session(
    app, client, actions, signed_in, open_stream, told_only
):
    other_tab = open_stream()
    other_tab.messages_until("ready")
    assert actions.sign_out().status_code == 302
    _ends_with_session_changed(other_tab)


def test_signing_out_other_devices_closes_their_streams_and_keeps_this_ones(
    app, client, actions, make_business, open_stream, told_only
):
    business = make_business()
    sign_in_without_password(app, client, business["owner"][0])
    laptop = app.test_client()
    sign_in_without_password(app, laptop, business["owner"][0])
    here, there = open_stream(), open_stream(through=laptop)
    here.messages_until("ready")
    there.messages_until("ready")
    assert actions.post("/settings/profile/sign-out-other-devices").status_code == 302
    _ends_with_session_changed(there)
    event_id = publish(app, business["id"], "message.created", "for this device")
    assert [m.id for m in here.messages_until("message.created")] == [event_id]


def test_a_password_change_closes_the_streams_of_the_other_sessions(
    app, client, actions, make_business, open_stream, told_only
):
    business = make_business()
    sign_in_without_password(app, client, business["owner"][0])
    laptop = app.test_client()
    sign_in_without_password(app, laptop, business["owner"][0])
    there = open_stream(through=laptop)
    there.messages_until("ready")
    form = {"current_password": PASSWORD, "password": "a-brand-new-password"}
    assert actions.post("/settings/profile/password", form).status_code == 302
    _ends_with_session_changed(there)


def test_a_stream_finds_out_by_itself_that_its_session_ended(
    app, client, signed_in, open_stream, monkeypatch
):
    # As if the message that tells streams had been lost: the session ends silently.
    monkeypatch.setattr(events, "SESSION_CHECK_SECONDS", 0.2)
    stream = open_stream()
    stream.messages_until("ready")
    with app.app_context():
        db.session.execute(db.delete(UserSession))
        db.session.commit()
    _ends_with_session_changed(stream)


def test_a_stream_whose_session_ends_while_it_opens_sends_only_session_changed(
    app, client, signed_in, monkeypatch, told_only
):
    hub = events.hub_for(app)
    real_connect = hub.connect

    def connect_after_a_sign_out_elsewhere(business_id, viewer):
        # The session was valid when the request began and ends before the stream joins the
        # hub, so the message that tells its streams comes too early for it.
        with app.app_context():
            db.session.execute(db.delete(UserSession))
            db.session.commit()
            events.close_streams(session_ids=[viewer.session_id])
        return real_connect(business_id, viewer)

    monkeypatch.setattr(hub, "connect", connect_after_a_sign_out_elsewhere)
    response = client.get("/events", buffered=False)
    stream = EventReader(response)
    try:
        assert [m.event for m in stream.messages_until("session.changed")] == ["session.changed"]
        assert stream.read(seconds=2) is None and stream.ended
    finally:
        stream.close()
    assert hub.open_streams == 0


def test_a_malformed_access_message_is_ignored(app, signed_in, open_stream, caplog):
    stream = open_stream()
    stream.messages_until("ready")
    redis = app.extensions["twoway.redis"]
    redis.publish(events._channel_prefix(redis) + "access", b"not json")
    event_id = publish(app, signed_in, "message.created", "still flowing")
    assert [m.id for m in stream.messages_until("message.created")] == [event_id]
    assert "malformed access message" in caplog.text
