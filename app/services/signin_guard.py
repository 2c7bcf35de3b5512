"""Slows down password guessing: after too many failed sign-ins for one email, or from one
address, sign-in is refused for a while (counted in Redis, so every web process agrees)."""

from __future__ import annotations

from flask import current_app

from app.extensions import get_redis
from app.services.errors import ServiceError


def _keys(email: str, remote_addr: str) -> tuple[str, str]:
    return f"signin:fail:email:{email}", f"signin:fail:addr:{remote_addr}"


def check_allowed(email: str, remote_addr: str) -> None:
    """Raises ServiceError while this email or address is paused."""
    limit = current_app.config["SIGNIN_MAX_FAILURES"]
    email_key, addr_key = _keys(email, remote_addr)
    redis = get_redis()
    # An address gets more tries than one email: an office may share it.
    if int(redis.get(email_key) or 0) >= limit or int(redis.get(addr_key) or 0) >= limit * 4:
        minutes = max(1, current_app.config["SIGNIN_LOCKOUT_SECONDS"] // 60)
        raise ServiceError(
            f"Too many failed sign-ins. Try again in {minutes} minutes, or reset your password."
        )


def record_failure(email: str, remote_addr: str) -> None:
    seconds = current_app.config["SIGNIN_LOCKOUT_SECONDS"]
    pipe = get_redis().pipeline()
    for key in _keys(email, remote_addr):
        pipe.incr(key)
        pipe.expire(key, seconds)
    pipe.execute()


def record_success(email: str, remote_addr: str) -> None:
    get_redis().delete(_keys(email, remote_addr)[0])


def clear(email: str) -> None:
    """Forgets the failures for an email (after a password reset)."""
    get_redis().delete(f"signin:fail:email:{email}")
