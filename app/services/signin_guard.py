"""Slows down password guessing without locking anyone out.

Each email and each client address gets a few free sign-in tries (`SIGNIN_FREE_FAILURES` for an
email, four times as many for an address, which an office may share). After those, each next
try must wait twice as long as the one before: 2 s, 4 s, 8 s … up to `SIGNIN_MAX_DELAY_SECONDS`
after the previous try. A try made during the wait is answered "Try again in N seconds" without
the password being checked and without being counted, so a guesser gets at most one guess per
email per wait however fast it sends, while the real owner, who knows the password, is let in
by the first try after a wait of at most `SIGNIN_MAX_DELAY_SECONDS` (a fixed 15-minute lockout
let anyone who knew an email keep its owner out). A success clears the email's count; failures
are forgotten an hour after the last try. (One limit it has: a guesser who times a try for the
very moment each wait ends takes that try before the owner can; a per-device allowance for
browsers that signed in before, or an emailed sign-in link, would close that gap.)

Taking a try is one Lua script over both counts (Redis runs it atomically), so every web
process agrees and a burst of parallel requests cannot slip extra guesses into a wait: the try
is counted when it starts, and a success takes it back off the address's count.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from flask import current_app

from app.extensions import get_redis
from app.services.errors import ServiceError

ADDRESS_ALLOWANCE = 4  # an address gets this many times an email's free tries
FAILURE_MEMORY_SECONDS = 3600  # failures are forgotten this long after the last try

# KEYS: the email's and the address's counts (hashes: n = tries not followed by a success,
# last = when the latest began, Unix seconds).
# ARGV: now, free tries for the email, free tries for the address, longest wait, memory.
# Returns 0 and counts the try when it may go ahead, else the seconds left to wait.
_TAKE_TRY = """
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[4])
local memory = tonumber(ARGV[5])
local wait = 0
local counts = {}
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  local last = tonumber(redis.call('HGET', key, 'last') or '0')
  if now - last > memory then n = 0 end
  counts[i] = n
  local free = tonumber(ARGV[i + 1])
  if n >= free then
    local delay = math.min(cap, 2 ^ (n - free + 1))
    wait = math.max(wait, last + delay - now)
  end
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'n', counts[i] + 1, 'last', ARGV[1])
  redis.call('EXPIRE', key, math.ceil(memory))
end
return 0
"""

# KEYS: the address's count. A successful try was not a failure of that address.
_GIVE_BACK = """
if tonumber(redis.call('HGET', KEYS[1], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return 0
"""


class SignInPaused(ServiceError):
    """A sign-in try made during the wait after repeated failures (answered 429)."""

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many failed sign-ins. Try again in {retry_after} seconds, or reset your password."
        )
        self.retry_after = retry_after


def _email_key(email: str) -> str:
    return "signin:email:" + hashlib.sha256(email.encode()).hexdigest()


def _address_key(remote_addr: str) -> str:
    return "signin:addr:" + hashlib.sha256(remote_addr.encode()).hexdigest()


def take_try(email: str, remote_addr: str, now: datetime) -> None:
    """Counts a sign-in try for this email from this address, or raises SignInPaused (the
    password must then not be checked) while either is still waiting."""
    free = int(current_app.config["SIGNIN_FREE_FAILURES"])
    script = get_redis().register_script(_TAKE_TRY)
    wait = int(
        script(
            keys=[_email_key(email), _address_key(remote_addr)],
            args=[
                repr(now.timestamp()),
                free,
                free * ADDRESS_ALLOWANCE,
                int(current_app.config["SIGNIN_MAX_DELAY_SECONDS"]),
                FAILURE_MEMORY_SECONDS,
            ],
        )
    )
    if wait > 0:
        raise SignInPaused(wait)


def record_success(email: str, remote_addr: str) -> None:
    """The try was the right password: the email starts afresh, the address gets it back."""
    redis = get_redis()
    redis.delete(_email_key(email))
    redis.register_script(_GIVE_BACK)(keys=[_address_key(remote_addr)])


def clear(email: str) -> None:
    """Forgets the failures for an email (after a password reset)."""
    get_redis().delete(_email_key(email))
