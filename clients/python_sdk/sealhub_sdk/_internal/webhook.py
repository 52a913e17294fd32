"""Webhook signatures: HMAC-SHA256 over ``timestamp.body`` with the department's secret.

The timestamp is inside the MAC and checked against a maximum age, so a captured delivery
cannot be replayed later; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from sealhub_sdk._internal.errors import VerificationError

DEFAULT_MAX_AGE = 300


def webhook_signature(secret: bytes | str, timestamp: str | int, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 the gateway sends (useful to test a receiver)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_webhook_signature(
    *,
    secret: bytes | str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> None:
    """Raise VerificationError unless *signature* is the MAC of ``timestamp.body``, fresh.

    *timestamp* is the integer Unix time the gateway sent beside the signature;
    *signature* may carry a ``sha256=`` prefix. Checking freshness both ways (not older
    than *max_age*, not more than *max_age* in the future) bounds replays and skew.
    """
    text = str(timestamp)
    if not (text.isascii() and text.isdigit()):  # str.isdigit() also accepts "²" and "١"
        raise VerificationError("webhook timestamp is not a Unix time", code="webhook_invalid")
    current = time.time() if now is None else now
    if abs(current - int(text)) > max_age:
        raise VerificationError(
            "webhook timestamp is too old or in the future", code="webhook_stale"
        )
    offered = signature.strip().removeprefix("sha256=").lower()
    expected = webhook_signature(secret, text, body)
    if not hmac.compare_digest(offered.encode("ascii", "replace"), expected.encode("ascii")):
        raise VerificationError("webhook signature does not match", code="webhook_invalid")
