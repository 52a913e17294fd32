"""A "plain JOSE client" for the tests: tokens built by hand from base64url, JSON and
``cryptography`` signatures, so keys.jws is checked against an encoder it does not share code
with (and attackers' tokens can be shaped freely: any header, any algorithm, any bytes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(part: dict[str, Any] | bytes) -> str:
    if isinstance(part, bytes):
        return b64(part)
    return b64(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def jwk_of(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    size = (public_key.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public_key.curve.name]
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64(numbers.x.to_bytes(size, "big")),
        "y": b64(numbers.y.to_bytes(size, "big")),
    }


def es_sign(
    private_key: ec.EllipticCurvePrivateKey,
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    *,
    raw_signature: bool = True,
) -> str:
    """ECDSA over the signing input; JWS wants raw r||s (``raw_signature=False`` gives DER)."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    size = (private_key.curve.key_size + 7) // 8
    digest = {32: hashes.SHA256(), 48: hashes.SHA384(), 66: hashes.SHA512()}[size]
    der = private_key.sign(signing_input.encode("ascii"), ec.ECDSA(digest))
    if not raw_signature:
        return f"{signing_input}.{b64(der)}"
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64(r.to_bytes(size, 'big') + s.to_bytes(size, 'big'))}"


def hs256_sign(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def unsigned(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes) -> str:
    return f"{_segment(header)}.{_segment(payload)}."


def es256_verifies(public_key: ec.EllipticCurvePublicKey, token: str) -> bool:
    """Independent verification of a JWS made by keys.jws.sign_jws."""
    header, payload, signature = token.split(".")
    raw = unb64(signature)
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public_key.verify(der, f"{header}.{payload}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


def decode_part(token: str, index: int) -> Any:
    return json.loads(unb64(token.split(".")[index]))
