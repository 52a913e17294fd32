"""The signed proofs an official's key sends to the gateway (DPoP proof, enrollment proof,
login assertion), as plain functions: the test sessions (sync) and the load generator
(async) build them the same way and differ only in how they send them."""

from __future__ import annotations

import time
import uuid

from cryptography.hazmat.primitives.asymmetric import ec

from keys.dpop import access_token_hash
from keys.jws import TYP_DPOP, TYP_ENROLL, TYP_LOGIN, public_jwk, sign_jws

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def dpop_proof(
    key: ec.EllipticCurvePrivateKey,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    **claims: object,
) -> str:
    """A DPoP proof for ``method url`` (``htu`` without the query), bound to *access_token*
    when given."""
    payload: dict[str, object] = {
        "jti": uuid.uuid4().hex,
        "htm": method,
        "htu": url.split("?", 1)[0],
        "iat": int(time.time()),
    }
    if access_token is not None:
        payload["ath"] = access_token_hash(access_token)
    payload.update(claims)
    return sign_jws(payload, key, typ=TYP_DPOP, jwk=public_jwk(key.public_key()))


def enrollment_proof(key: ec.EllipticCurvePrivateKey, official_id: str, code: str) -> str:
    """The proof enrolling *key* for *official_id* with its one-time *code*."""
    return sign_jws(
        {
            "official": official_id,
            "enrollment_code": code,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        key,
        typ=TYP_ENROLL,
        jwk=public_jwk(key.public_key()),
    )


def login_assertion(
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    official_id: str,
    audience: str,
    nonce: str,
    **claims: object,
) -> str:
    """The login assertion of *official_id* answering *nonce*, for the token URL *audience*."""
    now = int(time.time())
    payload: dict[str, object] = {
        "iss": official_id,
        "sub": official_id,
        "aud": audience,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "nonce": nonce,
    }
    payload.update(claims)
    return sign_jws(payload, key, typ=TYP_LOGIN, kid=kid)
