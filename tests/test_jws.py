"""keys.jws: the strict JWS reader, JWK thumbprints and every purpose-specific verifier.

Attack tokens are built with the plain JOSE client in tests/plain_jose.py, so each refusal
is about the token's content and not about a quirk shared by our encoder and decoder.
Each refusal asserts the ``code`` (what the client sees) and the ``reason`` (which check
fired), so a test cannot pass because some other check refused the token first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jose import jws as jose_jws

from keys import jws
from keys.jws import (
    InvalidAssertionError,
    InvalidEnrollmentProofError,
    InvalidJwkError,
    InvalidSignatureError,
    InvalidTokenError,
    JwsError,
)
from tests.plain_jose import (
    b64,
    decode_part,
    es256_verifies,
    es_sign,
    hs256_sign,
    jwk_of,
    unb64,
    unsigned,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())
PUBLIC_URL = "https://gateway.test:8443"
TOKEN_URL = f"{PUBLIC_URL}/v1/auth/token"
OFFICIAL = "5f0c7a52-9a51-4c4e-8a53-0c1f2d7e9b11"
DRAFT = hashlib.sha256(b"draft bytes").hexdigest()
SEALED = hashlib.sha256(b"sealed bytes").hexdigest()

# RFC 9449 section 6.1 example key and its RFC 7638 thumbprint (stated in the RFC).
RFC9449_X = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"
RFC9449_Y = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.fixture(scope="module")
def official_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def gateway_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def refused(excinfo: pytest.ExceptionInfo[JwsError], code: str, reason: str) -> None:
    assert (excinfo.value.code, excinfo.value.reason) == (code, reason)


def login_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": OFFICIAL,
        "sub": OFFICIAL,
        "aud": TOKEN_URL,
        "iat": T,
        "exp": T + 120,
        "jti": "login-jti-1",
        "nonce": "challenge-nonce",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def login_token(key: ec.EllipticCurvePrivateKey, typ: str | None = "JWT", **changes: Any) -> str:
    header: dict[str, Any] = {"alg": "ES256"}
    if typ is not None:
        header["typ"] = typ
    return es_sign(key, header, login_claims(**changes))


def verify_login(token: str, key: ec.EllipticCurvePrivateKey, now: datetime = NOW) -> Any:
    return jws.verify_login_assertion(
        token, key=key.public_key(), token_url=TOKEN_URL, now=now, expected_subject=OFFICIAL
    )


def enroll_token(
    key: ec.EllipticCurvePrivateKey,
    *,
    jwk: dict[str, Any] | None = None,
    typ: str = "sealhub-enroll+jwt",
    **changes: Any,
) -> str:
    claims: dict[str, Any] = {
        "official": OFFICIAL,
        "enrollment_code": "code-from-the-admin",
        "iat": T,
        "jti": "enroll-jti",
    }
    claims.update(changes)
    header = {
        "alg": "ES256",
        "typ": typ,
        "jwk": jwk if jwk is not None else jwk_of(key.public_key()),
    }
    return es_sign(key, header, {k: v for k, v in claims.items() if v is not None})


# --- JWK and thumbprints ------------------------------------------------------------------


def test_thumbprint_known_answer_from_rfc9449() -> None:
    key = jws.parse_public_jwk({"kty": "EC", "crv": "P-256", "x": RFC9449_X, "y": RFC9449_Y})
    assert jws.jwk_thumbprint(key) == RFC9449_JKT


def test_thumbprint_equals_hash_of_hand_written_canonical_json() -> None:
    x, y = (
        "V8ctRWc2deLSjfOjqQm7-m33SinduQbKJVgSHFj7ZxQ",
        "svjg0e-iAe5zElQhfqqagr4-S8k3WWgzz6JDPmRE_bk",
    )
    canonical = '{"crv":"P-256","kty":"EC","x":"' + x + '","y":"' + y + '"}'
    expected = b64(hashlib.sha256(canonical.encode()).digest())
    assert hashlib.sha256(canonical.encode()).hexdigest().startswith("1235335bd15b2c75")
    # Member order and optional members of the submitted JWK do not change the thumbprint.
    submitted = {"y": y, "use": "sig", "kid": "laptop", "x": x, "alg": "ES256", "crv": "P-256"}
    submitted["kty"] = "EC"
    assert jws.jwk_thumbprint(jws.parse_public_jwk(submitted)) == expected


def test_public_jwk_round_trips(official_key: ec.EllipticCurvePrivateKey) -> None:
    public = official_key.public_key()
    assert jws.public_jwk(public) == {**jwk_of(public)}
    assert jws.parse_public_jwk(jws.public_jwk(public)) == public


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"d": "AAAA"}, "private_jwk"),
        ({"kty": "RSA"}, "invalid_jwk"),
        ({"kty": "oct", "k": "c2VjcmV0"}, "private_jwk"),
        ({"crv": "P-384"}, "invalid_jwk"),
        ({"alg": "HS256"}, "invalid_jwk"),
        ({"use": "enc"}, "invalid_jwk"),
        ({"x": b64(b"\x01" * 31)}, "invalid_jwk"),
        ({"x": 12345}, "malformed"),
        ({"y": RFC9449_Y + "="}, "malformed"),
        ({"x": RFC9449_X[:-1] + "t"}, "malformed"),  # same bytes, non-canonical spelling
        ({"y": RFC9449_X}, "invalid_jwk"),  # (x, x) is not on the curve
    ],
)
def test_parse_public_jwk_refuses(change: dict[str, Any], reason: str) -> None:
    good = {"kty": "EC", "crv": "P-256", "x": RFC9449_X, "y": RFC9449_Y}
    assert jws.parse_public_jwk(good)
    with pytest.raises(InvalidJwkError) as excinfo:
        jws.parse_public_jwk({**good, **change})
    refused(excinfo, "invalid_jwk", reason)


def test_parse_public_jwk_refuses_a_p384_key_and_non_objects() -> None:
    p384 = jwk_of(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(InvalidJwkError) as excinfo:
        jws.parse_public_jwk(p384)
    refused(excinfo, "invalid_jwk", "invalid_jwk")
    with pytest.raises(InvalidJwkError):
        jws.parse_public_jwk([RFC9449_X, RFC9449_Y])


# --- the strict reader --------------------------------------------------------------------


def test_duplicate_header_members_are_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    header = b'{"alg":"ES256","typ":"JWT","typ":"sealhub-enroll+jwt"}'
    token = es_sign(official_key, header, login_claims())
    with pytest.raises(JwsError) as excinfo:
        jws.decode_protected_header(token)
    refused(excinfo, "invalid_token", "malformed")
    with pytest.raises(InvalidAssertionError) as excinfo2:
        verify_login(token, official_key)
    refused(excinfo2, "invalid_assertion", "malformed")


def test_duplicate_payload_members_are_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    payload = json.dumps(login_claims())[:-1] + ', "sub": "someone-else"}'
    token = es_sign(official_key, {"alg": "ES256", "typ": "JWT"}, payload.encode())
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "malformed")


@pytest.mark.parametrize(
    "header",
    [b'["ES256"]', b'"ES256"', b"{not json}", b'{"alg":NaN}', b"\xff\xfe{}"],
)
def test_header_must_be_a_json_object(header: bytes) -> None:
    token = f"{b64(header)}.{b64(b'{}')}.{b64(bytes(64))}"
    with pytest.raises(JwsError) as excinfo:
        jws.decode_protected_header(token)
    refused(excinfo, "invalid_token", "malformed")


@pytest.mark.parametrize(
    "shape",
    [
        "a.b",  # two segments
        "a.b.c.d.e",  # JWE compact
        "eyJhbGciOiJFUzI1NiJ9=.e30.AA",  # padding
        "eyJhbGciOiJFUzI1NiJ9 .e30.AA",  # whitespace
        "eyJhbGciOiJFUzI1NiJ9+.e30.AA",  # base64, not base64url
    ],
)
def test_malformed_compact_serializations(shape: str) -> None:
    with pytest.raises(JwsError) as excinfo:
        jws.decode_protected_header(shape)
    refused(excinfo, "invalid_token", "malformed")


def test_oversized_token_is_refused_before_decoding() -> None:
    with pytest.raises(JwsError) as excinfo:
        jws.decode_protected_header("a" * (jws.MAX_TOKEN_CHARS + 1))
    refused(excinfo, "invalid_token", "too_large")


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"42"])
def test_payload_must_be_a_json_object(
    official_key: ec.EllipticCurvePrivateKey, payload: bytes
) -> None:
    token = es_sign(official_key, {"alg": "ES256", "typ": "JWT"}, payload)
    with pytest.raises(JwsError) as excinfo:
        jws.verify_jws(token, key=official_key.public_key(), expected_typ="JWT")
    refused(excinfo, "invalid_token", "malformed")


@pytest.mark.parametrize("value", [True, "1764147600", [T], {"t": T}, -1, 2**41])
def test_numeric_dates_must_be_numbers(
    official_key: ec.EllipticCurvePrivateKey, value: Any
) -> None:
    token = es_sign(official_key, {"alg": "ES256", "typ": "JWT"}, {"iat": value})
    with pytest.raises(JwsError) as excinfo:
        jws.verify_jws(token, key=official_key.public_key(), expected_typ="JWT")
    refused(excinfo, "invalid_token", "claim_invalid")


def test_nan_in_payload_is_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    token = es_sign(official_key, {"alg": "ES256", "typ": "JWT"}, b'{"exp":NaN}')
    with pytest.raises(JwsError) as excinfo:
        jws.verify_jws(token, key=official_key.public_key(), expected_typ="JWT")
    refused(excinfo, "invalid_token", "malformed")


# --- algorithm confusion ------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(official_key: ec.EllipticCurvePrivateKey, alg: str) -> None:
    token = unsigned({"alg": alg, "typ": "JWT"}, login_claims())
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "alg_not_allowed")


def test_missing_alg_is_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    token = es_sign(official_key, {"typ": "JWT"}, login_claims())
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "alg_not_allowed")


def _public_key_forms(key: ec.EllipticCurvePublicKey) -> dict[str, bytes]:
    return {
        "pem": key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk_json": json.dumps(jwk_of(key)).encode(),
        "der": key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }


@pytest.mark.parametrize("form", ["pem", "jwk_json", "der"])
def test_hs256_keyed_with_the_public_key_is_refused_for_login(
    official_key: ec.EllipticCurvePrivateKey, form: str
) -> None:
    secret = _public_key_forms(official_key.public_key())[form]
    token = hs256_sign(secret, {"alg": "HS256", "typ": "JWT"}, login_claims())
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "alg_not_allowed")


@pytest.mark.parametrize("form", ["pem", "jwk_json", "der"])
def test_hs256_keyed_with_the_gateway_public_key_is_refused_as_access_token(
    gateway_key: ec.EllipticCurvePrivateKey, form: str
) -> None:
    secret = _public_key_forms(gateway_key.public_key())[form]
    claims = {
        "iss": PUBLIC_URL,
        "aud": PUBLIC_URL,
        "sub": OFFICIAL,
        "dept": "yulin-gov",
        "roles": ["admin"],
        "cnf": {"jkt": RFC9449_JKT},
        "iat": T,
        "exp": T + 900,
        "jti": "forged",
    }
    token = hs256_sign(secret, {"alg": "HS256", "typ": "at+jwt", "kid": "token-1"}, claims)
    with pytest.raises(InvalidTokenError) as excinfo:
        jws.verify_access_token(
            token, keys={"token-1": gateway_key.public_key()}, public_url=PUBLIC_URL, now=NOW
        )
    refused(excinfo, "invalid_token", "alg_not_allowed")


def test_the_der_hs256_forgery_is_real(gateway_key: ec.EllipticCurvePrivateKey) -> None:
    """The attack token is valid HS256 for a verifier handed key bytes (issue 414's shape)."""
    der = _public_key_forms(gateway_key.public_key())["der"]
    token = hs256_sign(der, {"alg": "HS256", "typ": "JWT"}, login_claims())
    assert json.loads(jose_jws.verify(token, der, algorithms=["HS256"]))["sub"] == OFFICIAL
    with pytest.raises(JwsError) as excinfo:
        jws.verify_jws(token, key=gateway_key.public_key(), expected_typ="JWT")
    refused(excinfo, "invalid_token", "alg_not_allowed")


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES384", "ES512", "EdDSA", "HS512", "es256"])
def test_other_algorithms_are_refused_even_with_a_valid_p256_signature(
    official_key: ec.EllipticCurvePrivateKey, alg: str
) -> None:
    token = login_token(official_key)
    forged_header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    token = ".".join([forged_header, *token.split(".")[1:]])
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "alg_not_allowed")


