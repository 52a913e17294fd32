"""Strict compact JWS for the signatures of people and of the gateway (ES256 only).

Every decision about whether a JWS is acceptable is taken here, before python-jose sees
the token: the protected header is decoded strictly (no duplicate members), ``alg`` must
be exactly ``ES256`` and ``typ`` the purpose's own type, and jose is handed one EC P-256
*public key object*, never bytes, text or a dict it could reinterpret as an HMAC secret
(python-jose issue 414). Pure functions: the clock is a parameter and no replay state is
kept; verifiers return ``jti`` and ``replay_until`` so the caller's table enforces single
use for exactly as long as the token could otherwise be accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws as jose_jws
from jose.backends.cryptography_backend import CryptographyECKey
from jose.exceptions import JOSEError

from keys.codes import Code, CodedError

ALGORITHM = "ES256"
# The only list ever given to python-jose.
ALLOWED_ALGORITHMS = (ALGORITHM,)

TYP_ENROLL = "sealhub-enroll+jwt"
TYP_LOGIN = "JWT"
TYP_DPOP = "dpop+jwt"
TYP_APPROVAL = "sealhub-approval+jwt"
TYP_RECEIPT = "sealhub-receipt+jwt"
TYP_RESEND = "sealhub-resend+jwt"
TYP_ACCESS_TOKEN = "at+jwt"  # noqa: S105 (a media type, not a secret)
TYP_COUNTERSIGN = "sealhub-countersign+jwt"
TYP_SEAL = "sealhub-seal+jwt"

# The passkey state a login's access tokens carry (claim ``passkey``): a console login that
# presented a passkey, one that must register one first (a restricted session), or a login
# that needs none (every key file login; console logins of officials who need none).
PASSKEY_STATES = ("verified", "setup_required", "not_required")

# People's JWS are small; the countersigned receipt (official's JWS + x5c + TST) is the
# largest the gateway makes and stays well below this.
MAX_TOKEN_CHARS = 64 * 1024
MAX_JTI_CHARS = 128
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 4000

LOGIN_MAX_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 900
CLOCK_LEEWAY = 30
ENROLL_MAX_AGE = 600
SIGNATURE_MAX_AGE = 900

_P256_COORDINATE_BYTES = 32
_ES256_SIGNATURE_BYTES = 64
# NumericDate sanity bound (year ~36800): refuses absurd values before float arithmetic.
_MAX_NUMERIC_DATE = 2**40
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Header members whose presence would mean "fetch or trust a key named by the sender", or
# processing rules we do not implement (crit, b64); refused for every purpose.
_REFUSED_HEADER_MEMBERS = frozenset({"jku", "x5u", "crit", "b64", "zip", "enc"})
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


# --- errors -------------------------------------------------------------------------------


class JwsError(CodedError):
    """A JWS was refused. ``code`` is for the client, ``reason`` says which check failed.

    Messages never quote the token, its claims or key material: they name the check.
    """

    code: str = Code.INVALID_TOKEN

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={str(self.code)!r}, reason={self.reason!r})"


class InvalidTokenError(JwsError):
    """An access token (``at+jwt``) is not acceptable."""

    code = Code.INVALID_TOKEN


class InvalidAssertionError(JwsError):
    """A login assertion (RFC 7523) is not acceptable."""

    code = Code.INVALID_ASSERTION


class InvalidDpopError(JwsError):
    """A DPoP proof (RFC 9449) is not acceptable."""

    code: str = Code.INVALID_DPOP


class DpopNonceRequiredError(InvalidDpopError):
    """The proof lacks the server nonce or carries a stale one: answer with a fresh nonce."""

    code = Code.USE_DPOP_NONCE


class InvalidEnrollmentProofError(JwsError):
    """An enrollment proof (``sealhub-enroll+jwt``) is not acceptable."""

    code = Code.INVALID_ENROLLMENT_PROOF


class InvalidSignatureError(JwsError):
    """An approval or receipt signed by an official is not acceptable."""

    code = Code.INVALID_SIGNATURE


class InvalidJwkError(JwsError):
    """A JWK is not a public EC P-256 key."""

    code = Code.INVALID_JWK


ErrorClass = type[JwsError]


# --- encoding -----------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, *, error: ErrorClass = JwsError, what: str = "value") -> bytes:
    """Decode unpadded base64url, refusing padding, whitespace and non-canonical trailing bits.

    Canonical-only decoding means one byte string has one spelling, so nothing can be
    smuggled through alternative encodings of the same key or signature.
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise error("malformed", f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise error("malformed", f"{what} is not base64url") from None
    if b64url_encode(data) != text:
        raise error("malformed", f"{what} is not canonical base64url")
    return data


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate member")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def _json_object(data: bytes, *, error: ErrorClass, what: str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object, with duplicate members and NaN refused.

    Duplicates are refused because two parsers may keep different copies (RFC 7515 4).
    """
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error("malformed", f"{what} is not strict JSON") from None
    if not isinstance(value, dict):
        raise error("malformed", f"{what} is not a JSON object")
    return value


# --- time and claims (shared with keys.dpop) -----------------------------------------------


def epoch_seconds(now: datetime) -> float:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _numeric_date(claims: Mapping[str, Any], name: str, *, error: ErrorClass) -> float | None:
    """A NumericDate claim when present: a finite JSON number (``true`` is not a number here)."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error("claim_invalid", f"claim {name} must be a number")
    if not math.isfinite(value) or not 0 <= value < _MAX_NUMERIC_DATE:
        raise error("claim_invalid", f"claim {name} is out of range")
    return float(value)


def required_date(claims: Mapping[str, Any], name: str, *, error: ErrorClass) -> float:
    value = _numeric_date(claims, name, error=error)
    if value is None:
        raise error("claim_missing", f"claim {name} is required")
    return value


def _check_issued_at(
    iat: float, now: float, *, max_age: float, leeway: float, error: ErrorClass
) -> None:
    if iat > now + leeway:
        raise error("issued_in_future", "iat is in the future")
    if iat < now - max_age:
        raise error("too_old", "iat is older than allowed")


def string_claim(
    claims: Mapping[str, Any],
    name: str,
    *,
    error: ErrorClass,
    max_chars: int = MAX_ID_CHARS,
    allow_empty: bool = False,
) -> str:
    value = claims.get(name)
    if value is None:
        raise error("claim_missing", f"claim {name} is required")
    if not isinstance(value, str) or len(value) > max_chars or (not value and not allow_empty):
        raise error("claim_invalid", f"claim {name} must be a string of at most {max_chars}")
    if any("\ud800" <= ch <= "\udfff" for ch in value):  # a JSON escape, not storable text
        raise error("claim_invalid", f"claim {name} contains an unpaired surrogate")
    return value


def jti_claim(claims: Mapping[str, Any], error: ErrorClass) -> str:
    """A replay-table key: printable ASCII only (ids, base64url, UUIDs all are)."""
    value = string_claim(claims, "jti", error=error, max_chars=MAX_JTI_CHARS)
    if not (value.isascii() and value.isprintable()):
        raise error("claim_invalid", "claim jti must be printable ASCII")
    return value


# --- JWK ----------------------------------------------------------------------------------


def _require_p256_public(key: object) -> ec.EllipticCurvePublicKey:
    """Programming errors (a private key, RSA, another curve) are TypeErrors, not 401s."""
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TypeError("an EC P-256 public key is required")
    return key


def parse_public_jwk(
    jwk: object, *, error: ErrorClass = InvalidJwkError
) -> ec.EllipticCurvePublicKey:
    """A public EC P-256 JWK as a key object; private members and other key types are refused.

    The point is validated on the curve by ``cryptography`` (invalid-curve attacks).
    """
    if not isinstance(jwk, dict) or not all(isinstance(k, str) for k in jwk):
        raise error("invalid_jwk", "jwk must be a JSON object")
    if _PRIVATE_JWK_MEMBERS & jwk.keys():
        raise error("private_jwk", "jwk carries private key material")
    if jwk.get("kty") != "EC":
        raise error("invalid_jwk", "jwk kty must be EC")
    if jwk.get("crv") != "P-256":
        raise error("invalid_jwk", "jwk crv must be P-256")
    if "alg" in jwk and jwk["alg"] != ALGORITHM:
        raise error("invalid_jwk", "jwk alg must be ES256 when present")
    if "use" in jwk and jwk["use"] != "sig":
        raise error("invalid_jwk", "jwk use must be sig when present")
    coordinates = []
    for name in ("x", "y"):
        raw = b64url_decode(jwk.get(name), error=error, what=f"jwk {name}")
        if len(raw) != _P256_COORDINATE_BYTES:
            raise error("invalid_jwk", f"jwk {name} must be {_P256_COORDINATE_BYTES} bytes")
        coordinates.append(raw)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + coordinates[0] + coordinates[1]
        )
    except ValueError:
        raise error("invalid_jwk", "jwk point is not on P-256") from None


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The minimal public JWK (the RFC 7638 members only)."""
    numbers = _require_p256_public(key).public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url_encode(numbers.x.to_bytes(_P256_COORDINATE_BYTES, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_P256_COORDINATE_BYTES, "big")),
    }


def jwk_thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 thumbprint: base64url SHA-256 of the sorted required members, no whitespace.

    Computed from the key, not from the sender's JSON, so extra members or member order
    in a submitted JWK cannot change it.
    """
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":"))
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


