"""Offline checks of RFC 3161 tokens (made by keys.tsa) and countersigned receipts (made
with keys.jws and a certificate from keys.pki), against the platform root only."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import tsp
from cryptography.hazmat.primitives.serialization import Encoding
from sealhub_sdk import (
    DeviceKey,
    VerificationError,
    verify_countersigned_receipt,
    verify_timestamp_token,
)
from sealhub_sdk._internal import jose

from keys import jws as server_jws
from keys import tsa
from tests.sdk.conftest import SdkPlatform


def timestamp(platform: SdkPlatform, data: bytes, *, cert_req: bool = True) -> bytes:
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(data).digest(),
            },
            "nonce": secrets.randbits(63),
            "cert_req": cert_req,
        }
    )
    reply = tsa.respond_to_request(
        platform.authority,
        request,
        serial_number=secrets.randbits(60) + 1,
        now=datetime.now(UTC),
    )
    return bytes(tsa.token_from_response(reply.dump()).dump())


def _der_b64(cert: object) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()  # type: ignore[attr-defined]


def countersign(platform: SdkPlatform, official_jws: str, *, tst: bytes | None = None) -> str:
    token_bytes = tst if tst is not None else timestamp(platform, official_jws.encode())
    claims = {
        "receipt": official_jws,
        "received_at": "2026-11-26T08:00:00Z",
        "audit_index": 17,
        "tst": base64.b64encode(token_bytes).decode(),
        "iat": int(datetime.now(UTC).timestamp()),
        "jti": secrets.token_urlsafe(8),
    }
    return server_jws.sign_jws(
        claims,
        platform.receipt_key,
        typ=server_jws.TYP_COUNTERSIGN,
        x5c=[_der_b64(platform.receipt_cert), _der_b64(platform.ca)],
    )


@pytest.fixture(scope="module")
def official() -> DeviceKey:
    return DeviceKey.generate()


def _official_receipt(key: DeviceKey, data: bytes = b"%PDF sealed") -> str:
    return jose.receipt_signature(
        key, delivery_id="dlv-9", sha256=hashlib.sha256(data).hexdigest(), action="receive"
    )


def test_timestamp_token_verifies(platform: SdkPlatform) -> None:
    token = timestamp(platform, b"note text\n")
    info = verify_timestamp_token(token, data=b"note text\n", roots=[platform.root])
    assert abs(info.gen_time - datetime.now(UTC)) < timedelta(minutes=1)
    assert info.hash_algorithm == "sha256"
    assert info.policy == tsa.TSA_POLICY_OID
    assert "Time-Stamping" in info.tsa_subject


def test_timestamp_over_other_data_fails(platform: SdkPlatform) -> None:
    token = timestamp(platform, b"note text\n")
    with pytest.raises(VerificationError) as refused:
        verify_timestamp_token(token, data=b"other text\n", roots=[platform.root])
    assert refused.value.code == "timestamp_mismatch"


def test_timestamp_from_another_root_fails(
    platform: SdkPlatform, other_platform: SdkPlatform
) -> None:
    token = timestamp(other_platform, b"x")
    with pytest.raises(VerificationError) as refused:
        verify_timestamp_token(token, data=b"x", roots=[platform.root])
    assert refused.value.code == "certificate_untrusted"


def test_tampered_timestamp_signature_fails(platform: SdkPlatform) -> None:
    token = bytearray(timestamp(platform, b"x"))
    token[-3] ^= 0x01  # inside the ECDSA signature, the last element
    with pytest.raises(VerificationError):
        verify_timestamp_token(bytes(token), data=b"x", roots=[platform.root])


def test_timestamp_without_certificates_needs_them_given(platform: SdkPlatform) -> None:
    token = timestamp(platform, b"x", cert_req=False)
    with pytest.raises(VerificationError):
        verify_timestamp_token(token, data=b"x", roots=[platform.root])
    info = verify_timestamp_token(
        token, data=b"x", roots=[platform.root], extra_certificates=[platform.authority.cert]
    )
    assert info.serial_number > 0


def test_countersigned_receipt_verifies(platform: SdkPlatform, official: DeviceKey) -> None:
    inner = _official_receipt(official)
    digest = hashlib.sha256(b"%PDF sealed").hexdigest()
    result = verify_countersigned_receipt(
        countersign(platform, inner),
        ca_pem=platform.root_pem,
        expected_delivery="dlv-9",
        expected_sha256=digest,
        official_key=official.public_key,
    )
    assert (result.delivery, result.sha256, result.action) == ("dlv-9", digest, "receive")
    assert result.audit_index == 17
    assert result.official_jws == inner
    assert "sealhub receipts" in result.countersigner


def test_receipt_for_other_bytes_or_delivery_fails(
    platform: SdkPlatform, official: DeviceKey
) -> None:
    token = countersign(platform, _official_receipt(official))
    with pytest.raises(VerificationError) as wrong_bytes:
        verify_countersigned_receipt(
            token, ca_pem=platform.root_pem, expected_sha256=hashlib.sha256(b"other").hexdigest()
        )
    assert wrong_bytes.value.code == "receipt_mismatch"
    with pytest.raises(VerificationError):
        verify_countersigned_receipt(token, ca_pem=platform.root_pem, expected_delivery="dlv-1")
    with pytest.raises(VerificationError):
        verify_countersigned_receipt(
            token, ca_pem=platform.root_pem, official_key=DeviceKey.generate().public_key
        )


def test_receipt_from_another_platform_fails(
    platform: SdkPlatform, other_platform: SdkPlatform, official: DeviceKey
) -> None:
    token = countersign(other_platform, _official_receipt(official))
    with pytest.raises(VerificationError) as refused:
        verify_countersigned_receipt(token, ca_pem=platform.root_pem)
    assert refused.value.code == "certificate_untrusted"


def test_receipt_whose_timestamp_covers_another_jws_fails(
    platform: SdkPlatform, official: DeviceKey
) -> None:
    inner = _official_receipt(official)
    token = countersign(platform, inner, tst=timestamp(platform, b"something else"))
    with pytest.raises(VerificationError) as refused:
        verify_countersigned_receipt(token, ca_pem=platform.root_pem)
    assert refused.value.code == "timestamp_mismatch"


def test_receipt_signed_by_a_key_other_than_the_x5c_leaf_fails(
    platform: SdkPlatform, official: DeviceKey
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    inner = _official_receipt(official)
    claims = {
        "receipt": inner,
        "tst": base64.b64encode(timestamp(platform, inner.encode())).decode(),
    }
    forged = server_jws.sign_jws(
        claims,
        ec.generate_private_key(ec.SECP256R1()),
        typ=server_jws.TYP_COUNTERSIGN,
        x5c=[_der_b64(platform.receipt_cert), _der_b64(platform.ca)],
    )
    with pytest.raises(VerificationError) as refused:
        verify_countersigned_receipt(forged, ca_pem=platform.root_pem)
    assert refused.value.code == "jws_bad_signature"