def test_eddsa_signed_token_is_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    ed_key = ed25519.Ed25519PrivateKey.generate()
    header = b64(json.dumps({"alg": "EdDSA", "typ": "JWT"}).encode())
    payload = b64(json.dumps(login_claims()).encode())
    token = f"{header}.{payload}.{b64(ed_key.sign(f'{header}.{payload}'.encode()))}"
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "alg_not_allowed")


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"jku": "https://evil.test/jwks.json"},
        {"x5u": "https://evil.test/cert.pem"},
        {"b64": False},
    ],
)
def test_unsupported_header_members_are_refused(
    official_key: ec.EllipticCurvePrivateKey, extra: dict[str, Any]
) -> None:
    token = es_sign(official_key, {"alg": "ES256", "typ": "JWT", **extra}, login_claims())
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "header_not_allowed")


def test_verify_jws_refuses_anything_but_a_p256_public_key(
    official_key: ec.EllipticCurvePrivateKey,
) -> None:
    token = login_token(official_key)
    for wrong in (
        official_key,
        _public_key_forms(official_key.public_key())["pem"],
        jwk_of(official_key.public_key()),
        ec.generate_private_key(ec.SECP384R1()).public_key(),
    ):
        with pytest.raises(TypeError):
            jws.verify_jws(token, key=wrong, expected_typ="JWT")  # type: ignore[arg-type]


