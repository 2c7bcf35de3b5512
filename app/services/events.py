"""Live events: each business has an event stream that staff pages follow over SSE.

`publish` is the one way to send an event, from a web request or from a job. In one atomic
step (a Lua script) it appends the event to the business's Redis stream `events:{id}`, which
keeps the last EVENTS_RETAINED events for replay after a reconnect, and publishes it, with its
stream id, on the business's pub/sub channel for the streams open right now.

`open_stream` is what `/events` serves. Each process has one `EventHub`: a single pub/sub
connection, opened when the first stream opens and closed soon after the last one ends, that
fans live events out to the open streams of its process. A stream subscribes before it reads
what it missed, then drops any live event it has already sent, so a reconnect loses nothing
and repeats nothing. The stream id is the SSE `id:`, which the browser sends back as
`Last-Event-ID` when it reconnects.

Framing (one SSE message per event):

    id: 1718000000000-0
    event: message.created
    data: <li id="message-42">
    data:   first line of the text
    data: </li>

Besides the published events a stream sends `retry: 3000` first, then `ready` (carrying the
stream's position as its id) once it is live, `reset` when the events the client asked for are
no longer kept (the page should reload its fragments), and a `: heartbeat` comment when idle.

A stream belongs to one signed-in session (`Viewer`). When that session ends, or its staff
member's role changes, the stream sends `session.changed` and ends, and the page loads itself
again (app.js). It learns so at once from `close_streams` (a message on the `access` channel,
which every hub hears, so it reaches the stream in whichever process holds it), and it also
checks its session when it opens, every SESSION_CHECK_SECONDS and after the hub re-subscribed
(when such a message may have been missed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from redis import Redis, RedisError

from app.extensions import get_redis

log = logging.getLogger(__name__)

# Event names are what `sse-swap="..."` and `hx-trigger="sse:..."` match; htmx splits a list of
# them on commas, so a name is a word with dots, dashes or underscores (`message.created`).
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")
READY = "ready"  # sent by every stream once it is live; its id is the stream's position
RESET = "reset"  # sent when events were missed that are no longer kept: reload the fragments
SESSION_CHANGED = "session.changed"  # the stream's session ended or its role changed: reload
RESERVED_NAMES = frozenset({READY, RESET, SESSION_CHANGED})

RECONNECT_MILLISECONDS = 3000  # the SSE `retry:` the browser waits before reconnecting
# A stream ends after this long and the browser reconnects (resuming with Last-Event-ID): the
# sign-in is checked again, so removed staff stop receiving, and streams spread over processes.
STREAM_MAX_SECONDS = 600.0
# A business's stream is dropped after this long without events, so idle businesses cost no
# memory; a page reconnecting after that gets `reset`.
IDLE_STREAM_SECONDS = 24 * 3600
# An open stream checks that its session still lasts (with the role it opened with) this often,
# besides being told at once by `close_streams`: the check catches a message that was lost.
SESSION_CHECK_SECONDS = 60.0
# Live events queued for one slow connection; beyond this it catches up from the stream.
CONNECTION_QUEUE_SIZE = 1000
CONCURRENT_READS = 8  # streams of one process reading what they missed at the same time
HUB_READY_TIMEOUT = 5.0  # seconds a new stream waits for the hub's subscription
HUB_POLL_SECONDS = 1.0  # how often the hub looks up from pub/sub to check on itself
HUB_LINGER_SECONDS = 10.0  # the hub keeps its subscription this long after the last stream
HUB_PING_SECONDS = 15.0  # an idle subscription is pinged this often...
HUB_DEAD_SECONDS = 45.0  # ...and reopened when nothing at all came back for this long

HEARTBEAT = b": heartbeat\n\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the SSE line ends (not str.splitlines' many)
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})\Z")
_BEFORE_EVERYTHING = "0-0"

# XADD and PUBLISH as one step: an event is either in the stream before a reader's XRANGE, or
# published after it, so a stream that subscribed first can never miss it.
_PUBLISH_SCRIPT = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2],
                      'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[3])
return id
"""
_ACCESS_CHANNEL = "access"  # after the channel prefix, beside the businesses' ids


