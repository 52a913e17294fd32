"""keys.dpop: RFC 9449 proofs, against the RFC's own examples and hand-built attack proofs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keys import dpop, jws
from keys.jws import DpopNonceRequiredError, InvalidDpopError
from tests.plain_jose import b64, es_sign, hs256_sign, jwk_of, unsigned

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
T = int(NOW.timestamp())
PUBLIC_URL = "https://gateway.test:8443"
ME_URL = f"{PUBLIC_URL}/v1/me"
ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiJ9.e30.sig"

# RFC 9449 figures 3 and 11 (section 4.1 and 7.1): real proofs signed by the RFC authors.
RFC_TOKEN_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0"
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10"
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoi"
    "UE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-"
    "GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC_RESOURCE_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0"
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10"
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoi"
    "R0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6"
    "MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9"
    "RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
RFC_ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
RFC_ATH = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def proof(
    key: ec.EllipticCurvePrivateKey,
    *,
    header: dict[str, Any] | None = None,
    **changes: Any,
) -> str:
    claims: dict[str, Any] = {
        "jti": "proof-jti-1",
        "htm": "GET",
        "htu": ME_URL,
        "iat": T,
        "ath": dpop.access_token_hash(ACCESS_TOKEN),
    }
    claims.update(changes)
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_of(key.public_key())}
    head.update(header or {})
    return es_sign(key, head, {k: v for k, v in claims.items() if v is not None})


def check(token: str, **kwargs: Any) -> dpop.DpopProof:
    arguments: dict[str, Any] = {
        "method": "GET",
        "url": ME_URL,
        "now": NOW,
        "access_token": ACCESS_TOKEN,
    }
    arguments.update(kwargs)
    return dpop.verify_dpop_proof(token, **arguments)


def refused(excinfo: pytest.ExceptionInfo[InvalidDpopError], code: str, reason: str) -> None:
    assert (excinfo.value.code, excinfo.value.reason) == (code, reason)


# --- RFC 9449 examples --------------------------------------------------------------------


def test_rfc9449_token_request_proof() -> None:
    result = dpop.verify_dpop_proof(
        RFC_TOKEN_PROOF,
        method="POST",
        url="https://server.example.com/token",
        now=datetime.fromtimestamp(1562262616, UTC),
    )
    assert (result.jkt, result.jti, result.htm) == (RFC_JKT, "-BwC3ESc6acc2lTc", "POST")
    assert result.replay_until == datetime.fromtimestamp(1562262616 + 60, UTC)


def test_rfc9449_resource_proof_and_ath() -> None:
    assert dpop.access_token_hash(RFC_ACCESS_TOKEN) == RFC_ATH
    result = dpop.verify_dpop_proof(
        RFC_RESOURCE_PROOF,
        method="GET",
        url="https://resource.example.org/protectedresource",
        now=datetime.fromtimestamp(1562262618, UTC),
        access_token=RFC_ACCESS_TOKEN,
    )
    assert result.jkt == RFC_JKT
    with pytest.raises(InvalidDpopError) as excinfo:
        dpop.verify_dpop_proof(
            RFC_RESOURCE_PROOF,
            method="GET",
            url="https://resource.example.org/protectedresource",
            now=datetime.fromtimestamp(1562262618, UTC),
            access_token=RFC_ACCESS_TOKEN + "x",
        )
    refused(excinfo, "invalid_dpop", "ath_mismatch")


def test_ath_is_base64url_sha256_of_the_token() -> None:
    expected = b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest())
    assert dpop.access_token_hash(ACCESS_TOKEN) == expected


# --- accepted proofs ----------------------------------------------------------------------


def test_proof_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    result = check(proof(key))
    assert result.jkt == jws.jwk_thumbprint(key.public_key())
    assert (result.jti, result.issued_at) == ("proof-jti-1", NOW)
    assert result.replay_until == NOW + timedelta(seconds=dpop.DPOP_IAT_WINDOW)
    assert result.nonce is None


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        (ME_URL, f"{ME_URL}?cursor=abc"),  # the query is not part of htu
        (f"{ME_URL}?x=1#frag", ME_URL),
        ("HTTPS://GATEWAY.test:8443/v1/me", ME_URL),  # scheme and host are case-insensitive
        ("https://gateway.test:443/v1/me", "https://gateway.test/v1/me"),  # default port
        ("https://gateway.test", "https://gateway.test/"),  # empty path is "/"
        (f"{PUBLIC_URL}/v1/%7Eme", f"{PUBLIC_URL}/v1/~me"),  # unreserved percent-decoding
        (f"{PUBLIC_URL}/v1/a%2fb", f"{PUBLIC_URL}/v1/a%2Fb"),  # hex case only
    ],
)
def test_equivalent_urls_match(key: ec.EllipticCurvePrivateKey, htu: str, url: str) -> None:
    assert check(proof(key, htu=htu), url=url).htu == htu


def test_proof_at_the_edges_of_the_window(key: ec.EllipticCurvePrivateKey) -> None:
    assert check(proof(key, iat=T - 60))
    assert check(proof(key, iat=T + 60))


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "kwargs", "reason"),
    [
        ({"htm": "POST"}, {}, "htm_mismatch"),
        ({"htm": "get"}, {}, "htm_mismatch"),
        ({}, {"method": "DELETE"}, "htm_mismatch"),
        ({"htu": f"{PUBLIC_URL}/v1/officials"}, {}, "htu_mismatch"),
        ({"htu": "https://evil.test:8443/v1/me"}, {}, "htu_mismatch"),
        ({"htu": "http://gateway.test:8443/v1/me"}, {}, "htu_mismatch"),
        ({"htu": "https://gateway.test:9443/v1/me"}, {}, "htu_mismatch"),
        ({"htu": "https://gateway.test/v1/me"}, {}, "htu_mismatch"),  # 443 is not 8443
        ({"htu": f"{PUBLIC_URL}/V1/ME"}, {}, "htu_mismatch"),  # paths are case-sensitive
        ({"htu": f"{PUBLIC_URL}/v1/a/b"}, {"url": f"{PUBLIC_URL}/v1/a%2Fb"}, "htu_mismatch"),
        ({"htu": "https://user@gateway.test:8443/v1/me"}, {}, "htu_mismatch"),
        ({"htu": "/v1/me"}, {}, "htu_mismatch"),
        ({"htu": 42}, {}, "claim_invalid"),
        ({"iat": T - 61}, {}, "too_old"),
        ({"iat": T + 61}, {}, "issued_in_future"),
        ({"iat": None}, {}, "claim_missing"),
        ({"iat": "now"}, {}, "claim_invalid"),
        ({"jti": None}, {}, "claim_missing"),
        ({"jti": ""}, {}, "claim_invalid"),
        ({"jti": "j" * (jws.MAX_JTI_CHARS + 1)}, {}, "claim_invalid"),
        ({"ath": None}, {}, "claim_missing"),
        ({"ath": dpop.access_token_hash("another token")}, {}, "ath_mismatch"),
        ({}, {"access_token": None}, "ath_unexpected"),
        ({"htm": None}, {}, "claim_missing"),
    ],
)
def test_proof_refusals(
    key: ec.EllipticCurvePrivateKey, changes: dict[str, Any], kwargs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidDpopError) as excinfo:
        check(proof(key, **changes), **kwargs)
    refused(excinfo, "invalid_dpop", reason)


def test_header_jwk_with_private_d_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    d = b64(key.private_numbers().private_value.to_bytes(32, "big"))
    with pytest.raises(InvalidDpopError) as excinfo:
        check(proof(key, header={"jwk": {**jwk_of(key.public_key()), "d": d}}))
    refused(excinfo, "invalid_dpop", "private_jwk")
    assert d not in f"{excinfo.value!r} {excinfo.value}"


def test_header_jwk_of_another_curve_is_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    # Honest ES384 proof: refused for its algorithm before the key is looked at.
    with pytest.raises(InvalidDpopError) as excinfo:
        check(proof(p384, header={"alg": "ES384"}))
    refused(excinfo, "invalid_dpop", "alg_not_allowed")
    # Claims ES256 with a P-384 key: refused for the key.
    with pytest.raises(InvalidDpopError) as excinfo:
        check(proof(p384))
    refused(excinfo, "invalid_dpop", "invalid_jwk")


def test_header_jwk_of_another_key_than_the_signer(key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidDpopError) as excinfo:
        check(proof(other, header={"jwk": jwk_of(key.public_key())}))
    refused(excinfo, "invalid_dpop", "bad_signature")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"typ": "JWT"}, "typ_mismatch"),
        ({"typ": "at+jwt"}, "typ_mismatch"),
        ({"typ": None}, "typ_mismatch"),
        ({"jwk": None}, "jwk_missing"),
        ({"jku": "https://evil.test/jwks"}, "header_not_allowed"),
        ({"alg": "RS256"}, "alg_not_allowed"),
    ],
)
def test_header_refusals(
    key: ec.EllipticCurvePrivateKey, header: dict[str, Any], reason: str
) -> None:
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_of(key.public_key()), **header}
    claims = {"jti": "j", "htm": "GET", "htu": ME_URL, "iat": T}
    token = es_sign(key, {k: v for k, v in head.items() if v is not None}, claims)
    with pytest.raises(InvalidDpopError) as excinfo:
        check(token, access_token=None)
    refused(excinfo, "invalid_dpop", reason)


def test_alg_none_and_hs256_keyed_with_the_jwk_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    jwk = jwk_of(key.public_key())
    claims = {"jti": "j", "htm": "GET", "htu": ME_URL, "iat": T}
    for token in (
        unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}, claims),
        hs256_sign(str(jwk).encode(), {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}, claims),
    ):
        with pytest.raises(InvalidDpopError) as excinfo:
            check(token, access_token=None)
        refused(excinfo, "invalid_dpop", "alg_not_allowed")


def test_oversized_proof_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(InvalidDpopError) as excinfo:
        check(proof(key, padding="x" * dpop.MAX_PROOF_CHARS))
    refused(excinfo, "invalid_dpop", "too_large")


# --- server nonces ------------------------------------------------------------------------


def test_required_nonce_missing_asks_for_one(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(DpopNonceRequiredError) as excinfo:
        check(proof(key), nonce="server-nonce-1")
    refused(excinfo, "use_dpop_nonce", "nonce_missing")
    with pytest.raises(DpopNonceRequiredError) as excinfo:
        check(proof(key), require_nonce=True)
    refused(excinfo, "use_dpop_nonce", "nonce_missing")


def test_stale_nonce_asks_for_a_new_one(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(DpopNonceRequiredError) as excinfo:
        check(proof(key, nonce="server-nonce-0"), nonce="server-nonce-1")
    refused(excinfo, "use_dpop_nonce", "nonce_mismatch")


def test_nonce_accepted_and_returned(key: ec.EllipticCurvePrivateKey) -> None:
    assert check(proof(key, nonce="n-1"), nonce="n-1").nonce == "n-1"
    assert check(proof(key, nonce="n-2"), require_nonce=True).nonce == "n-2"


# --- token binding and URL normalization --------------------------------------------------


def test_token_binding(key: ec.EllipticCurvePrivateKey) -> None:
    gateway = ec.generate_private_key(ec.SECP256R1())
    common: dict[str, Any] = {
        "private_key": gateway,
        "kid": "t",
        "public_url": PUBLIC_URL,
        "subject": "o",
        "department": "d",
        "roles": [],
        "jti": "at",
        "now": NOW,
    }
    _, bound = jws.issue_access_token(jkt=jws.jwk_thumbprint(key.public_key()), **common)
    dpop.check_token_binding(bound, check(proof(key)))
    _, other = jws.issue_access_token(jkt=RFC_JKT, **common)
    with pytest.raises(InvalidDpopError) as excinfo:
        dpop.check_token_binding(other, check(proof(key)))
    refused(excinfo, "invalid_dpop", "key_not_bound")


@pytest.mark.parametrize(
    "url",
    ["ftp://gateway.test/x", "/v1/me", "https://u:p@gateway.test/", "https://gateway.test:99999/"],
)
def test_expected_url_must_be_absolute_https(url: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        dpop.normalize_htu(url)


def test_normalize_htu_ipv6_and_default_port() -> None:
    assert dpop.normalize_htu("https://[::1]:443/a?b") == "https://[::1]/a"
    assert dpop.normalize_htu("http://[::1]:8080") == "http://[::1]:8080/"
