"""签收 and 退回: the official's signed receipt, countersigned by the gateway.

The countersignature (``sealhub-countersign+jwt``) carries the official's JWS, the time
the gateway received it, the index of its audit entry and an RFC 3161 token over
SHA-256 of the official's JWS, with ``x5c`` up to the platform root: anyone can check it
offline with a JOSE library and ``openssl ts -verify``.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys import keystore as keystore_module
from keys import pki
from keys.codes import Code, CodedError
from keys.files import atomic_write
from keys.jws import TYP_COUNTERSIGN, sign_jws
from keys.platform import PlatformPki

RECEIPT_CERT_NAME = "sealhub receipt countersignature"


class AuditIndexPending(CodedError):
    """The sequencer has not given the receipt's event an index yet (retry shortly)."""

    code = Code.AUDIT_PENDING
    default_detail = "the receipt is recorded; its audit index is not ready yet, retry"


@dataclass(frozen=True)
class ReceiptSigner:
    kid: str
    key: ec.EllipticCurvePrivateKey
    x5c: tuple[str, ...]


def receipt_signer(platform: PlatformPki, now: datetime) -> ReceiptSigner:
    """The active receipt key and its certificate from the seal CA (issued on first use).

    A certificate from before receipt certificates carried their own key purpose is
    replaced by one that does (same key; receipts already issued keep their x5c).
    """
    store = platform.keystore
    kid = store.ensure(keystore_module.RECEIPT, "ES256")
    key = store.get_private(keystore_module.RECEIPT, kid)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    path = platform.pki_dir / f"receipt-{kid}.pem"
    certificate = x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None
    if certificate is None or not pki.has_purpose(certificate, pki.RECEIPT_SIGNING_EKU):
        certificate = pki.issue_gateway_signing_certificate(
            platform.seal_ca.key,
            platform.seal_ca.cert,
            key.public_key(),
            common_name=RECEIPT_CERT_NAME,
            crl_url=platform.crl_url(pki.SEAL_CA_NAME),
            now=now,
        )
        atomic_write(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    chain = (certificate, platform.seal_ca.cert)
    x5c = tuple(
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in chain
    )
    return ReceiptSigner(kid, key, x5c)


class Countersigner:
    """Makes the gateway's countersignature of an official's receipt (keys and TSA of the
    platform PKI; the serial and the audit index come from the caller's database work)."""

    def __init__(self, platform: PlatformPki) -> None:
        self._platform = platform

    def countersign(
        self,
        *,
        receipt_jws: str,
        delivery_id: uuid.UUID,
        action: str,
        received_at: datetime,
        audit_index: int,
        tsa_serial: int,
        now: datetime,
    ) -> str:
        signer = receipt_signer(self._platform, now)
        token = self._platform.timestamper.token(
            receipt_jws.encode("ascii"), serial_number=tsa_serial, now=now
        )
        claims = {
            "receipt": receipt_jws,
            "delivery": str(delivery_id),
            "action": action,
            "received_at": received_at.isoformat().replace("+00:00", "Z"),
            "audit_index": audit_index,
            "tst": base64.b64encode(token).decode("ascii"),
            "iat": int(now.timestamp()),
            "jti": secrets.token_urlsafe(16),
        }
        return sign_jws(claims, signer.key, typ=TYP_COUNTERSIGN, kid=signer.kid, x5c=signer.x5c)