# --- signatures ---------------------------------------------------------------------------


def test_token_signed_by_another_key_is_refused(
    official_key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(login_token(other_key), official_key)
    refused(excinfo, "invalid_assertion", "bad_signature")


def test_tampered_payload_is_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    header, _, signature = login_token(official_key).split(".")
    tampered = b64(json.dumps(login_claims(exp=T + 60)).encode())
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(f"{header}.{tampered}.{signature}", official_key)
    refused(excinfo, "invalid_assertion", "bad_signature")


def test_der_encoded_signature_is_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    token = es_sign(
        official_key, {"alg": "ES256", "typ": "JWT"}, login_claims(), raw_signature=False
    )
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    refused(excinfo, "invalid_assertion", "bad_signature")


def test_sign_jws_output_verifies_with_an_independent_verifier(
    official_key: ec.EllipticCurvePrivateKey,
) -> None:
    claims = {"opinion": "同意，请办理", "iat": T, "jti": "a"}
    token = jws.sign_jws(
        claims,
        official_key,
        typ="sealhub-approval+jwt",
        kid="laptop",
        jwk=jws.public_jwk(official_key.public_key()),
    )
    assert es256_verifies(official_key.public_key(), token)
    header = decode_part(token, 0)
    assert header["alg"] == "ES256"
    assert header["typ"] == "sealhub-approval+jwt"
    assert header["kid"] == "laptop"
    assert "d" not in header["jwk"]
    assert "同意，请办理".encode() in unb64(token.split(".")[1])


def test_sign_jws_refuses_a_private_or_foreign_jwk_header(
    official_key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    private_jwk = {**jwk_of(official_key.public_key()), "d": "secret"}
    with pytest.raises(ValueError, match="private_jwk") as excinfo:
        jws.sign_jws({}, official_key, typ="dpop+jwt", jwk=private_jwk)
    assert "secret" not in str(excinfo.value)
    with pytest.raises(ValueError, match="not the signing key"):
        jws.sign_jws({}, official_key, typ="dpop+jwt", jwk=jwk_of(other_key.public_key()))


def test_error_repr_and_message_do_not_echo_the_token(
    official_key: ec.EllipticCurvePrivateKey,
) -> None:
    token = login_token(official_key, nonce="SENSITIVE-NONCE", exp=T + 3600)
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(token, official_key)
    text = f"{excinfo.value!r} {excinfo.value}"
    assert "SENSITIVE" not in text
    assert token.split(".")[1] not in text


# --- enrollment proof ---------------------------------------------------------------------


def test_enrollment_proof_accepted(official_key: ec.EllipticCurvePrivateKey) -> None:
    proof = jws.verify_enrollment_proof(enroll_token(official_key), official_id=OFFICIAL, now=NOW)
    assert proof.thumbprint == jws.jwk_thumbprint(official_key.public_key())
    assert proof.public_jwk == jwk_of(official_key.public_key())
    assert proof.enrollment_code == "code-from-the-admin"
    assert "code-from-the-admin" not in repr(proof)
    assert (proof.jti, proof.issued_at) == ("enroll-jti", NOW)
    assert proof.replay_until == NOW + timedelta(seconds=jws.ENROLL_MAX_AGE)


def test_enrollment_proof_header_jwk_with_d_is_refused(
    official_key: ec.EllipticCurvePrivateKey,
) -> None:
    d = official_key.private_numbers().private_value.to_bytes(32, "big")
    jwk = {**jwk_of(official_key.public_key()), "d": b64(d)}
    with pytest.raises(InvalidEnrollmentProofError) as excinfo:
        jws.verify_enrollment_proof(
            enroll_token(official_key, jwk=jwk), official_id=OFFICIAL, now=NOW
        )
    refused(excinfo, "invalid_enrollment_proof", "private_jwk")
    assert b64(d) not in f"{excinfo.value!r} {excinfo.value}"


def test_enrollment_proof_signed_by_another_key_than_its_jwk(
    official_key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    token = enroll_token(other_key, jwk=jwk_of(official_key.public_key()))
    with pytest.raises(InvalidEnrollmentProofError) as excinfo:
        jws.verify_enrollment_proof(token, official_id=OFFICIAL, now=NOW)
    refused(excinfo, "invalid_enrollment_proof", "bad_signature")


@pytest.mark.parametrize(
    ("kwargs", "now", "reason"),
    [
        ({"official": "another-official"}, NOW, "official_mismatch"),
        ({"enrollment_code": None}, NOW, "claim_missing"),
        ({"jti": None}, NOW, "claim_missing"),
        ({"iat": None}, NOW, "claim_missing"),
        ({}, NOW + timedelta(seconds=jws.ENROLL_MAX_AGE + 1), "too_old"),
        ({"iat": T + 120}, NOW, "issued_in_future"),
        ({"typ": "JWT"}, NOW, "typ_mismatch"),
    ],
)
def test_enrollment_proof_refusals(
    official_key: ec.EllipticCurvePrivateKey, kwargs: dict[str, Any], now: datetime, reason: str
) -> None:
    with pytest.raises(InvalidEnrollmentProofError) as excinfo:
        jws.verify_enrollment_proof(
            enroll_token(official_key, **kwargs), official_id=OFFICIAL, now=now
        )
    refused(excinfo, "invalid_enrollment_proof", reason)


def test_enrollment_proof_without_jwk_is_refused(official_key: ec.EllipticCurvePrivateKey) -> None:
    token = es_sign(
        official_key,
        {"alg": "ES256", "typ": "sealhub-enroll+jwt"},
        {"official": OFFICIAL, "enrollment_code": "c", "iat": T, "jti": "j"},
    )
    with pytest.raises(InvalidEnrollmentProofError) as excinfo:
        jws.verify_enrollment_proof(token, official_id=OFFICIAL, now=NOW)
    refused(excinfo, "invalid_enrollment_proof", "jwk_missing")


# --- login assertion ----------------------------------------------------------------------


def test_login_assertion_accepted(official_key: ec.EllipticCurvePrivateKey) -> None:
    token = es_sign(official_key, {"alg": "ES256", "typ": "JWT", "kid": "laptop"}, login_claims())
    result = verify_login(token, official_key)
    assert (result.subject, result.jti, result.nonce, result.kid) == (
        OFFICIAL,
        "login-jti-1",
        "challenge-nonce",
        "laptop",
    )
    assert result.expires_at == NOW + timedelta(seconds=120)
    assert result.replay_until == result.expires_at + timedelta(seconds=jws.CLOCK_LEEWAY)


@pytest.mark.parametrize("typ", ["jwt", "application/jwt", "APPLICATION/JWT"])
def test_login_typ_is_a_case_insensitive_media_type(
    official_key: ec.EllipticCurvePrivateKey, typ: str
) -> None:
    assert verify_login(login_token(official_key, typ=typ), official_key).subject == OFFICIAL


@pytest.mark.parametrize(
    "typ", ["sealhub-enroll+jwt", "dpop+jwt", "at+jwt", "sealhub-approval+jwt", None]
)
def test_jws_of_another_purpose_is_refused_as_login(
    official_key: ec.EllipticCurvePrivateKey, typ: str | None
) -> None:
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(login_token(official_key, typ=typ), official_key)
    refused(excinfo, "invalid_assertion", "typ_mismatch")


def test_login_assertion_is_refused_as_enrollment_proof_and_approval(
    official_key: ec.EllipticCurvePrivateKey,
) -> None:
    header = {"alg": "ES256", "typ": "JWT", "jwk": jwk_of(official_key.public_key())}
    claims = login_claims(official=OFFICIAL, enrollment_code="c")
    token = es_sign(official_key, header, claims)
    with pytest.raises(InvalidEnrollmentProofError) as excinfo:
        jws.verify_enrollment_proof(token, official_id=OFFICIAL, now=NOW)
    refused(excinfo, "invalid_enrollment_proof", "typ_mismatch")
    with pytest.raises(InvalidSignatureError) as excinfo2:
        jws.verify_approval(
            token,
            key=official_key.public_key(),
            document_id="d",
            draft_sha256=DRAFT,
            step=1,
            now=NOW,
        )
    refused(excinfo2, "invalid_signature", "typ_mismatch")


@pytest.mark.parametrize(
    ("changes", "now", "reason"),
    [
        ({}, NOW + timedelta(seconds=120 + jws.CLOCK_LEEWAY + 1), "expired"),
        ({"exp": T + 301}, NOW, "lifetime_too_long"),
        ({"exp": T}, NOW, "claim_invalid"),
        ({"exp": None}, NOW, "claim_missing"),
        ({"iat": None}, NOW, "claim_missing"),
        ({"iat": T + 60, "exp": T + 120}, NOW, "issued_in_future"),
        ({"nbf": T + 100}, NOW, "not_yet_valid"),
        ({"aud": f"{PUBLIC_URL}/v1/auth/token/"}, NOW, "audience_mismatch"),
        ({"aud": "https://other.test/v1/auth/token"}, NOW, "audience_mismatch"),
        ({"aud": [TOKEN_URL, "https://other.test"]}, NOW, "audience_mismatch"),
        ({"aud": None}, NOW, "audience_mismatch"),
        ({"iss": "someone-else"}, NOW, "issuer_mismatch"),
        ({"iss": "someone-else", "sub": "someone-else"}, NOW, "subject_mismatch"),
        ({"nonce": None}, NOW, "claim_missing"),
        ({"nonce": 42}, NOW, "claim_invalid"),
        ({"jti": None}, NOW, "claim_missing"),
        ({"jti": "j" * (jws.MAX_JTI_CHARS + 1)}, NOW, "claim_invalid"),
        ({"sub": ""}, NOW, "claim_invalid"),
    ],
)
def test_login_assertion_refusals(
    official_key: ec.EllipticCurvePrivateKey, changes: dict[str, Any], now: datetime, reason: str
) -> None:
    with pytest.raises(InvalidAssertionError) as excinfo:
        verify_login(login_token(official_key, **changes), official_key, now=now)
    refused(excinfo, "invalid_assertion", reason)


def test_login_assertion_boundaries_are_accepted(official_key: ec.EllipticCurvePrivateKey) -> None:
    at_limit = login_token(official_key, exp=T + jws.LOGIN_MAX_LIFETIME)
    assert verify_login(at_limit, official_key).expires_at == NOW + timedelta(seconds=300)
    last_second = NOW + timedelta(seconds=120 + jws.CLOCK_LEEWAY)
    assert verify_login(login_token(official_key), official_key, now=last_second)
    assert verify_login(login_token(official_key, aud=[TOKEN_URL]), official_key)


# --- approvals and receipts ---------------------------------------------------------------


def approval_token(
    key: ec.EllipticCurvePrivateKey, typ: str = "sealhub-approval+jwt", **changes: Any
) -> str:
    claims: dict[str, Any] = {
        "document": "doc-1",
        "draft_sha256": DRAFT,
        "step": 1,
        "decision": "approve",
        "opinion": "同意",
        "iat": T,
        "jti": "approval-1",
    }
    claims.update(changes)
    return es_sign(
        key, {"alg": "ES256", "typ": typ}, {k: v for k, v in claims.items() if v is not None}
    )


def verify_approval(
    token: str, key: ec.EllipticCurvePrivateKey, now: datetime = NOW
) -> jws.Approval:
    return jws.verify_approval(
        token, key=key.public_key(), document_id="doc-1", draft_sha256=DRAFT, step=1, now=now
    )


def test_approval_accepted(official_key: ec.EllipticCurvePrivateKey) -> None:
    approval = verify_approval(approval_token(official_key), official_key)
    assert (approval.decision, approval.opinion, approval.step, approval.jti) == (
        "approve",
        "同意",
        1,
        "approval-1",
    )
    rejection = verify_approval(
        approval_token(official_key, decision="reject", opinion=""), official_key
    )
    assert rejection.decision == "reject"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"document": "doc-2"}, "document_mismatch"),
        ({"draft_sha256": SEALED}, "content_mismatch"),
        ({"draft_sha256": DRAFT.upper()}, "claim_invalid"),
        ({"step": 2}, "step_mismatch"),
        ({"step": "1"}, "step_mismatch"),
        ({"step": True}, "step_mismatch"),
        ({"decision": "maybe"}, "claim_invalid"),
        ({"opinion": None}, "claim_missing"),
        ({"typ": "sealhub-receipt+jwt"}, "typ_mismatch"),
        ({"iat": T - jws.SIGNATURE_MAX_AGE - 1}, "too_old"),
    ],
)
def test_approval_refusals(
    official_key: ec.EllipticCurvePrivateKey, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidSignatureError) as excinfo:
        verify_approval(approval_token(official_key, **changes), official_key)
    refused(excinfo, "invalid_signature", reason)


