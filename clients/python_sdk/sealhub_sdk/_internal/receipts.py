"""Offline checks of what the gateway vouches for: RFC 3161 tokens and countersigned receipts.

Trust comes only from the platform root CA certificate the user already holds: every
certificate chain is built to it with ``cryptography``'s X.509 verifier, at the time the
signature claims. Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import (
    VerificationError as X509VerificationError,
)

from sealhub_sdk._internal import der
from sealhub_sdk._internal.errors import VerificationError
from sealhub_sdk._internal.jose import TYP_COUNTERSIGN, TYP_RECEIPT, read_unverified, verify_jws

_SIGNED_DATA = "1.2.840.113549.1.7.2"
_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
# The claim that holds the official's own receipt JWS inside the countersignature.
OFFICIAL_JWS_CLAIMS = ("receipt", "signature")


def load_pem_certificates(pem: bytes | str) -> list[x509.Certificate]:
    """All certificates of a PEM bundle (the platform CA file, chain.pem)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise VerificationError(
            "not a PEM certificate bundle", code="certificate_invalid"
        ) from None
    return certs


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
    required_eku: x509.ObjectIdentifier | None = None,
) -> list[x509.Certificate]:
    """Build and check a chain from *leaf* to one of *roots*, valid at *at*.

    CA certificates get the Web PKI CA rules; the leaf's extensions are constrained by the
    caller (an EKU where its purpose has one) instead, since these are not TLS certificates.
    """
    if not roots:
        raise VerificationError("no trusted root given", code="certificate_untrusted")
    builder = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, list(intermediates))
    except X509VerificationError as exc:
        raise VerificationError(
            f"the certificate does not chain to the platform CA: {exc}",
            code="certificate_untrusted",
        ) from None
    if required_eku is not None:
        try:
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            raise VerificationError(
                "the certificate lacks the required key purpose", code="certificate_untrusted"
            ) from None
        if required_eku not in eku:
            raise VerificationError(
                "the certificate is not for this purpose", code="certificate_untrusted"
            )
    return verified.chain


@dataclass(frozen=True)
class TimestampInfo:
    """A checked RFC 3161 token: when, by whom, over which digest."""

    gen_time: datetime
    serial_number: int
    policy: str
    hash_algorithm: str
    message_digest: bytes
    tsa_subject: str