class EventsUnavailable(RuntimeError):
    """Redis did not let the hub subscribe in time; the client should retry later."""


# Publishing ------------------------------------------------------------------------------


def publish(business_id: int, name: str, data: str | dict[str, Any]) -> str:
    """Sends the event `name` to every open page of the business, now and after a reconnect,
    and returns its id. `data` is an HTML fragment (any number of lines) or a dict sent as
    JSON. Needs an app context (a request or a job)."""
    if not EVENT_NAME.match(name) or name in RESERVED_NAMES:
        raise ValueError(f"not a usable event name: {name!r}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    redis = get_redis()
    event_id = redis.register_script(_PUBLISH_SCRIPT)(
        keys=[stream_key(business_id)],
        args=[
            current_app.config["EVENTS_RETAINED"],
            name,
            text,
            IDLE_STREAM_SECONDS,
            _channel_prefix(redis) + str(business_id),
        ],
    )
    return event_id.decode()


def close_streams(*, session_ids: Iterable[int] = (), user_id: int | None = None) -> None:
    """Closes, in every process, the open streams of these signed-in sessions and every open
    stream of this staff member: each sends `session.changed` and ends. Call it after the
    change is committed. If Redis is unreachable the streams find out at their next check."""
    message = json.dumps({"sessions": list(session_ids), "user": user_id})
    redis = get_redis()
    try:
        redis.publish(_channel_prefix(redis) + _ACCESS_CHANNEL, message)
    except RedisError:
        log.warning("could not tell open streams that their access changed", exc_info=True)


def latest_event_id(business_id: int) -> str:
    """The id of the business's newest event ("0-0" when there is none): a page rendered now
    connects with it, so events published before its stream opens still reach it."""
    newest = get_redis().xrevrange(stream_key(business_id), count=1)
    return newest[0][0].decode() if newest else _BEFORE_EVERYTHING


def stream_key(business_id: int) -> str:
    """The Redis stream holding the business's recent events."""
    return f"events:{business_id}"


def _channel_prefix(redis: Redis) -> str:
    # Pub/sub ignores the database number: name it in the channel, so apps sharing one Redis
    # on different databases (staging and production, CI and a developer) never cross.
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"db{database}:events:"


# SSE framing -----------------------------------------------------------------------------


def format_event(name: str, data: str, event_id: str | None = None) -> bytes:
    """One SSE message: `id:`, `event:`, then each line of `data` as its own `data:` line."""
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {name}")
    # "data: " keeps a leading space of the line itself: the parser strips only the first.
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode()


_MAX_ID_PART = 2**64 - 1  # each half of a Redis stream id is an unsigned 64-bit number


def _parse_id(event_id: str) -> tuple[int, int] | None:
    """A stream id as a comparable (milliseconds, sequence), or None if it is not one (also
    for numbers too large to be one, which Redis would refuse with an error)."""
    match = _STREAM_ID.match(event_id)
    if not match:
        return None
    position = (int(match[1]), int(match[2]))
    return position if max(position) <= _MAX_ID_PART else None


def _id_of(position: tuple[int, int]) -> str:
    return f"{position[0]}-{position[1]}"


def _position_of(entry_id: bytes) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split(b"-")
    return int(milliseconds), int(sequence)


# Streams ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LiveEvent:
    position: tuple[int, int]
    frame: bytes


_RESYNC = object()  # the hub re-subscribed: live events may have been missed meanwhile
_WAKE = object()  # look at the connection's flags


@dataclass(frozen=True)
class Viewer:
    """Whom a stream is for: a staff member's signed-in session. `still_allowed` says whether
    that session still lasts with the role the stream opened with; it is called outside the
    request (it opens its own app context)."""

    user_id: int
    session_id: int
    still_allowed: Callable[[], bool]


class _Connection:
    """One open stream's mailbox in the hub."""

    def __init__(self, business_id: int, viewer: Viewer):
        self.business_id = business_id
        self.viewer = viewer
        self.inbox: queue.Queue[Any] = queue.Queue(maxsize=CONNECTION_QUEUE_SIZE)
        self.overflowed = False  # live events were dropped: catch up from the stream
        self.access_changed = False  # its session ended or its role changed (close_streams)

    def offer(self, item: Any) -> None:
        try:
            self.inbox.put_nowait(item)
        except queue.Full:
            self.overflowed = True


def open_stream(
    business_id: int, last_event_id: str | None, *, heartbeat_seconds: float, viewer: Viewer
) -> EventStream:
    """A business's live event stream for `viewer` as SSE bytes, starting after
    `last_event_id` (the `Last-Event-ID` a reconnecting browser sends) or from now. Raises
    EventsUnavailable when Redis cannot be subscribed to. Needs an app context; the stream
    itself does not."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    hub = hub_for(app)
    connection = hub.connect(business_id, viewer)
    try:
        stream = EventStream(
            hub,
            connection,
            redis=get_redis(),
            retained=app.config["EVENTS_RETAINED"],
            heartbeat_seconds=heartbeat_seconds,
        )
        stream.start(last_event_id)
    except BaseException:
        hub.disconnect(connection)
        raise
    return stream


class EventStream:
    """The bytes of one open `/events` response. Iterating blocks until the next event or
    heartbeat; `close()` (called by the WSGI server when the client goes) leaves the hub."""

    def __init__(
        self,
        hub: EventHub,
        connection: _Connection,
        *,
        redis: Redis,
        retained: int,
        heartbeat_seconds: float,
    ):
        self._hub = hub
        self._connection = connection
        self._redis = redis
        self._retained = retained
        self._heartbeat_seconds = heartbeat_seconds
        now = time.monotonic()
        self._ends_at = now + STREAM_MAX_SECONDS
        self._heartbeat_at = now + heartbeat_seconds
        self._check_at = now  # the session is checked before anything is sent
        self._sent: tuple[int, int] = (0, 0)  # the newest position the client has
        self._pending: list[bytes] = []
        self._ending = False  # send what is pending, then end
        self._closed = False

    def start(self, last_event_id: str | None) -> None:
        """Reads what the client missed (the hub is already delivering live events to us, so
        nothing can fall between the two) and prepares the opening of the stream. A session
        that ended meanwhile (its `close_streams` may have come before we joined the hub) gets
        only `session.changed`."""
        opening = [f"retry: {RECONNECT_MILLISECONDS}\n\n".encode()]
        if self._access_lost():
            opening.append(format_event(SESSION_CHANGED, ""))
            self._ending = True
        else:
            opening += self._catch_up(last_event_id)
            opening.append(format_event(READY, "", _id_of(self._sent)))
        self._pending.append(b"".join(opening))

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while not self._closed:
            if self._pending:
                return self._sending(self._pending.pop(0))
            if self._ending:
                break
            if self._access_lost():
                self._pending.append(format_event(SESSION_CHANGED, ""))
                self._ending = True
            if self._ending:
                continue
            if self._connection.overflowed:
                self._connection.overflowed = False
                self._pending += self._catch_up(_id_of(self._sent))
                continue
            now = time.monotonic()
            if now >= self._ends_at:
                break
            if now >= self._heartbeat_at:
                return self._sending(HEARTBEAT)
            wake_at = min(self._heartbeat_at, self._ends_at, self._check_at)
            try:
                item = self._connection.inbox.get(timeout=wake_at - now)
            except queue.Empty:
                continue
            if item is _RESYNC:
                self._check_at = 0.0  # a `close_streams` may have been missed too
                self._pending += self._catch_up(_id_of(self._sent))
            elif item is _WAKE:
                continue
            elif item.position > self._sent:
                self._sent = item.position
                return self._sending(item.frame)
        self.close()
        raise StopIteration

    def _sending(self, chunk: bytes) -> bytes:
        self._heartbeat_at = time.monotonic() + self._heartbeat_seconds  # a beat when idle
        return chunk

    def _access_lost(self) -> bool:
        """True when the stream's session ended or its role changed: told by `close_streams`,
        or found by checking (when a check is due). A check that fails ends the stream
        without a word (the browser reconnects, and the sign-in is checked again)."""
        if self._connection.access_changed:
            return True
        if time.monotonic() < self._check_at:
            return False
        self._check_at = time.monotonic() + SESSION_CHECK_SECONDS
        try:
            return not self._connection.viewer.still_allowed()
        except Exception:
            log.warning("could not check an event stream's session; ending it", exc_info=True)
            self._ending = True
            return False

    def close(self) -> None:
        """Leaves the hub (safe to call more than once)."""
        if not self._closed:
            self._closed = True
            self._hub.disconnect(self._connection)

    def _catch_up(self, after: str | None) -> list[bytes]:
        """The frames for the events after `after` still kept in the stream, or a `reset` when
        some that the client missed are gone; moves the stream's position to the newest."""
        key = stream_key(self._connection.business_id)
        position = _parse_id(after) if after is not None else None
        with self._hub.reading, self._redis.pipeline(transaction=True) as pipe:
            pipe.xrange(key, count=1)
            pipe.xrevrange(key, count=1)
            pipe.xlen(key)
            if position is not None:
                pipe.xrange(key, min="(" + _id_of(position))
            first, last, length, *backlog = pipe.execute()
        oldest = _position_of(first[0][0]) if first else None
        newest = _position_of(last[0][0]) if last else (0, 0)
        if after is None:  # a new client: everything from now on
            self._sent = max(self._sent, newest)
            return []
        if position is None:
            lost = True  # an id we never gave out
        elif oldest is None:
            lost = position != (0, 0)  # the stream expired (or Redis lost it) since
        elif position > newest:
            lost = True  # an id from before Redis lost its data
        elif position >= oldest:
            lost = False
        elif position == (0, 0):
            # The client has seen nothing yet: all is there unless the stream was ever trimmed,
            # and trimming (whole nodes, MAXLEN ~) always leaves at least `retained`.
            lost = length >= self._retained
        else:
            lost = True  # its last event was trimmed, and maybe more after it
        if lost:
            self._sent = newest
            return [format_event(RESET, "", _id_of(newest))]
        frames = []
        for entry_id, fields in backlog[0] if backlog else []:
            entry_position = _position_of(entry_id)
            if entry_position > self._sent:
                self._sent = entry_position
                frames.append(
                    format_event(
                        fields[b"event"].decode(), fields[b"data"].decode(), entry_id.decode()
                    )
                )
        self._sent = max(self._sent, newest)
        return frames


# The hub ---------------------------------------------------------------------------------


def hub_for(app: Flask) -> EventHub:
    """The app's hub in this process (made on first use)."""
    hub = app.extensions.get("twoway.events_hub")
    if hub is None:
        # setdefault is atomic: two first streams at once still share one hub.
        hub = app.extensions.setdefault(
            "twoway.events_hub", EventHub(app.extensions["twoway.redis"])
        )
    return hub


class EventHub:
    """One pub/sub subscription per process, shared by all its open streams: 500 open pages
    cost one Redis connection. It runs in a thread (a greenlet under gevent) while any stream
    is open, and re-subscribes by itself after Redis goes away, telling every stream to catch up
    from the Redis stream."""

    def __init__(self, redis: Redis):
        self._redis = redis
        self._prefix = _channel_prefix(redis).encode()
        self._lock = threading.Lock()
        self._connections: dict[int, set[_Connection]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._last_used = time.monotonic()
        # Streams read Redis all at once when the hub (re)subscribes: let only a few at a time
        # take a connection from the app's pool (redis-py refuses beyond its 100, not waits).
        self.reading = threading.BoundedSemaphore(CONCURRENT_READS)

    @property
    def open_streams(self) -> int:
        """How many streams of this process are following live events."""
        with self._lock:
            return sum(len(group) for group in self._connections.values())

    @property
    def is_subscribed(self) -> bool:
        """True while the hub's pub/sub subscription is up."""
        return self._thread is not None and self._ready.is_set()

    def connect(self, business_id: int, viewer: Viewer) -> _Connection:
        """Joins the hub; once this returns, every event published for the business reaches
        the connection, and so does `close_streams` for the viewer. Raises EventsUnavailable
        when Redis cannot be subscribed to."""
        connection = _Connection(business_id, viewer)
        with self._lock:
            self._connections.setdefault(business_id, set()).add(connection)
            if self._thread is None:
                self._ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._ready,), name="twoway-events-hub", daemon=True
                )
                self._thread.start()
            ready = self._ready
        if not ready.wait(HUB_READY_TIMEOUT):
            self.disconnect(connection)
            raise EventsUnavailable("could not subscribe to live events")
        return connection

    def disconnect(self, connection: _Connection) -> None:
        """Leaves the hub."""
        with self._lock:
            connections = self._connections.get(connection.business_id, set())
            connections.discard(connection)
            if not connections:
                self._connections.pop(connection.business_id, None)
            self._last_used = time.monotonic()

    def _finished(self) -> bool:
        """True (and the thread is forgotten) when no stream has been open for a while."""
        with self._lock:
            if self._connections or time.monotonic() - self._last_used < HUB_LINGER_SECONDS:
                return False
            self._thread = None
            return True

    def _run(self, ready: threading.Event) -> None:
        subscribed_before = False
        retry_seconds = 0.1
        while True:
            pubsub = None
            try:
                pubsub = self._redis.pubsub()
                pubsub.psubscribe(self._prefix + b"*")
                heard_at = pinged_at = time.monotonic()
                while True:
                    if self._finished():
                        return
                    message = pubsub.get_message(timeout=HUB_POLL_SECONDS)
                    now = time.monotonic()
                    if message is None:
                        if now - heard_at > HUB_DEAD_SECONDS:
                            raise ConnectionError("the pub/sub connection stopped answering")
                        if now - max(heard_at, pinged_at) > HUB_PING_SECONDS:
                            pubsub.ping()
                            pinged_at = now
                        continue
                    heard_at = now
                    if message["type"] == "pmessage":
                        self._deliver(message["channel"], message["data"])
                    elif message["type"] == "psubscribe":
                        # Also after redis-py reconnected by itself: events published while
                        # the subscription was down are only in the stream.
                        if subscribed_before:
                            self._broadcast(_RESYNC)
                        subscribed_before = True
                        retry_seconds = 0.1
                        ready.set()
            except Exception:
                ready.clear()
                log.warning("live events subscription failed; retrying", exc_info=True)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # it may be gone already
                        pubsub.close()
            time.sleep(retry_seconds)
            retry_seconds = min(retry_seconds * 2, 5.0)
            if self._finished():
                return

    def _deliver(self, channel: bytes, payload: bytes) -> None:
        if channel == self._prefix + _ACCESS_CHANNEL.encode():
            self._deliver_access(payload)
            return
        try:
            business_id = int(channel.removeprefix(self._prefix))
            event_id, name, data = payload.decode().split("\n", 2)
            position = _parse_id(event_id)
        except ValueError:
            position = None
        if position is None:
            log.warning("ignored a malformed live event on %r", channel)
            return
        with self._lock:
            connections = list(self._connections.get(business_id, ()))
        if connections:
            event = _LiveEvent(position, format_event(name, data, event_id))
            for connection in connections:
                connection.offer(event)

    def _deliver_access(self, payload: bytes) -> None:
        """A `close_streams` message: flags the streams it names (a flag, not a queued item, so
        that even a connection whose queue is full gets it) and wakes them."""
        try:
            message = json.loads(payload)
            session_ids = {int(n) for n in message["sessions"]}
            user_id = message["user"]
        except (ValueError, TypeError, KeyError):
            log.warning("ignored a malformed access message")
            return
        with self._lock:
            connections = [
                c
                for group in self._connections.values()
                for c in group
                if c.viewer.session_id in session_ids or c.viewer.user_id == user_id
            ]
        for connection in connections:
            connection.access_changed = True
            connection.offer(_WAKE)

    def _broadcast(self, item: object) -> None:
        with self._lock:
            connections = [c for group in self._connections.values() for c in group]
        for connection in connections:
            connection.offer(item)