def receipt_token(
    key: ec.EllipticCurvePrivateKey, typ: str = "sealhub-receipt+jwt", **changes: Any
) -> str:
    claims: dict[str, Any] = {
        "delivery": "delivery-1",
        "sha256": SEALED,
        "action": "receive",
        "reason": "",
        "iat": T,
        "jti": "receipt-1",
    }
    claims.update(changes)
    return es_sign(
        key, {"alg": "ES256", "typ": typ}, {k: v for k, v in claims.items() if v is not None}
    )


def verify_receipt(token: str, key: ec.EllipticCurvePrivateKey, **kwargs: Any) -> jws.Receipt:
    return jws.verify_receipt(
        token, key=key.public_key(), delivery_id="delivery-1", sha256=SEALED, now=NOW, **kwargs
    )


def test_receipt_accepted(official_key: ec.EllipticCurvePrivateKey) -> None:
    receipt = verify_receipt(receipt_token(official_key), official_key, expected_action="receive")
    assert (receipt.action, receipt.sha256, receipt.jti) == ("receive", SEALED, "receipt-1")
    rejection = verify_receipt(
        receipt_token(official_key, action="reject", reason="文号有误"), official_key
    )
    assert rejection.reason == "文号有误"


@pytest.mark.parametrize(
    ("changes", "kwargs", "reason"),
    [
        ({"delivery": "delivery-2"}, {}, "delivery_mismatch"),
        ({"sha256": DRAFT}, {}, "content_mismatch"),
        ({"action": "ignore"}, {}, "claim_invalid"),
        ({"action": "reject", "reason": "  "}, {}, "claim_missing"),
        ({"action": "reject", "reason": "x"}, {"expected_action": "receive"}, "action_mismatch"),
        ({"typ": "sealhub-approval+jwt"}, {}, "typ_mismatch"),
        ({"jti": None}, {}, "claim_missing"),
    ],
)
def test_receipt_refusals(
    official_key: ec.EllipticCurvePrivateKey,
    changes: dict[str, Any],
    kwargs: dict[str, Any],
    reason: str,
) -> None:
    with pytest.raises(InvalidSignatureError) as excinfo:
        verify_receipt(receipt_token(official_key, **changes), official_key, **kwargs)
    refused(excinfo, "invalid_signature", reason)


