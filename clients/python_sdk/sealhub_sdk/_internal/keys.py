"""The official's device key: ECDSA P-256, made here, kept here, encrypted at rest.

The gateway never sees the private key; it only learns the public JWK at enrollment and
recognises it afterwards by its RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sealhub_sdk._internal.errors import ConfigurationError

_COORDINATE_BYTES = 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk_of(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The minimal public JWK: exactly the members RFC 7638 hashes."""
    numbers = key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }


def thumbprint_of(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 thumbprint (base64url SHA-256 of the sorted members, no whitespace)."""
    canonical = json.dumps(public_jwk_of(key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


class DeviceKey:
    """An official's P-256 signing key. ``repr`` shows the thumbprint, never key material."""

    __slots__ = ("_private",)

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ConfigurationError("the device key must be an EC P-256 private key")
        self._private = private_key

    @classmethod
    def generate(cls) -> DeviceKey:
        """Make a new key on this device."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load(cls, path: str | os.PathLike[str], password: str | bytes) -> DeviceKey:
        """Read an encrypted PEM written by :meth:`save`."""
        data = Path(path).read_bytes()
        secret = password.encode("utf-8") if isinstance(password, str) else password
        try:
            key = serialization.load_pem_private_key(data, password=secret)
        except (ValueError, TypeError):
            # Wrong password and a damaged file look alike; say so without echoing either.
            raise ConfigurationError(
                f"cannot open the key file {path}: wrong password or not a sealhub key",
                code="key_unreadable",
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigurationError("the key file does not hold an EC key", code="key_unreadable")
        return cls(key)

    def save(
        self, path: str | os.PathLike[str], password: str | bytes, *, overwrite: bool = False
    ) -> Path:
        """Write the key as password-encrypted PKCS#8 PEM, readable by the owner only (0600).

        Refuses an empty password, and an existing file unless *overwrite*: losing an
        enrolled key means enrolling again.
        """
        secret = password.encode("utf-8") if isinstance(password, str) else password
        if not secret:
            raise ConfigurationError("a password is required to protect the key file")
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(secret),
        )
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            raise ConfigurationError(
                f"{target} exists; refusing to overwrite a key", code="key_exists"
            ) from None
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.chmod(target, 0o600)
        return target

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private.public_key()

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public JWK sent in enrollment proofs and DPoP headers."""
        return public_jwk_of(self.public_key)

    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint: the gateway's ``kid`` and the tokens' ``cnf.jkt``."""
        return thumbprint_of(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """ES256 signature as JWS wants it: raw r||s, 64 bytes (not DER)."""
        der = self._private.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")

    def __repr__(self) -> str:
        return f"DeviceKey(thumbprint={self.thumbprint!r})"
