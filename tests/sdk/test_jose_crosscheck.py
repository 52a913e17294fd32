"""Every JWS the SDK makes is accepted by the gateway's own verifiers (keys.jws, keys.dpop),
and refused by them when bent: the two implementations share no code."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sealhub_sdk import DeviceKey
from sealhub_sdk._internal import jose

from keys import dpop as server_dpop
from keys import jws as server_jws

PUBLIC = "https://gateway.example:8443"


@pytest.fixture(scope="module")
def key() -> DeviceKey:
    return DeviceKey.generate()


def now() -> datetime:
    return datetime.now(UTC)


def test_thumbprint_and_jwk_match_the_server(key: DeviceKey) -> None:
    assert key.thumbprint == server_jws.jwk_thumbprint(key.public_key)
    assert key.public_jwk == server_jws.public_jwk(key.public_key)


def test_enrollment_proof(key: DeviceKey) -> None:
    proof = jose.enrollment_proof(key, official_id="off-1", enrollment_code="c0de")
    checked = server_jws.verify_enrollment_proof(proof, official_id="off-1", now=now())
    assert checked.enrollment_code == "c0de"
    assert checked.thumbprint == key.thumbprint
    with pytest.raises(server_jws.InvalidEnrollmentProofError):
        server_jws.verify_enrollment_proof(proof, official_id="off-2", now=now())


def test_login_assertion(key: DeviceKey) -> None:
    token_url = PUBLIC + "/v1/auth/token"
    assertion = jose.login_assertion(key, official_id="off-1", token_url=token_url, nonce="n-1")
    checked = server_jws.verify_login_assertion(
        assertion, key=key.public_key, token_url=token_url, now=now(), expected_subject="off-1"
    )
    assert checked.nonce == "n-1"
    assert checked.kid == key.thumbprint
    assert (checked.expires_at - checked.issued_at).total_seconds() <= 300
    other = DeviceKey.generate()
    with pytest.raises(server_jws.InvalidAssertionError):
        server_jws.verify_login_assertion(
            assertion, key=other.public_key, token_url=token_url, now=now()
        )


def test_dpop_proof_with_token_and_nonce(key: DeviceKey) -> None:
    url = PUBLIC + "/v1/departments/yl%2Dgov"
    proof = jose.dpop_proof(key, method="GET", url=url, access_token="tok.en.x", nonce="srv")
    checked = server_dpop.verify_dpop_proof(
        proof, method="GET", url=url, now=now(), access_token="tok.en.x", nonce="srv"
    )
    assert checked.jkt == key.thumbprint
    with pytest.raises(server_jws.InvalidDpopError):
        server_dpop.verify_dpop_proof(
            proof, method="POST", url=url, now=now(), access_token="tok.en.x"
        )
    with pytest.raises(server_jws.InvalidDpopError):
        server_dpop.verify_dpop_proof(
            proof, method="GET", url=url, now=now(), access_token="another.token.x"
        )


def test_dpop_proof_without_token_is_accepted_at_the_token_endpoint(key: DeviceKey) -> None:
    url = PUBLIC + "/v1/auth/token"
    proof = jose.dpop_proof(key, method="POST", url=url)
    assert server_dpop.verify_dpop_proof(proof, method="POST", url=url, now=now()).nonce is None


def test_approval_signature(key: DeviceKey) -> None:
    draft = hashlib.sha256(b"draft").hexdigest()
    token = jose.approval_signature(
        key,
        document_id="doc-1",
        draft_sha256=draft,
        step=1,
        decision="approve",
        opinion="同意。",
    )
    checked = server_jws.verify_approval(
        token, key=key.public_key, document_id="doc-1", draft_sha256=draft, step=1, now=now()
    )
    assert checked.opinion == "同意。"
    with pytest.raises(server_jws.InvalidSignatureError):
        server_jws.verify_approval(
            token, key=key.public_key, document_id="doc-1", draft_sha256=draft, step=2, now=now()
        )


@pytest.mark.parametrize(("action", "reason"), [("receive", ""), ("reject", "附件缺失")])
def test_receipt_signature(key: DeviceKey, action: str, reason: str) -> None:
    digest = hashlib.sha256(b"pdf").hexdigest()
    token = jose.receipt_signature(
        key, delivery_id="dlv-1", sha256=digest, action=action, reason=reason
    )
    checked = server_jws.verify_receipt(
        token,
        key=key.public_key,
        delivery_id="dlv-1",
        sha256=digest,
        now=now(),
        expected_action=action,
    )
    assert (checked.action, checked.reason) == (action, reason)
    with pytest.raises(server_jws.InvalidSignatureError):
        server_jws.verify_receipt(
            token,
            key=key.public_key,
            delivery_id="dlv-1",
            sha256=hashlib.sha256(b"other").hexdigest(),
            now=now(),
        )


def test_purposes_cannot_be_swapped(key: DeviceKey) -> None:
    """A receipt JWS is not an approval, whatever its claims say (typ decides)."""
    digest = hashlib.sha256(b"pdf").hexdigest()
    receipt = jose.receipt_signature(key, delivery_id="d", sha256=digest, action="receive")
    with pytest.raises(server_jws.InvalidSignatureError) as refused:
        server_jws.verify_approval(
            receipt, key=key.public_key, document_id="d", draft_sha256=digest, step=1, now=now()
        )
    assert refused.value.reason == "typ_mismatch"


def test_sdk_verifier_accepts_server_tokens_and_refuses_tampering(key: DeviceKey) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    gateway_key = ec.generate_private_key(ec.SECP256R1())
    token = server_jws.sign_jws(
        {"received_at": "2026-01-01T00:00:00Z"}, gateway_key, typ=jose.TYP_COUNTERSIGN
    )
    _, claims = jose.verify_jws(token, gateway_key.public_key(), expected_typ=jose.TYP_COUNTERSIGN)
    assert claims["received_at"] == "2026-01-01T00:00:00Z"
    header, payload, signature = token.split(".")
    forged = f"{header}.{jose.b64url_decode(payload, 'p') and payload[:-2]}AA.{signature}"
    from sealhub_sdk import VerificationError

    with pytest.raises(VerificationError):
        jose.verify_jws(forged, gateway_key.public_key(), expected_typ=jose.TYP_COUNTERSIGN)
    with pytest.raises(VerificationError):
        jose.verify_jws(token, key.public_key, expected_typ=jose.TYP_COUNTERSIGN)
    with pytest.raises(VerificationError):
        jose.verify_jws(token, gateway_key.public_key(), expected_typ=jose.TYP_RECEIPT)
