"""The platform master key: the one secret that protects every other key at rest.

It comes from ``SEALHUB_MASTER_KEY`` (base64 of 32 bytes) or from a file created on
first start with mode 0600. Everything it protects is wrapped with AES-256-GCM under a
key derived from it, with the caller's *context* bound as associated data, so a wrapped
blob cannot be moved to another purpose (a seal key presented as an object data key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.codes import Code, CodedError
from keys.files import atomic_write

MASTER_KEY_BYTES = 32
_WRAP_VERSION = b"\x01"
_NONCE_BYTES = 12


class MasterKeyError(CodedError):
    """The master key is missing, malformed, or does not open a wrapped blob."""

    code = Code.MASTER_KEY_ERROR


@dataclass(frozen=True, repr=False)
class MasterKey:
    """Wraps and unwraps secrets; ``repr`` never shows the key."""

    _secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self._secret) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"the master key must be {MASTER_KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """A short public name for this key, recorded beside what it wraps (rotation)."""
        return hashlib.sha256(b"sealhub master key id\x00" + self._secret).hexdigest()[:16]

    def _wrapping_key(self) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealhub wrap v1")
        return AESGCM(hkdf.derive(self._secret))

    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt *plaintext*; *context* (e.g. ``b"object:" + key``) must match on unwrap."""
        nonce = os.urandom(_NONCE_BYTES)
        return _WRAP_VERSION + nonce + self._wrapping_key().encrypt(nonce, plaintext, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt what :meth:`wrap` made; any change to blob or context is refused."""
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _WRAP_VERSION:
            raise MasterKeyError("wrapped blob has an unknown format")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._wrapping_key().decrypt(nonce, blob[1 + _NONCE_BYTES :], context)
        except InvalidTag:
            raise MasterKeyError("wrapped blob does not open with this master key") from None

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(MASTER_KEY_BYTES))

    @classmethod
    def from_base64(cls, text: str) -> MasterKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError("the master key is not valid base64") from None
        return cls(raw)

    def to_base64(self) -> str:
        """For the operator's backup only; never log it."""
        return base64.b64encode(self._secret).decode("ascii")


def load_or_create_master_key(path: Path, from_env: str | None = None) -> MasterKey:
    """The environment wins; otherwise the file, created 0600 (atomically) on first start."""
    if from_env:
        return MasterKey.from_base64(from_env)
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise MasterKeyError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
        return MasterKey.from_base64(path.read_text("ascii"))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = MasterKey.generate()
    atomic_write(path, (key.to_base64() + "\n").encode("ascii"), 0o600)
    return key