def _verify_with_cert(
    cert: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            raise VerificationError("unsupported TSA key type", code="timestamp_invalid")
    except InvalidSignature:
        raise VerificationError(
            "the time-stamp signature does not verify", code="timestamp_invalid"
        ) from None


def _attributes(signed_attrs: der.Tlv) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    for attribute in signed_attrs.children():
        parts = attribute.expect(der.SEQUENCE).children()
        name = der.oid(parts[0])
        members = parts[1].expect(der.SET).children()
        if name in values or len(members) != 1:
            raise VerificationError("duplicate or multi-valued attribute", code="timestamp_invalid")
        values[name] = members[0].encoded
    return values


def verify_timestamp_token(
    token: bytes,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    roots: Sequence[x509.Certificate],
    extra_certificates: Sequence[x509.Certificate] = (),
) -> TimestampInfo:
    """Check an RFC 3161 TimeStampToken (DER CMS SignedData) offline.

    Checked: the message imprint equals the hash of *data* (or *digest*), the signed
    attributes bind the TSTInfo (content type, message digest), the signature verifies with
    the signer certificate, and that certificate has the timeStamping purpose and chains to
    *roots* at ``genTime``. Not checked: ESSCertIDv2 and revocation (documented limits).
    """
    if (data is None) == (digest is None):
        raise ValueError("give exactly one of data or digest")
    content_info = der.parse(token).expect(der.SEQUENCE).children()
    if len(content_info) != 2 or der.oid(content_info[0]) != _SIGNED_DATA:
        raise VerificationError("not a CMS SignedData token", code="timestamp_invalid")
    signed_data = der.parse(content_info[1].expect(0xA0).content).expect(der.SEQUENCE).children()
    encap = signed_data[2].expect(der.SEQUENCE).children()
    if der.oid(encap[0]) != _TST_INFO or len(encap) != 2:
        raise VerificationError("the token does not hold a TSTInfo", code="timestamp_invalid")
    tst_der = der.parse(encap[1].expect(0xA0).content).expect(der.OCTET_STRING).content
    certificates: list[x509.Certificate] = list(extra_certificates)
    signer_infos: der.Tlv | None = None
    for item in signed_data[3:]:
        if item.tag == 0xA0:
            certificates.extend(x509.load_der_x509_certificate(c.encoded) for c in item.children())
        elif item.tag == der.SET:
            signer_infos = item
    if signer_infos is None or len(signer_infos.children()) != 1:
        raise VerificationError("the token must have one signer", code="timestamp_invalid")
    signer = signer_infos.children()[0].expect(der.SEQUENCE).children()
    sid = signer[1]
    digest_oid = der.oid(signer[2].expect(der.SEQUENCE).children()[0])
    signed_attrs = signer[3].expect(0xA0)
    signature = signer[5].expect(der.OCTET_STRING).content
    hash_type = _HASHES.get(digest_oid)
    if hash_type is None:
        raise VerificationError("unsupported digest algorithm", code="timestamp_invalid")

    attrs = _attributes(signed_attrs)
    if der.oid(der.parse(attrs.get(_CONTENT_TYPE, b"\x06\x00"))) != _TST_INFO:
        raise VerificationError("content-type attribute is not TSTInfo", code="timestamp_invalid")
    digest_attr = attrs.get(_MESSAGE_DIGEST)
    tst_hash = hashes.Hash(hash_type())
    tst_hash.update(tst_der)
    if digest_attr is None or not hmac.compare_digest(
        der.parse(digest_attr).expect(der.OCTET_STRING).content, tst_hash.finalize()
    ):
        raise VerificationError("message-digest attribute does not match", code="timestamp_invalid")

    signer_cert = _find_signer(sid, certificates)
    # RFC 5652 5.4: the signature covers the attributes re-tagged as a SET OF.
    _verify_with_cert(signer_cert, signature, b"\x31" + signed_attrs.encoded[1:], hash_type())

    tst = der.parse(tst_der).expect(der.SEQUENCE).children()
    policy = der.oid(tst[1])
    imprint = tst[2].expect(der.SEQUENCE).children()
    imprint_oid = der.oid(imprint[0].expect(der.SEQUENCE).children()[0])
    hashed = imprint[1].expect(der.OCTET_STRING).content
    imprint_type = _HASHES.get(imprint_oid)
    if imprint_type is None:
        raise VerificationError("unsupported imprint algorithm", code="timestamp_invalid")
    if data is not None:
        h = hashes.Hash(imprint_type())
        h.update(data)
        digest = h.finalize()
    assert digest is not None
    if not hmac.compare_digest(hashed, digest):
        raise VerificationError(
            "the time stamp is over other data (message imprint mismatch)",
            code="timestamp_mismatch",
        )
    gen_time = der.generalized_time(tst[4])
    verify_chain(
        signer_cert,
        [c for c in certificates if c != signer_cert],
        roots,
        at=gen_time,
        required_eku=ExtendedKeyUsageOID.TIME_STAMPING,
    )
    return TimestampInfo(
        gen_time=gen_time,
        serial_number=der.integer(tst[3]),
        policy=policy,
        hash_algorithm=imprint_type().name,
        message_digest=hashed,
        tsa_subject=signer_cert.subject.rfc4514_string(),
    )


def _find_signer(sid: der.Tlv, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    if sid.tag == der.SEQUENCE:  # IssuerAndSerialNumber
        issuer, serial = sid.children()
        number = der.integer(serial)
        for cert in certificates:
            if cert.serial_number == number and cert.issuer.public_bytes() == issuer.encoded:
                return cert
    elif sid.tag == 0x80:  # [0] SubjectKeyIdentifier
        for cert in certificates:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sid.content:
                return cert
    raise VerificationError(
        "the TSA certificate is not in the token; pass it as extra_certificates",
        code="timestamp_invalid",
    )


@dataclass(frozen=True)
class VerifiedReceipt:
    """A countersigned 签收/退回 receipt, checked offline against the platform CA."""

    delivery: str
    sha256: str
    action: str
    reason: str
    signed_at: datetime
    received_at: str | None
    audit_index: int | None
    official_jws: str
    countersigner: str
    timestamp: TimestampInfo


def verify_countersigned_receipt(
    token: str,
    *,
    ca_pem: bytes | str,
    expected_delivery: str | None = None,
    expected_sha256: str | None = None,
    official_key: ec.EllipticCurvePublicKey | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
) -> VerifiedReceipt:
    """Check a ``sealhub-countersign+jwt`` without the network.

    1. the ``x5c`` chain leads to the platform root in *ca_pem* (at the time of the
       timestamp), and the gateway's JWS signature verifies with the leaf certificate;
    2. ``tst`` is an RFC 3161 token over SHA-256 of the official's JWS, chaining to the same
       root;
    3. the official's JWS is a ``sealhub-receipt+jwt`` for *expected_delivery* and
       *expected_sha256* when given, and verifies with *official_key* when given (without it,
       the official's signature is vouched for by the gateway's countersignature).
    """
    roots = load_pem_certificates(ca_pem)
    header, claims, _, _ = read_unverified(token)
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise VerificationError("the countersignature has no x5c chain", code="receipt_invalid")
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
    except (binascii.Error, ValueError):
        raise VerificationError(
            "x5c holds an unreadable certificate", code="receipt_invalid"
        ) from None
    leaf_key = certs[0].public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey):
        raise VerificationError("the countersigning key is not EC", code="receipt_invalid")
    _, claims = verify_jws(token, leaf_key, expected_typ=TYP_COUNTERSIGN)

    official_jws = next(
        (claims[name] for name in OFFICIAL_JWS_CLAIMS if isinstance(claims.get(name), str)), None
    )
    if official_jws is None:
        raise VerificationError("the official's receipt JWS is missing", code="receipt_invalid")
    tst_b64 = claims.get("tst")
    if not isinstance(tst_b64, str):
        raise VerificationError("the receipt carries no time stamp", code="receipt_invalid")
    try:
        tst = base64.b64decode(tst_b64, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("tst is not base64", code="receipt_invalid") from None
    timestamp = verify_timestamp_token(
        tst,
        digest=hashlib.sha256(official_jws.encode("ascii")).digest(),
        roots=roots,
        extra_certificates=[*certs[1:], *extra_certificates],
    )
    verify_chain(certs[0], [*certs[1:], *extra_certificates], roots, at=timestamp.gen_time)

    if official_key is not None:
        _, official = verify_jws(official_jws, official_key, expected_typ=TYP_RECEIPT)
    else:
        official_header, official, _, _ = read_unverified(official_jws)
        if official_header.get("typ") != TYP_RECEIPT or official_header.get("alg") != "ES256":
            raise VerificationError("the inner JWS is not a receipt", code="receipt_invalid")
    delivery = _text(official, "delivery")
    digest = _text(official, "sha256")
    action = _text(official, "action")
    if expected_delivery is not None and delivery != expected_delivery:
        raise VerificationError("the receipt is for another delivery", code="receipt_mismatch")
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise VerificationError("the receipt is for other bytes", code="receipt_mismatch")
    iat = official.get("iat")
    audit_index = claims.get("audit_index")
    received_at = claims.get("received_at")
    return VerifiedReceipt(
        delivery=delivery,
        sha256=digest,
        action=action,
        reason=official.get("reason", "") if isinstance(official.get("reason"), str) else "",
        signed_at=datetime.fromtimestamp(iat if isinstance(iat, int | float) else 0, UTC),
        received_at=received_at if isinstance(received_at, str) else None,
        audit_index=audit_index if isinstance(audit_index, int) else None,
        official_jws=official_jws,
        countersigner=certs[0].subject.rfc4514_string(),
        timestamp=timestamp,
    )


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str):
        raise VerificationError(f"the receipt lacks {name}", code="receipt_invalid")
    return value