# --- access tokens ------------------------------------------------------------------------


def issue(gateway_key: ec.EllipticCurvePrivateKey, **changes: Any) -> tuple[str, jws.AccessToken]:
    kwargs: dict[str, Any] = {
        "private_key": gateway_key,
        "kid": "token-1",
        "public_url": PUBLIC_URL,
        "subject": OFFICIAL,
        "department": "yulin-gov",
        "roles": ["clerk", "leader"],
        "jkt": RFC9449_JKT,
        "jti": "at-1",
        "now": NOW,
    }
    kwargs.update(changes)
    return jws.issue_access_token(**kwargs)


def verify_at(
    token: str, gateway_key: ec.EllipticCurvePrivateKey, now: datetime = NOW
) -> jws.AccessToken:
    return jws.verify_access_token(
        token, keys={"token-1": gateway_key.public_key()}, public_url=PUBLIC_URL, now=now
    )


def test_access_token_round_trip(gateway_key: ec.EllipticCurvePrivateKey) -> None:
    token, issued = issue(gateway_key)
    assert verify_at(token, gateway_key) == issued
    assert issued.expires_at - issued.issued_at == timedelta(minutes=15)
    assert es256_verifies(gateway_key.public_key(), token)
    assert decode_part(token, 0) == {"alg": "ES256", "typ": "at+jwt", "kid": "token-1"}
    claims = decode_part(token, 1)
    assert claims["cnf"] == {"jkt": RFC9449_JKT}
    assert (claims["iss"], claims["aud"], claims["dept"]) == (PUBLIC_URL, PUBLIC_URL, "yulin-gov")


