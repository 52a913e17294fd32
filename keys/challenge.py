"""Login challenge nonces and enrollment codes: the two secrets of key-based login.

Nonces are stateless (an HMAC the server can recheck), so issuing one costs no database
write and a flood of challenge requests fills nothing; single use is enforced when a nonce
is redeemed, by the caller's table keyed on the nonce until its expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from datetime import datetime

from keys.codes import Code, CodedError
from keys.jws import JwsError, b64url_decode, b64url_encode, epoch_seconds, from_epoch

NONCE_MAX_AGE = 120
# Nonces come from this gateway's own clock; only a little skew between processes is allowed.
NONCE_FUTURE_LEEWAY = 5
MIN_KEY_BYTES = 32

_VERSION = b"\x01"
_RANDOM_BYTES = 16
_MAC_BYTES = 32
_NONCE_BYTES = len(_VERSION) + 8 + _RANDOM_BYTES + _MAC_BYTES
_MAX_SUBJECT_BYTES = 1024

ENROLLMENT_CODE_BYTES = 24  # 192 bits, 32 URL-safe characters
_MAX_CODE_CHARS = 128


class ChallengeError(CodedError):
    """A challenge nonce is forged, expired, malformed or for someone else."""

    code = Code.INVALID_NONCE

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _field(data: bytes) -> bytes:
    """Length-prefixed, so (purpose, subject) pairs can never be shifted into each other."""
    return struct.pack(">I", len(data)) + data


class ChallengeNonces:
    """Issues and checks HMAC-SHA256 nonces bound to a subject and a purpose.

    The nonce carries its issue time and 128 random bits; the MAC covers them, the subject
    and the purpose (``login``, ``dpop``...), so a nonce minted for one use or one official
    is refused for another. The key never appears in ``repr``.
    """

    def __init__(self, key: bytes, *, purpose: str = "login") -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the nonce key must have at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._purpose = purpose.encode("utf-8")

    def __repr__(self) -> str:
        return f"ChallengeNonces(purpose={self._purpose.decode()!r})"

    def _mac(self, subject: str, body: bytes) -> bytes:
        subject_bytes = subject.encode("utf-8")
        if len(subject_bytes) > _MAX_SUBJECT_BYTES:
            raise ChallengeError("malformed", "the subject is too long")
        message = b"sealhub nonce v1" + _field(self._purpose) + _field(subject_bytes) + body
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def issue_nonce(self, subject: str, now: datetime) -> str:
        body = _VERSION + struct.pack(">Q", int(epoch_seconds(now)))
        body += secrets.token_bytes(_RANDOM_BYTES)
        return b64url_encode(body + self._mac(subject, body))

    def check_nonce(
        self, nonce: str, subject: str, now: datetime, max_age: int = NONCE_MAX_AGE
    ) -> datetime:
        """Return the nonce's expiry (keep it in the used-nonce table until then)."""
        try:
            raw = b64url_decode(nonce)
        except JwsError:
            raise ChallengeError("malformed", "the nonce is not base64url") from None
        if len(raw) != _NONCE_BYTES or raw[:1] != _VERSION:
            raise ChallengeError("malformed", "the nonce has an unknown format")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(subject, body)):
            raise ChallengeError("forged", "the nonce was not issued for this subject")
        (issued,) = struct.unpack(">Q", body[1:9])
        current = epoch_seconds(now)
        if issued > current + NONCE_FUTURE_LEEWAY:
            raise ChallengeError("not_yet_valid", "the nonce is from the future")
        if current > issued + max_age:
            raise ChallengeError("expired", "the nonce has expired")
        return from_epoch(issued + max_age)


def generate_enrollment_code() -> str:
    """A one-time enrollment code: 192 random bits, URL-safe, typed or pasted once."""
    return secrets.token_urlsafe(ENROLLMENT_CODE_BYTES)


def hash_enrollment_code(code: str, *, official_id: str) -> str:
    """What the database stores: SHA-256 over a domain tag, the official and the code.

    A plain (unkeyed, fast) hash is enough because the code has >= 128 random bits: a
    leaked table cannot be brute-forced, so a slow hash or a server pepper would add only
    a key to manage (whose loss would strand pending enrollments). The official id in the
    input makes a stored hash useless for any other official.
    """
    message = b"sealhub enrollment code v1" + _field(official_id.encode("utf-8"))
    return hashlib.sha256(message + _field(code.encode("utf-8"))).hexdigest()


def enrollment_code_matches(code: str, stored_hash: str, *, official_id: str) -> bool:
    """Constant-time comparison of a submitted code with the stored hash."""
    if not isinstance(code, str) or not code or len(code) > _MAX_CODE_CHARS:
        return False
    candidate = hash_enrollment_code(code.strip(), official_id=official_id)
    return hmac.compare_digest(candidate.encode("ascii"), stored_hash.encode("ascii"))
