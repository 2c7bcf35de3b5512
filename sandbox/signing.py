"""Vonage webhook signatures, written from Vonage's description, without the Vonage SDK.

With signing on, Vonage adds ``timestamp`` (unix seconds), ``nonce`` and ``sig`` to each
webhook. The signature is computed over every other parameter, sorted by name, each value with
``&`` and ``=`` replaced by ``_``, joined as ``&k1=v1&k2=v2``; then HMAC-md5/sha1/sha256/sha512
with the signature secret as hex, or, for the old "MD5 hash" method, ``md5(string + secret)``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from typing import Any

SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")


def signing_string(params: Mapping[str, Any]) -> str:
    """The string Vonage signs: ``&key=value`` for every parameter but ``sig``, sorted."""
    return "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )


def signature(params: Mapping[str, Any], secret: str, method: str = "sha256") -> str:
    """The lower-case hex signature of ``params`` (any ``sig`` among them is ignored)."""
    if method not in SIGNATURE_METHODS:
        raise ValueError(f"unknown signature method {method!r}")
    base = signing_string(params)
    if method == "md5hash":
        return hashlib.md5((base + secret).encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), base.encode("utf-8"), method).hexdigest()


def sign_params(
    params: Mapping[str, Any],
    secret: str,
    method: str = "sha256",
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Return a copy of ``params`` as strings, with ``timestamp``, ``nonce`` and ``sig`` added.

    The signature is upper-case hex, like the examples in Vonage's API specification.
    """
    signed = {str(key): str(value) for key, value in params.items() if key != "sig"}
    signed["timestamp"] = str(int(time.time() if now is None else now))
    signed["nonce"] = nonce or str(uuid.uuid4())
    signed["sig"] = signature(signed, secret, method).upper()
    return signed


def check_signature(params: Mapping[str, Any], secret: str, method: str = "sha256") -> bool:
    """True when ``params['sig']`` matches (timestamps are not checked here)."""
    sig = params.get("sig")
    if not isinstance(sig, str) or not sig:
        return False
    return hmac.compare_digest(sig.lower(), signature(params, secret, method))
