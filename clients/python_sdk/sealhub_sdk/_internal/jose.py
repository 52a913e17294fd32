"""Compact ES256 JWS, written small over ``cryptography``: the SDK's only JOSE code.

Every token names its purpose in ``typ`` so the gateway never accepts a signature made
for one purpose as another. Verification is strict (ES256 only, canonical base64url,
no duplicate JSON members) because it is used on what the gateway sends back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from sealhub_sdk._internal.errors import VerificationError
from sealhub_sdk._internal.keys import DeviceKey, b64url

ALGORITHM = "ES256"
TYP_ENROLL = "sealhub-enroll+jwt"
TYP_LOGIN = "JWT"
TYP_DPOP = "dpop+jwt"
TYP_APPROVAL = "sealhub-approval+jwt"
TYP_RESEND = "sealhub-resend+jwt"
TYP_RECEIPT = "sealhub-receipt+jwt"
TYP_COUNTERSIGN = "sealhub-countersign+jwt"

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_LIFETIME = 120  # the gateway allows at most 300 s
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def new_jti() -> str:
    return secrets.token_urlsafe(18)


def _now() -> int:
    return int(time.time())


def sign_jws(
    claims: Mapping[str, Any],
    key: DeviceKey,
    *,
    typ: str,
    with_jwk: bool = False,
    kid: str | None = None,
) -> str:
    """An ES256 compact JWS of *claims* (UTF-8 JSON, Chinese text kept readable)."""
    header: dict[str, Any] = {"alg": ALGORITHM, "typ": typ}
    if kid is not None:
        header["kid"] = kid
    if with_jwk:
        header["jwk"] = key.public_jwk
    encoded_header = b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
    payload = json.dumps(dict(claims), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    signing_input = f"{encoded_header}.{b64url(payload.encode('utf-8'))}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def enrollment_proof(
    key: DeviceKey, *, official_id: str, enrollment_code: str, now: int | None = None
) -> str:
    """``sealhub-enroll+jwt``: the new key proves possession and carries the one-time code."""
    claims = {
        "official": official_id,
        "enrollment_code": enrollment_code,
        "iat": _now() if now is None else now,
        "jti": new_jti(),
    }
    return sign_jws(claims, key, typ=TYP_ENROLL, with_jwk=True)


def login_assertion(
    key: DeviceKey,
    *,
    official_id: str,
    token_url: str,
    nonce: str,
    now: int | None = None,
    lifetime: int = LOGIN_LIFETIME,
) -> str:
    """RFC 7523 assertion: iss = sub = the official, aud = the token URL, short-lived."""
    issued = _now() if now is None else now
    claims = {
        "iss": official_id,
        "sub": official_id,
        "aud": token_url,
        "nonce": nonce,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": new_jti(),
    }
    return sign_jws(claims, key, typ=TYP_LOGIN, kid=key.thumbprint)


def access_token_hash(access_token: str) -> str:
    """``ath`` (RFC 9449 4.2): base64url SHA-256 of the access token."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def dpop_proof(
    key: DeviceKey,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    nonce: str | None = None,
    now: int | None = None,
) -> str:
    """RFC 9449 proof for one request: ``url`` is the public origin + path, no query."""
    claims: dict[str, Any] = {
        "htm": method.upper(),
        "htu": url,
        "iat": _now() if now is None else now,
        "jti": new_jti(),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    return sign_jws(claims, key, typ=TYP_DPOP, with_jwk=True)


def approval_signature(
    key: DeviceKey,
    *,
    document_id: str,
    draft_sha256: str,
    step: int | str,
    decision: str,
    opinion: str = "",
    now: int | None = None,
) -> str:
    """``sealhub-approval+jwt``: a leader's decision on exactly these draft bytes."""
    if decision not in ("approve", "reject"):
        raise ValueError("decision must be 'approve' or 'reject'")
    claims = {
        "document": document_id,
        "draft_sha256": draft_sha256.lower(),
        "step": step,
        "decision": decision,
        "opinion": opinion,
        "iat": _now() if now is None else now,
        "jti": new_jti(),
    }
    return sign_jws(claims, key, typ=TYP_APPROVAL, kid=key.thumbprint)


def resend_approval_signature(
    key: DeviceKey,
    *,
    document_id: str,
    sha256: str,
    recipients: Sequence[str],
    now: int | None = None,
) -> str:
    """``sealhub-resend+jwt``: a leader approves 补发 of this sealed document to exactly
    these recipients (needed once the document went through sign-off)."""
    claims = {
        "document": document_id,
        "sha256": sha256.lower(),
        "recipients": sorted(set(recipients)),
        "iat": _now() if now is None else now,
        "jti": new_jti(),
    }
    return sign_jws(claims, key, typ=TYP_RESEND, kid=key.thumbprint)


def receipt_signature(
    key: DeviceKey,
    *,
    delivery_id: str,
    sha256: str,
    action: str,
    reason: str = "",
    now: int | None = None,
) -> str:
    """``sealhub-receipt+jwt``: 签收 (``receive``) or 退回 (``reject``, with a reason)."""
    if action not in ("receive", "reject"):
        raise ValueError("action must be 'receive' or 'reject'")
    if action == "reject" and not reason.strip():
        raise ValueError("a rejection needs a reason")
    claims = {
        "delivery": delivery_id,
        "sha256": sha256.lower(),
        "action": action,
        "reason": reason,
        "iat": _now() if now is None else now,
        "jti": new_jti(),
    }
    return sign_jws(claims, key, typ=TYP_RECEIPT, kid=key.thumbprint)


# --- strict reading and verification --------------------------------------------------------


def b64url_decode(text: object, what: str) -> bytes:
    """Canonical unpadded base64url only: one byte string, one spelling."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise VerificationError(f"{what} is not base64url", code="jws_malformed")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not base64url", code="jws_malformed") from None
    if b64url(data) != text:
        raise VerificationError(f"{what} is not canonical base64url", code="jws_malformed")
    return data


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError("duplicate member")
        result[name] = value
    return result


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_refuse_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise VerificationError(f"{what} is not strict JSON", code="jws_malformed") from None
    if not isinstance(value, dict):
        raise VerificationError(f"{what} is not a JSON object", code="jws_malformed")
    return value


def read_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature), NOT verified: pick the key, then verify."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise VerificationError("not a compact JWS", code="jws_malformed")
    header = _json_object(b64url_decode(parts[0], "header"), "header")
    claims = _json_object(b64url_decode(parts[1], "payload"), "payload")
    signature = b64url_decode(parts[2], "signature")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_jws(
    token: str, key: ec.EllipticCurvePublicKey, *, expected_typ: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check alg (ES256 only), typ and the signature with *key*; returns (header, claims)."""
    header, claims, signing_input, signature = read_unverified(token)
    if header.get("alg") != ALGORITHM:
        raise VerificationError("only ES256 is accepted", code="jws_alg_not_allowed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != expected_typ:
        raise VerificationError(f"typ must be {expected_typ}", code="jws_typ_mismatch")
    if "crit" in header:
        raise VerificationError("crit headers are not supported", code="jws_malformed")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VerificationError("the verification key is not P-256", code="jws_bad_key")
    if len(signature) != 64:
        raise VerificationError("an ES256 signature is 64 bytes", code="jws_bad_signature")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("signature verification failed", code="jws_bad_signature") from None
    return header, claims


def public_key_from_jwk(jwk: object) -> ec.EllipticCurvePublicKey:
    """A public EC P-256 JWK as a key; private members are refused."""
    if not isinstance(jwk, dict):
        raise VerificationError("jwk must be an object", code="jws_bad_key")
    if {"d", "p", "q", "k"} & jwk.keys():
        raise VerificationError("jwk carries private key material", code="jws_bad_key")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise VerificationError("jwk must be EC P-256", code="jws_bad_key")
    x = b64url_decode(jwk.get("x"), "jwk x")
    y = b64url_decode(jwk.get("y"), "jwk y")
    if len(x) != 32 or len(y) != 32:
        raise VerificationError("jwk coordinates must be 32 bytes", code="jws_bad_key")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except ValueError:
        raise VerificationError("jwk point is not on P-256", code="jws_bad_key") from None


def jwks_keys(jwks: Mapping[str, Any], *, use: str | None = None) -> dict[str, Any]:
    """kid -> public key for the P-256 keys of a JWKS document (others are skipped)."""
    keys: dict[str, Any] = {}
    entries = jwks.get("keys")
    if not isinstance(entries, Sequence):
        return keys
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if use is not None and entry.get("use") not in (None, use):
            continue
        try:
            keys[entry["kid"]] = public_key_from_jwk(
                {k: v for k, v in entry.items() if k in ("kty", "crv", "x", "y")}
            )
        except VerificationError:
            continue
    return keys
