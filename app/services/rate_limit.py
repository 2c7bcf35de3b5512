"""The account-wide Vonage sending rate, shared by every worker process through Redis.

Vonage allows an API key a number of SMS API requests a second (30 by default) and answers
"throttled" past it. Every send asks `acquire_send_slot` first. The limiter is a GCRA (generic
cell rate algorithm, a leaky bucket without a burst) kept in one Redis key and changed only by
one Lua script, which Redis runs atomically: it spaces the sends evenly, one every (1 s +
margin) / rate, across every process. Even spacing, rather than a window that admits the whole
second's sends at once, means a request delayed a few milliseconds on its way cannot land in the
same second at Vonage as the next burst. Time is Redis's own clock (`TIME`), so workers on
machines whose clocks disagree still share one schedule. `WINDOW_MARGIN_MS` stretches the second
a little, so up to that much jitter between taking a slot and reaching Vonage still keeps every
second at Vonage within the limit (it costs that fraction of the rate).

A waiting worker wakes a moment after its slot (a millisecond or so: the sleep, the round trip
to Redis). The schedule keeps its beat through such lateness, up to `LATE_SLACK_MS`: the next
slot follows the one just taken, not the moment it was taken, so a sender that keeps every
worker busy gets the full rate rather than losing a wake-up per send. Lateness the schedule
absorbs counts against the margin (a send at most that late, plus its way to Vonage, must stay
within `WINDOW_MARGIN_MS`).
"""

from __future__ import annotations

import time

from flask import current_app

from app.extensions import get_redis

KEY = "vonage:sms-rate"
WINDOW_MARGIN_MS = 30  # slack for requests that leave a few milliseconds after their slot
LATE_SLACK_MS = 2  # lateness in taking a slot that does not push the schedule back

# KEYS[1]: the theoretical arrival time of the next send (microseconds, Redis's clock).
# ARGV[1]: the spacing between sends, in microseconds; ARGV[2]: LATE_SLACK_MS in microseconds.
# Returns 0 when admitted, else the milliseconds until the next slot.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slack = tonumber(ARGV[2])
if tat < now - slack then tat = now - slack end
if tat > now then
  local wait = math.ceil((tat - now) / 1000)
  if wait < 1 then wait = 1 end
  return wait
end
redis.call('SET', KEYS[1], string.format('%d', tat + tonumber(ARGV[1])), 'PX', 60000)
return 0
"""


def sends_per_second() -> int:
    """The configured account-wide rate (VONAGE_SMS_PER_SECOND)."""
    return max(1, int(current_app.config["VONAGE_SMS_PER_SECOND"]))


def try_acquire_send_slot() -> int:
    """Takes the slot if it is free now: 0, else the milliseconds until the next one. Only a
    caller ready to send this instant takes a slot, so a slow worker cannot hold one and then
    send late, in the same second as the next ones."""
    interval_us = (1000 + WINDOW_MARGIN_MS) * 1000 // sends_per_second()
    script = get_redis().register_script(_ACQUIRE)
    return int(script(keys=[KEY], args=[interval_us, LATE_SLACK_MS * 1000]))


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
