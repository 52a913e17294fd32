"""The webhook helper: HMAC-SHA256 over ``timestamp.body``, constant-time, bounded age."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sealhub_sdk import VerificationError, verify_webhook_signature, webhook_signature

SECRET = b"department-webhook-secret"
BODY = '{"delivery":"d-1","title":"关于防汛工作的通知"}'.encode()


def _reference(timestamp: int, body: bytes) -> str:
    return hmac.new(SECRET, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def test_accepts_a_fresh_correct_signature() -> None:
    signature = _reference(1_700_000_000, BODY)
    assert webhook_signature(SECRET, 1_700_000_000, BODY) == signature
    verify_webhook_signature(
        secret=SECRET, timestamp="1700000000", body=BODY, signature=signature, now=1_700_000_010
    )
    verify_webhook_signature(
        secret=SECRET,
        timestamp=1_700_000_000,
        body=BODY,
        signature="sha256=" + signature,
        now=1_700_000_010,
    )


@pytest.mark.parametrize(
    ("timestamp", "body", "now", "code"),
    [
        (1_700_000_000, BODY + b" ", 1_700_000_010, "webhook_invalid"),
        (1_700_000_001, BODY, 1_700_000_010, "webhook_invalid"),
        (1_700_000_000, BODY, 1_700_000_301, "webhook_stale"),
        (1_700_000_000, BODY, 1_699_999_600, "webhook_stale"),
    ],
)
def test_refuses_changed_or_stale(timestamp: int, body: bytes, now: int, code: str) -> None:
    signature = _reference(1_700_000_000, BODY)
    with pytest.raises(VerificationError) as refused:
        verify_webhook_signature(
            secret=SECRET, timestamp=timestamp, body=body, signature=signature, now=now
        )
    assert refused.value.code == code


def test_refuses_other_secret_and_garbage() -> None:
    signature = hmac.new(b"other", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    with pytest.raises(VerificationError):
        verify_webhook_signature(
            secret=SECRET,
            timestamp=1_700_000_000,
            body=BODY,
            signature=signature,
            now=1_700_000_000,
        )
    with pytest.raises(VerificationError):
        verify_webhook_signature(
            secret=SECRET, timestamp="1e9", body=BODY, signature="zz", now=1_700_000_000
        )


@pytest.mark.parametrize("timestamp", ["1700000000²", "١٧٠٠٠٠٠٠٠٠", "", " 1700000000"])
def test_non_ascii_digits_are_a_verification_error(timestamp: str) -> None:
    """str.isdigit() accepts superscripts and Arabic-Indic digits; int() or the MAC then
    raised ValueError or UnicodeEncodeError instead of the documented error."""
    with pytest.raises(VerificationError) as refused:
        verify_webhook_signature(
            secret=SECRET, timestamp=timestamp, body=BODY, signature="00", now=1_700_000_000
        )
    assert refused.value.code == "webhook_invalid"