# --- compact JWS --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signature: bytes


def _media_type(value: str) -> str:
    """RFC 7515 4.1.9: ``typ`` is compared case-insensitively, ``application/`` optional."""
    lowered = value.lower()
    prefix = "application/"
    if lowered.startswith(prefix) and "/" not in lowered[len(prefix) :]:
        return lowered[len(prefix) :]
    return lowered


def _split(token: object, error: ErrorClass, max_chars: int) -> list[str]:
    if not isinstance(token, str):
        raise error("malformed", "token must be text")
    if len(token) > max_chars:
        raise error("too_large", "token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise error("malformed", "token is not a compact JWS")
    return parts


def decode_protected_header(
    token: str, *, error: ErrorClass = JwsError, max_chars: int = MAX_TOKEN_CHARS
) -> dict[str, Any]:
    """The protected header, strictly decoded but NOT verified: use only to pick a key."""
    return _json_object(
        b64url_decode(_split(token, error, max_chars)[0], error=error, what="header"),
        error=error,
        what="header",
    )


def _parse(token: str, error: ErrorClass, max_chars: int) -> _Parsed:
    parts = _split(token, error, max_chars)
    header = _json_object(
        b64url_decode(parts[0], error=error, what="header"), error=error, what="header"
    )
    claims = _json_object(
        b64url_decode(parts[1], error=error, what="payload"), error=error, what="payload"
    )
    signature = b64url_decode(parts[2], error=error, what="signature")
    return _Parsed(header, claims, signature)


def _check_header(header: Mapping[str, Any], expected_typ: str, error: ErrorClass) -> None:
    """alg and typ are decided here, before any key is touched."""
    if header.get("alg") != ALGORITHM:
        raise error("alg_not_allowed", "only ES256 is accepted")
    if _REFUSED_HEADER_MEMBERS & header.keys():
        raise error("header_not_allowed", "the header carries a member that is not accepted")
    typ = header.get("typ")
    if not isinstance(typ, str) or _media_type(typ) != _media_type(expected_typ):
        raise error("typ_mismatch", f"typ must be {expected_typ}")


def read_unverified(
    token: str, *, error: ErrorClass = JwsError, max_chars: int = MAX_TOKEN_CHARS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims WITHOUT signature verification, to look up the signer's key only."""
    parsed = _parse(token, error, max_chars)
    return parsed.header, parsed.claims


def _verify_signature(token: str, key: ec.EllipticCurvePublicKey, error: ErrorClass) -> None:
    """Hand jose one prepared EC public key object and the one-element algorithm list."""
    try:
        jose_jws.verify(
            token, CryptographyECKey(key, ALGORITHM), algorithms=list(ALLOWED_ALGORITHMS)
        )
    except JOSEError:
        raise error("bad_signature", "signature verification failed") from None


def verify_jws(
    token: str,
    *,
    key: ec.EllipticCurvePublicKey,
    expected_typ: str,
    error: ErrorClass = JwsError,
    max_chars: int = MAX_TOKEN_CHARS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify an ES256 compact JWS with *key*; returns (header, claims).

    Checks: strict encoding, ``alg`` exactly ES256, ``typ`` equals *expected_typ*, the
    signature, a JSON object payload whose ``iat``/``exp``/``nbf`` are numbers when present.
    Time windows are the purpose-specific verifiers' job.
    """
    _require_p256_public(key)
    parsed = _parse(token, error, max_chars)
    _check_header(parsed.header, expected_typ, error)
    if len(parsed.signature) != _ES256_SIGNATURE_BYTES:
        raise error("bad_signature", "an ES256 signature is 64 bytes")
    _verify_signature(token, key, error)
    for name in ("iat", "exp", "nbf"):
        _numeric_date(parsed.claims, name, error=error)
    return parsed.header, parsed.claims


def verify_with_header_jwk(
    token: str,
    *,
    expected_typ: str,
    error: ErrorClass,
    max_chars: int = MAX_TOKEN_CHARS,
) -> tuple[ec.EllipticCurvePublicKey, dict[str, Any], dict[str, Any]]:
    """For self-signed proofs (enrollment, DPoP): the key is the header ``jwk``, public only.

    alg and typ are checked before the header key is even parsed.
    """
    header = decode_protected_header(token, error=error, max_chars=max_chars)
    _check_header(header, expected_typ, error)
    if "jwk" not in header:
        raise error("jwk_missing", "the header must carry the public jwk")
    key = parse_public_jwk(header["jwk"], error=error)
    header, claims = verify_jws(
        token, key=key, expected_typ=expected_typ, error=error, max_chars=max_chars
    )
    return key, header, claims


def sign_jws(
    claims: Mapping[str, Any],
    private_key: ec.EllipticCurvePrivateKey,
    *,
    typ: str,
    kid: str | None = None,
    jwk: Mapping[str, str] | None = None,
    x5c: Sequence[str] | None = None,
) -> str:
    """An ES256 compact JWS. A ``jwk`` header must be the public key of *private_key*.

    The payload is UTF-8 JSON (Chinese text stays readable once decoded, and NaN is refused).
    """
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise TypeError("an EC P-256 private key is required")
    headers: dict[str, Any] = {"typ": typ}
    if kid is not None:
        headers["kid"] = kid
    if jwk is not None:
        try:
            header_key = parse_public_jwk(dict(jwk))
        except JwsError as exc:
            raise ValueError(f"the jwk header is not a public P-256 key ({exc.reason})") from None
        if jwk_thumbprint(header_key) != jwk_thumbprint(private_key.public_key()):
            raise ValueError("the jwk header is not the signing key's public key")
        headers["jwk"] = dict(jwk)
    if x5c is not None:
        headers["x5c"] = list(x5c)
    payload = json.dumps(
        dict(claims), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
    return jose_jws.sign(
        payload, CryptographyECKey(private_key, ALGORITHM), headers=headers, algorithm=ALGORITHM
    )


# --- purposes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentProof:
    """A checked enrollment proof; the caller still checks the code and the thumbprint's owner."""

    official: str
    enrollment_code: str = field(repr=False)
    jti: str
    issued_at: datetime
    replay_until: datetime
    thumbprint: str
    public_jwk: dict[str, str]
    public_key: ec.EllipticCurvePublicKey = field(repr=False)


def verify_enrollment_proof(
    proof: str,
    *,
    official_id: str,
    now: datetime,
    max_age: float = ENROLL_MAX_AGE,
    leeway: float = CLOCK_LEEWAY,
) -> EnrollmentProof:
    """A ``sealhub-enroll+jwt`` signed by the key it enrolls, for *official_id*."""
    error = InvalidEnrollmentProofError
    key, _, claims = verify_with_header_jwk(proof, expected_typ=TYP_ENROLL, error=error)
    official = string_claim(claims, "official", error=error)
    if official != official_id:
        raise error("official_mismatch", "the proof is for another official")
    code = string_claim(claims, "enrollment_code", error=error, max_chars=MAX_ID_CHARS)
    iat = required_date(claims, "iat", error=error)
    _check_issued_at(iat, epoch_seconds(now), max_age=max_age, leeway=leeway, error=error)
    return EnrollmentProof(
        official=official,
        enrollment_code=code,
        jti=jti_claim(claims, error),
        issued_at=from_epoch(iat),
        replay_until=from_epoch(iat + max_age),
        thumbprint=jwk_thumbprint(key),
        public_jwk=public_jwk(key),
        public_key=key,
    )


@dataclass(frozen=True)
class LoginAssertion:
    """A checked RFC 7523 assertion; jti and nonce still have to be redeemed once."""

    subject: str
    jti: str
    nonce: str
    issued_at: datetime
    expires_at: datetime
    replay_until: datetime
    kid: str | None


def _audience_matches(aud: object, expected: str) -> bool:
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    return isinstance(aud, str) and hmac.compare_digest(aud.encode(), expected.encode())


def verify_login_assertion(
    assertion: str,
    *,
    key: ec.EllipticCurvePublicKey,
    token_url: str,
    now: datetime,
    expected_subject: str | None = None,
    max_lifetime: float = LOGIN_MAX_LIFETIME,
    leeway: float = CLOCK_LEEWAY,
) -> LoginAssertion:
    """A JWT-bearer assertion signed by an enrolled key of the official it names.

    ``iss`` = ``sub`` (the official), ``aud`` = *token_url* exactly, ``exp`` at most
    *max_lifetime* after ``iat``, ``nonce`` present (the caller redeems it).
    """
    error = InvalidAssertionError
    header, claims = verify_jws(assertion, key=key, expected_typ=TYP_LOGIN, error=error)
    subject = string_claim(claims, "sub", error=error)
    issuer = string_claim(claims, "iss", error=error)
    if issuer != subject:
        raise error("issuer_mismatch", "iss must equal sub")
    if expected_subject is not None and subject != expected_subject:
        raise error("subject_mismatch", "the assertion is for another official")
    if not _audience_matches(claims.get("aud"), token_url):
        raise error("audience_mismatch", "aud must be the token endpoint URL")
    iat = required_date(claims, "iat", error=error)
    exp = required_date(claims, "exp", error=error)
    nbf = _numeric_date(claims, "nbf", error=error)
    current = epoch_seconds(now)
    if exp <= iat:
        raise error("claim_invalid", "exp must be after iat")
    if exp - iat > max_lifetime:
        raise error("lifetime_too_long", f"exp must be within {max_lifetime:g} s after iat")
    if iat > current + leeway:
        raise error("issued_in_future", "iat is in the future")
    if current > exp + leeway:
        raise error("expired", "the assertion has expired")
    if nbf is not None and nbf > current + leeway:
        raise error("not_yet_valid", "nbf is in the future")
    kid = header.get("kid")
    return LoginAssertion(
        subject=subject,
        jti=jti_claim(claims, error),
        nonce=string_claim(claims, "nonce", error=error, max_chars=MAX_ID_CHARS),
        issued_at=from_epoch(iat),
        expires_at=from_epoch(exp),
        replay_until=from_epoch(exp + leeway),
        kid=kid if isinstance(kid, str) else None,
    )


@dataclass(frozen=True)
class Approval:
    document: str
    draft_sha256: str
    step: int | str
    decision: str
    opinion: str
    jti: str
    issued_at: datetime
    replay_until: datetime


def _same_value(value: object, expected: int | str) -> bool:
    return type(value) is type(expected) and value == expected


def _expect_sha256(claims: Mapping[str, Any], name: str, expected: str, error: ErrorClass) -> str:
    value = string_claim(claims, name, error=error, max_chars=64)
    if not _SHA256_HEX.fullmatch(value):
        raise error("claim_invalid", f"claim {name} must be lowercase hex SHA-256")
    if not hmac.compare_digest(value, expected.lower()):
        raise error("content_mismatch", f"claim {name} does not match the content")
    return value


def _signed_at(
    claims: Mapping[str, Any], now: datetime, max_age: float, leeway: float, error: ErrorClass
) -> float:
    iat = required_date(claims, "iat", error=error)
    _check_issued_at(iat, epoch_seconds(now), max_age=max_age, leeway=leeway, error=error)
    return iat


def verify_approval(
    signature: str,
    *,
    key: ec.EllipticCurvePublicKey,
    document_id: str,
    draft_sha256: str,
    step: int | str,
    now: datetime,
    max_age: float = SIGNATURE_MAX_AGE,
    leeway: float = CLOCK_LEEWAY,
) -> Approval:
    """A ``sealhub-approval+jwt`` for exactly this document, draft bytes and workflow step."""
    error = InvalidSignatureError
    _, claims = verify_jws(signature, key=key, expected_typ=TYP_APPROVAL, error=error)
    document = string_claim(claims, "document", error=error)
    if document != document_id:
        raise error("document_mismatch", "the approval is for another document")
    draft = _expect_sha256(claims, "draft_sha256", draft_sha256, error)
    if not _same_value(claims.get("step"), step):
        raise error("step_mismatch", "the approval is for another step")
    decision = string_claim(claims, "decision", error=error)
    if decision not in ("approve", "reject"):
        raise error("claim_invalid", "decision must be approve or reject")
    opinion = string_claim(
        claims, "opinion", error=error, max_chars=MAX_TEXT_CHARS, allow_empty=True
    )
    iat = _signed_at(claims, now, max_age, leeway, error)
    return Approval(
        document=document,
        draft_sha256=draft,
        step=step,
        decision=decision,
        opinion=opinion,
        jti=jti_claim(claims, error),
        issued_at=from_epoch(iat),
        replay_until=from_epoch(iat + max_age),
    )


@dataclass(frozen=True)
class ResendApproval:
    document: str
    sha256: str
    recipients: tuple[str, ...]
    jti: str
    issued_at: datetime


def verify_resend_approval(
    signature: str,
    *,
    key: ec.EllipticCurvePublicKey,
    document_id: str,
    sha256: str,
    recipients: Sequence[str],
    now: datetime,
    max_age: float = SIGNATURE_MAX_AGE,
    leeway: float = CLOCK_LEEWAY,
) -> ResendApproval:
    """A ``sealhub-resend+jwt``: a leader approves 补发 of exactly this sealed document to
    exactly these recipient codes (the ``recipients`` claim, as a set)."""
    error = InvalidSignatureError
    _, claims = verify_jws(signature, key=key, expected_typ=TYP_RESEND, error=error)
    document = string_claim(claims, "document", error=error)
    if document != document_id:
        raise error("document_mismatch", "the approval is for another document")
    sealed = _expect_sha256(claims, "sha256", sha256, error)
    named = claims.get("recipients")
    if not isinstance(named, list) or not all(isinstance(code, str) for code in named):
        raise error("claim_invalid", "recipients must be a list of department codes")
    if sorted(set(named)) != sorted(set(recipients)):
        raise error("recipients_mismatch", "the approval names other recipients")
    iat = _signed_at(claims, now, max_age, leeway, error)
    return ResendApproval(
        document=document,
        sha256=sealed,
        recipients=tuple(sorted(set(named))),
        jti=jti_claim(claims, error),
        issued_at=from_epoch(iat),
    )


@dataclass(frozen=True)
class Receipt:
    delivery: str
    sha256: str
    action: str
    reason: str
    jti: str
    issued_at: datetime
    replay_until: datetime


def verify_receipt(
    signature: str,
    *,
    key: ec.EllipticCurvePublicKey,
    delivery_id: str,
    sha256: str,
    now: datetime,
    expected_action: str | None = None,
    max_age: float = SIGNATURE_MAX_AGE,
    leeway: float = CLOCK_LEEWAY,
) -> Receipt:
    """A ``sealhub-receipt+jwt`` (签收 or 退回) for this delivery and these exact bytes.

    *expected_action* lets the receipt and reject routes each accept only their own action.
    A rejection must give a reason.
    """
    error = InvalidSignatureError
    _, claims = verify_jws(signature, key=key, expected_typ=TYP_RECEIPT, error=error)
    delivery = string_claim(claims, "delivery", error=error)
    if delivery != delivery_id:
        raise error("delivery_mismatch", "the receipt is for another delivery")
    digest = _expect_sha256(claims, "sha256", sha256, error)
    action = string_claim(claims, "action", error=error)
    if action not in ("receive", "reject"):
        raise error("claim_invalid", "action must be receive or reject")
    if expected_action is not None and action != expected_action:
        raise error("action_mismatch", f"action must be {expected_action}")
    reason = claims.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_TEXT_CHARS:
        raise error("claim_invalid", "reason must be a string")
    if action == "reject" and not reason.strip():
        raise error("claim_missing", "a rejection needs a reason")
    iat = _signed_at(claims, now, max_age, leeway, error)
    return Receipt(
        delivery=delivery,
        sha256=digest,
        action=action,
        reason=reason,
        jti=jti_claim(claims, error),
        issued_at=from_epoch(iat),
        replay_until=from_epoch(iat + max_age),
    )


@dataclass(frozen=True)
class SealRequest:
    document: str
    draft_sha256: str
    jti: str
    issued_at: datetime


def verify_seal_request(
    signature: str,
    *,
    key: ec.EllipticCurvePublicKey,
    document_id: str,
    draft_sha256: str,
    now: datetime,
    max_age: float = SIGNATURE_MAX_AGE,
    leeway: float = CLOCK_LEEWAY,
) -> SealRequest:
    """A ``sealhub-seal+jwt``: the seal keeper applies the seal (用印) to exactly this
    signed-off draft. What a passkey step-up of 用印 is bound to."""
    error = InvalidSignatureError
    _, claims = verify_jws(signature, key=key, expected_typ=TYP_SEAL, error=error)
    document = string_claim(claims, "document", error=error)
    if document != document_id:
        raise error("document_mismatch", "the seal request is for another document")
    draft = _expect_sha256(claims, "draft_sha256", draft_sha256, error)
    iat = _signed_at(claims, now, max_age, leeway, error)
    return SealRequest(
        document=document,
        draft_sha256=draft,
        jti=jti_claim(claims, error),
        issued_at=from_epoch(iat),
    )


@dataclass(frozen=True)
class AccessToken:
    """The checked claims of an ``at+jwt``; ``jkt`` must match every request's DPoP key."""

    subject: str
    department: str
    roles: tuple[str, ...]
    jkt: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    kid: str
    passkey: str = "not_required"


def issue_access_token(
    *,
    private_key: ec.EllipticCurvePrivateKey,
    kid: str,
    public_url: str,
    subject: str,
    department: str,
    roles: Sequence[str],
    jkt: str,
    jti: str,
    now: datetime,
    lifetime: int = ACCESS_TOKEN_LIFETIME,
    passkey: str = "not_required",
) -> tuple[str, AccessToken]:
    """An ``at+jwt`` bound to the DPoP key *jkt*; ``iss`` and ``aud`` are the public URL;
    ``passkey`` is the login's passkey state (one of :data:`PASSKEY_STATES`)."""
    if passkey not in PASSKEY_STATES:
        raise ValueError("passkey must be one of " + ", ".join(PASSKEY_STATES))
    iat = math.floor(epoch_seconds(now))
    exp = iat + lifetime
    claims = {
        "iss": public_url,
        "aud": public_url,
        "sub": subject,
        "dept": department,
        "roles": list(roles),
        "cnf": {"jkt": jkt},
        "iat": iat,
        "exp": exp,
        "jti": jti,
        "passkey": passkey,
    }
    token = sign_jws(claims, private_key, typ=TYP_ACCESS_TOKEN, kid=kid)
    return token, AccessToken(
        subject=subject,
        department=department,
        roles=tuple(roles),
        jkt=jkt,
        jti=jti,
        issued_at=from_epoch(iat),
        expires_at=from_epoch(exp),
        kid=kid,
        passkey=passkey,
    )


def verify_access_token(
    token: str,
    *,
    keys: Mapping[str, ec.EllipticCurvePublicKey],
    public_url: str,
    now: datetime,
    leeway: float = CLOCK_LEEWAY,
) -> AccessToken:
    """An ``at+jwt`` of this gateway: the key is chosen by ``kid`` among *keys* only.

    A token naming its own key (``jwk``, ``x5c``; ``jku``/``x5u`` are refused everywhere)
    is refused outright rather than ignored, so no code path can ever trust it.
    """
    error = InvalidTokenError
    header = decode_protected_header(token, error=error)
    _check_header(header, TYP_ACCESS_TOKEN, error)
    if "jwk" in header or "x5c" in header:
        raise error("header_not_allowed", "access tokens must not carry a key")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise error("unknown_key", "the token's kid is not a gateway token key")
    _, claims = verify_jws(token, key=keys[kid], expected_typ=TYP_ACCESS_TOKEN, error=error)
    if claims.get("iss") != public_url:
        raise error("issuer_mismatch", "the token was issued by another gateway")
    if not _audience_matches(claims.get("aud"), public_url):
        raise error("audience_mismatch", "the token is for another audience")
    iat = required_date(claims, "iat", error=error)
    exp = required_date(claims, "exp", error=error)
    current = epoch_seconds(now)
    if iat > current + leeway:
        raise error("issued_in_future", "iat is in the future")
    if current >= exp:
        raise error("expired", "the access token has expired")
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise error("claim_invalid", "roles must be a list of strings")
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict):
        raise error("claim_missing", "the token is not bound to a key (cnf.jkt)")
    passkey = claims.get("passkey", "not_required")
    if passkey not in PASSKEY_STATES:
        raise error("claim_invalid", "passkey is not a passkey state")
    return AccessToken(
        subject=string_claim(claims, "sub", error=error),
        department=string_claim(claims, "dept", error=error),
        roles=tuple(roles),
        jkt=string_claim(cnf, "jkt", error=error, max_chars=64),
        jti=jti_claim(claims, error),
        issued_at=from_epoch(iat),
        expires_at=from_epoch(exp),
        kid=kid,
        passkey=str(passkey),
    )
