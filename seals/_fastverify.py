"""The common case of seal verification without pyhanko's general CMS machinery.

For a PAdES seal with exactly the attributes our sealing writes, the checks are few: the
byte-range digest equals the signed message digest, the signing-certificate-v2 hash names
the signer's certificate, the ECDSA signature over the signed attributes verifies, and the
certificate has a trusted path with the nonRepudiation usage. The path (pyhanko's
certvalidator, with the caller's roots and CRLs) is remembered for a minute per certificate
and trust material, because every document of one seal repeats it.

Anything else, and any check that fails, returns None: the caller then runs pyhanko's full
validate_pdf_signature, so problems are always reported by pyhanko, never guessed here.
Integrity (coverage, difference analysis, DocMDP) and timestamps are pyhanko's in both paths.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.diff_analysis import DiffPolicy, ModificationLevel
from pyhanko.sign.validation import generic_cms
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import (
    ModificationInfo,
    PdfSignatureStatus,
    RevocationDetails,
    SignatureCoverageLevel,
    TimestampSignatureStatus,
)
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.path import ValidationPath

_EXPECTED_ATTRS = {
    "content_type",
    "message_digest",
    "signing_certificate_v2",
    "cms_algorithm_protection",
}
_PATH_TTL_SECONDS = 60.0
_PATH_CACHE_SIZE = 256
_paths: dict[bytes, tuple[float, ValidationPath]] = {}
_paths_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """The parts of a PdfSignatureStatus the report needs, from either path."""

    signing_cert: asn1_x509.Certificate
    intact: bool
    valid: bool
    trusted: bool
    revocation_details: RevocationDetails | None
    timestamp_validity: TimestampSignatureStatus | None
    signer_reported_dt: datetime | None
    coverage: SignatureCoverageLevel | None
    modification_level: ModificationLevel | None
    docmdp_ok: bool | None

    @classmethod
    def from_status(cls, status: PdfSignatureStatus) -> Outcome:
        return cls(
            signing_cert=status.signing_cert,
            intact=status.intact,
            valid=status.valid,
            trusted=status.trusted,
            revocation_details=status.revocation_details,
            timestamp_validity=status.timestamp_validity,
            signer_reported_dt=status.signer_reported_dt,
            coverage=status.coverage,
            modification_level=status.modification_level,
            docmdp_ok=status.docmdp_ok,
        )


def _signed_attrs_ok(sig: EmbeddedPdfSignature, cert_der: bytes) -> bool:
    signer_info = sig.signer_info
    if signer_info["digest_algorithm"]["algorithm"].native != "sha256":
        return False
    if signer_info["signature_algorithm"]["algorithm"].native != "sha256_ecdsa":
        return False
    attrs: dict[str, Any] = {}
    for attr in signer_info["signed_attrs"]:
        name = attr["type"].native
        if name in attrs or len(attr["values"]) != 1:
            return False
        attrs[name] = attr["values"][0]
    if set(attrs) - _EXPECTED_ATTRS or "signing_certificate_v2" not in attrs:
        return False
    if attrs.get("content_type") is None or attrs["content_type"].native != "data":
        return False
    if attrs.get("message_digest") is None:
        return False
    if attrs["message_digest"].native != sig.compute_digest():
        return False
    first = attrs["signing_certificate_v2"]["certs"][0]
    if first["hash_algorithm"]["algorithm"].native != "sha256":
        return False
    if first["cert_hash"].native != hashlib.sha256(cert_der).digest():
        return False
    protection = attrs.get("cms_algorithm_protection")
    if protection is None:
        return True
    return bool(
        protection["digest_algorithm"]["algorithm"].native == "sha256"
        and protection["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    )


@functools.lru_cache(maxsize=256)
def _public_key(cert_der: bytes) -> ec.EllipticCurvePublicKey | None:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def _raw_parts(sig: EmbeddedPdfSignature, serial: int) -> tuple[bytes, bytes] | None:
    """The signed attributes and the signer certificate exactly as encoded in the file.

    A fresh parse, because asn1crypto re-encodes objects pyhanko has already inspected.
    """
    signed_data = cms.ContentInfo.load(sig.pkcs7_content)["content"]
    attrs_der = signed_data["signer_infos"][0]["signed_attrs"].dump()
    matches = [
        choice.chosen.dump()
        for choice in signed_data["certificates"]
        if choice.name == "certificate"
        and choice.chosen["tbs_certificate"]["serial_number"].native == serial
    ]
    # Two certificates with the signer's serial: leave the ambiguity to pyhanko.
    return (attrs_der, matches[0]) if len(matches) == 1 else None


def _signature_ok(sig: EmbeddedPdfSignature, attrs_der: bytes, cert_der: bytes) -> bool:
    key = _public_key(cert_der)
    if key is None:
        return False
    # The signature covers the attributes DER-encoded as a SET, not with their [0] tag.
    signed = b"\x31" + attrs_der[1:]
    try:
        key.verify(sig.signer_info["signature"].native, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


async def _trusted_path(
    sig: EmbeddedPdfSignature,
    cert: asn1_x509.Certificate,
    cert_der: bytes,
    context: ValidationContext,
    trust_key: bytes,
) -> ValidationPath | None:
    # Keyed by the exact certificate bytes: a forged certificate reusing a genuine
    # issuer and serial must never inherit the genuine one's trust.
    key = hashlib.sha256(trust_key + cert_der).digest()
    now = time.monotonic()
    with _paths_lock:
        hit = _paths.get(key)
    if hit is not None and now - hit[0] < _PATH_TTL_SECONDS:
        return hit[1]
    usage = PdfSignatureStatus.default_usage_constraints()
    validator = CertificateValidator(
        cert, intermediate_certs=sig.other_embedded_certs, validation_context=context
    )
    try:
        path = await validator.async_validate_path()
        usage.validate(cert)
    except Exception:  # any doubt goes to pyhanko's full path, which reports it
        return None
    with _paths_lock:
        if len(_paths) >= _PATH_CACHE_SIZE:
            _paths.pop(min(_paths, key=lambda k: _paths[k][0]))
        _paths[key] = (now, path)
    return path


async def fast_outcome(
    sig: EmbeddedPdfSignature,
    context: ValidationContext,
    trust_key: bytes,
    diff_policy: DiffPolicy,
) -> Outcome | None:
    sig_object = sig.sig_object
    if sig.sig_object_type != "/Sig" or sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        return None
    if len(sig.signed_data["signer_infos"]) != 1:
        return None
    raw = _raw_parts(sig, sig.signer_cert.serial_number)
    if raw is None:
        return None
    attrs_der, cert_der = raw
    # Every check below uses this one encoding of the signer's certificate.
    cert = asn1_x509.Certificate.load(cert_der)
    if not _signed_attrs_ok(sig, cert_der) or not _signature_ok(sig, attrs_der, cert_der):
        return None
    if await _trusted_path(sig, cert, cert_der, context, trust_key) is None:
        return None
    sig.compute_integrity_info(diff_policy=diff_policy)  # type: ignore[no-untyped-call]
    integrity = sig.summarise_integrity_info()
    timing = await generic_cms.collect_timing_info(
        sig.signer_info, context, raw_digest=sig.compute_digest
    )
    modification = ModificationInfo(
        coverage=integrity.get("coverage"),
        diff_result=integrity.get("diff_result"),
        docmdp_ok=integrity.get("docmdp_ok"),
    )
    reported = timing.get("signer_reported_dt") or sig.self_reported_timestamp
    return Outcome(
        signing_cert=cert,
        intact=True,
        valid=True,
        trusted=True,
        revocation_details=None,
        timestamp_validity=timing.get("timestamp_validity"),
        signer_reported_dt=reported,
        coverage=integrity.get("coverage"),
        modification_level=modification.modification_level,
        docmdp_ok=integrity.get("docmdp_ok"),
    )