def test_access_token_expires_after_15_minutes(gateway_key: ec.EllipticCurvePrivateKey) -> None:
    token, _ = issue(gateway_key)
    assert verify_at(token, gateway_key, now=NOW + timedelta(seconds=899))
    with pytest.raises(InvalidTokenError) as excinfo:
        verify_at(token, gateway_key, now=NOW + timedelta(seconds=900))
    refused(excinfo, "invalid_token", "expired")


def test_access_token_from_another_gateway_or_for_another_audience(
    gateway_key: ec.EllipticCurvePrivateKey,
) -> None:
    token, _ = issue(gateway_key, public_url="https://other.test")
    with pytest.raises(InvalidTokenError) as excinfo:
        verify_at(token, gateway_key)
    refused(excinfo, "invalid_token", "issuer_mismatch")


def _access_claims() -> dict[str, Any]:
    return {
        "iss": PUBLIC_URL,
        "aud": PUBLIC_URL,
        "sub": OFFICIAL,
        "dept": "yulin-gov",
        "roles": ["admin"],
        "cnf": {"jkt": RFC9449_JKT},
        "iat": T,
        "exp": T + 900,
        "jti": "x",
    }


def test_access_token_carrying_its_own_key_is_refused(
    gateway_key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    for extra in ({"jwk": jwk_of(other_key.public_key())}, {"x5c": ["MIIB"]}):
        header = {"alg": "ES256", "typ": "at+jwt", "kid": "token-1", **extra}
        with pytest.raises(InvalidTokenError) as excinfo:
            verify_at(es_sign(other_key, header, _access_claims()), gateway_key)
        refused(excinfo, "invalid_token", "header_not_allowed")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "ES256", "typ": "at+jwt", "kid": "token-1"}, "bad_signature"),
        ({"alg": "ES256", "typ": "at+jwt", "kid": "token-2"}, "unknown_key"),
        ({"alg": "ES256", "typ": "at+jwt"}, "unknown_key"),
        ({"alg": "ES256", "typ": "dpop+jwt", "kid": "token-1"}, "typ_mismatch"),
        ({"alg": "ES256", "typ": "JWT", "kid": "token-1"}, "typ_mismatch"),
    ],
)
def test_access_token_forgeries(
    gateway_key: ec.EllipticCurvePrivateKey,
    other_key: ec.EllipticCurvePrivateKey,
    header: dict[str, Any],
    reason: str,
) -> None:
    with pytest.raises(InvalidTokenError) as excinfo:
        verify_at(es_sign(other_key, header, _access_claims()), gateway_key)
    refused(excinfo, "invalid_token", reason)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"cnf": None}, "claim_missing"),
        ({"cnf": {}}, "claim_missing"),
        ({"roles": "admin"}, "claim_invalid"),
        ({"aud": "https://other.test"}, "audience_mismatch"),
        ({"dept": None}, "claim_missing"),
        ({"exp": None}, "claim_missing"),
    ],
)
def test_access_token_claim_checks(
    gateway_key: ec.EllipticCurvePrivateKey, changes: dict[str, Any], reason: str
) -> None:
    claims = {k: v for k, v in {**_access_claims(), **changes}.items() if v is not None}
    token = es_sign(gateway_key, {"alg": "ES256", "typ": "at+jwt", "kid": "token-1"}, claims)
    with pytest.raises(InvalidTokenError) as excinfo:
        verify_at(token, gateway_key)
    refused(excinfo, "invalid_token", reason)


def test_naive_now_is_a_programming_error(official_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_login(login_token(official_key), official_key, now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"jti": "abc\ud800"}, "unpaired surrogate"),
        ({"jti": "编号-1"}, "printable ASCII"),
        ({"jti": "a\x00b"}, "printable ASCII"),
        ({"jti": "a\tb"}, "printable ASCII"),
    ],
)
def test_jti_is_a_printable_ascii_key(claims: dict[str, Any], reason: str) -> None:
    """A lone surrogate (a JSON escape) once reached PostgreSQL as a 500."""
    with pytest.raises(jws.InvalidSignatureError, match=reason):
        jws.jti_claim(claims, jws.InvalidSignatureError)
    assert jws.jti_claim({"jti": "Zm9v_bar-1.2~3"}, jws.InvalidSignatureError) == "Zm9v_bar-1.2~3"


def test_string_claims_refuse_unpaired_surrogates() -> None:
    with pytest.raises(jws.InvalidSignatureError, match="surrogate"):
        jws.string_claim(
            {"opinion": "同意\udc00"}, "opinion", error=jws.InvalidSignatureError, max_chars=100
        )
