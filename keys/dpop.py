"""DPoP proofs (RFC 9449): what python-jose does not check, written small and strict.

A proof binds one HTTP request (method and URL) to the key that signed it; the access
token's ``cnf.jkt`` binds the token to that key, so a stolen token is useless without it.
No replay state here: the caller remembers (jkt, jti) until ``replay_until``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from keys.jws import (
    MAX_ID_CHARS,
    TYP_DPOP,
    AccessToken,
    DpopNonceRequiredError,
    InvalidDpopError,
    b64url_encode,
    epoch_seconds,
    from_epoch,
    jti_claim,
    jwk_thumbprint,
    required_date,
    string_claim,
    verify_with_header_jwk,
)

DPOP_IAT_WINDOW = 60
MAX_HTU_CHARS = 2048
# People's proofs are small; a header jwk plus a few claims fit in well under this.
MAX_PROOF_CHARS = 8192
_DEFAULT_PORTS = {"https": 443, "http": 80}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True)
class DpopProof:
    """A checked proof; ``jkt`` is the RFC 7638 thumbprint of the signing key."""

    jkt: str
    jti: str
    htm: str
    htu: str
    issued_at: datetime
    replay_until: datetime
    nonce: str | None
    public_key: ec.EllipticCurvePublicKey = field(repr=False)


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url SHA-256 of the ASCII access token (RFC 9449 4.2)."""
    return b64url_encode(hashlib.sha256(access_token.encode("utf-8")).digest())


def _normalize_percent(match: re.Match[str]) -> str:
    octet = int(match.group(1), 16)
    return chr(octet) if octet in _UNRESERVED else f"%{octet:02X}"


def normalize_htu(url: str) -> str:
    """The URL as compared for ``htu``: no query or fragment, scheme and host lowercased,
    default port dropped, percent-encoding normalized (RFC 9449 4.3, RFC 3986 6.2.2-6.2.3).

    Raises ValueError for what is not an absolute http(s) URL without user info.
    """
    if len(url) > MAX_HTU_CHARS or any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in url):
        raise ValueError("not a URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or "@" in parts.netloc:
        raise ValueError("not an http(s) URL without user info")
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    port = parts.port  # ValueError when not a number in range
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _PERCENT.sub(_normalize_percent, parts.path) or "/"
    return f"{scheme}://{netloc}{path}"


def verify_dpop_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: datetime,
    access_token: str | None = None,
    nonce: str | None = None,
    require_nonce: bool = False,
    iat_window: float = DPOP_IAT_WINDOW,
) -> DpopProof:
    """Check one ``DPoP`` header value for the request (*method*, *url*).

    *url* is ``SEALHUB_PUBLIC_URL`` + the raw (still percent-encoded) request path; any
    query is ignored.
    With *access_token* the proof must carry its ``ath``; without one it must not.
    With *nonce* the proof must carry exactly that server nonce; with only
    *require_nonce* it must carry one, returned for the caller to check (stateless nonces).
    ``iat`` must lie within *iat_window* seconds either side of *now*.
    """
    error = InvalidDpopError
    expected_htu = normalize_htu(url)
    key, _, claims = verify_with_header_jwk(
        proof, expected_typ=TYP_DPOP, error=error, max_chars=MAX_PROOF_CHARS
    )
    jti = jti_claim(claims, error)
    htm = string_claim(claims, "htm", error=error, max_chars=16)
    if htm != method:
        raise error("htm_mismatch", "htm does not match the request method")
    htu = string_claim(claims, "htu", error=error, max_chars=MAX_HTU_CHARS)
    try:
        htu_matches = normalize_htu(htu) == expected_htu
    except ValueError:
        htu_matches = False
    if not htu_matches:
        raise error("htu_mismatch", "htu does not match the request URL")
    iat = required_date(claims, "iat", error=error)
    current = epoch_seconds(now)
    if iat > current + iat_window:
        raise error("issued_in_future", "iat is in the future")
    if iat < current - iat_window:
        raise error("too_old", "the proof is too old")
    if access_token is not None:
        ath = string_claim(claims, "ath", error=error, max_chars=64)
        if not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise error("ath_mismatch", "ath does not match the access token")
    elif "ath" in claims:
        raise error("ath_unexpected", "ath given but no access token presented")
    proof_nonce = claims.get("nonce")
    if nonce is not None or require_nonce:
        if proof_nonce is None:
            raise DpopNonceRequiredError("nonce_missing", "the server requires a DPoP nonce")
        if not isinstance(proof_nonce, str) or len(proof_nonce) > MAX_ID_CHARS:
            raise DpopNonceRequiredError("nonce_mismatch", "the DPoP nonce is malformed")
        if nonce is not None and not hmac.compare_digest(proof_nonce, nonce):
            raise DpopNonceRequiredError("nonce_mismatch", "the DPoP nonce is not current")
    elif proof_nonce is not None and not isinstance(proof_nonce, str):
        raise error("claim_invalid", "nonce must be a string")
    return DpopProof(
        jkt=jwk_thumbprint(key),
        jti=jti,
        htm=htm,
        htu=htu,
        issued_at=from_epoch(iat),
        replay_until=from_epoch(iat + iat_window),
        nonce=proof_nonce,
        public_key=key,
    )


def check_token_binding(token: AccessToken, proof: DpopProof) -> None:
    """The access token must be bound (``cnf.jkt``) to the key that signed the proof."""
    if not hmac.compare_digest(token.jkt, proof.jkt):
        raise InvalidDpopError("key_not_bound", "the proof is not signed by the token's key")
