"""The account-wide Vonage sending rate, shared by every worker process through Redis.

Vonage allows an API key a number of SMS API requests a second (30 by default) and answers
"throttled" past it. Every send asks `acquire_send_slot` first. The limiter is a sliding-window
log kept in one Redis sorted set and changed only by one Lua script, which Redis runs
atomically: it drops the entries older than the window, and admits the request only while
fewer than the limit remain. Time is Redis's own clock (`TIME`), so workers on machines whose
clocks disagree still share one window. The window is a little longer than a second
(`WINDOW_MARGIN_MS`) so that a request delayed on its way cannot make a second at Vonage hold
more than the limit.
"""

from __future__ import annotations

import time
import uuid

from flask import current_app

from app.extensions import get_redis

KEY = "vonage:sms-rate"
WINDOW_MARGIN_MS = 50  # slack for requests that leave a few milliseconds after their slot

# KEYS[1]: the window's sorted set. ARGV: limit, window (ms), a unique member.
# Returns 0 when admitted, else the milliseconds until a slot frees up.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = math.ceil((tonumber(oldest[2]) + window - now) / 1000)
if wait < 1 then wait = 1 end
return wait
"""


def sends_per_second() -> int:
    """The configured account-wide rate (VONAGE_SMS_PER_SECOND)."""
    return max(1, int(current_app.config["VONAGE_SMS_PER_SECOND"]))


def try_acquire_send_slot() -> int:
    """Takes a slot if one is free now: 0, else the milliseconds to wait before asking again."""
    redis = get_redis()
    script = redis.register_script(_ACQUIRE)
    return int(
        script(keys=[KEY], args=[sends_per_second(), 1000 + WINDOW_MARGIN_MS, uuid.uuid4().hex])
    )


def acquire_send_slot(max_wait: float = 10.0) -> bool:
    """Waits (at most `max_wait` seconds) for a slot under the account-wide rate; True once it
    has one. False means the caller should put its work back and try later."""
    deadline = time.monotonic() + max_wait
    while True:
        wait_ms = try_acquire_send_slot()
        if wait_ms == 0:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(wait_ms / 1000, remaining))
