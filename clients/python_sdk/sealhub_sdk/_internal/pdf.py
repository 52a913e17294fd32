"""Local verification of sealed PDFs with pyhanko (the optional ``[verify]`` extra).

Trusts only the platform root CA given; fetches nothing (no OCSP, no CRL download), so
revocation is what the gateway's remote verify reports, not checked here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sealhub_sdk._internal.errors import ConfigurationError
from sealhub_sdk._internal.models import SealCheck, VerificationReport
from sealhub_sdk._internal.receipts import load_pem_certificates


def verify_pdf_locally(file: str | os.PathLike[str], *, ca_pem: bytes | str) -> VerificationReport:
    """Check every seal of a PDF against the platform root CA, offline.

    ``valid`` means at least one seal, every seal intact and trusted, the last one covering
    the whole document, and nothing changed after a seal beyond adding further seals.
    """
    try:
        from asn1crypto import x509 as asn1_x509
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.diff_analysis import ModificationLevel
        from pyhanko.sign.validation import validate_pdf_signature
        from pyhanko.sign.validation.status import SignatureCoverageLevel
        from pyhanko_certvalidator import ValidationContext
    except ImportError:
        raise ConfigurationError(
            "local PDF verification needs the extra: pip install 'sealhub-sdk[verify]'",
            code="extra_missing",
        ) from None
    from cryptography.hazmat.primitives.serialization import Encoding

    roots = [
        asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))
        for c in load_pem_certificates(ca_pem)
    ]
    seals: list[SealCheck] = []
    changes_allowed: list[bool] = []
    with Path(file).open("rb") as handle:
        reader = PdfFileReader(handle, strict=False)
        signatures = list(reader.embedded_signatures)
        for embedded in signatures:
            context = ValidationContext(
                trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
            )
            status: Any = validate_pdf_signature(embedded, context)
            whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
            level = status.modification_level
            allowed = level is None or level in (
                ModificationLevel.NONE,
                ModificationLevel.LTA_UPDATES,
                ModificationLevel.FORM_FILLING,
            )
            changes_allowed.append(allowed)
            timestamp = status.timestamp_validity
            seals.append(
                SealCheck(
                    field=str(embedded.field_name),
                    department=None,
                    seal_id=None,
                    signer_subject=status.signing_cert.subject.human_friendly,
                    signed_at=_iso(status.signer_reported_dt),
                    timestamp=_iso(timestamp.timestamp) if timestamp is not None else None,
                    level=None,
                    intact=bool(status.intact and status.valid),
                    trusted=bool(status.trusted),
                    revoked=False,
                    covers_whole_document=whole,
                )
            )
    valid = (
        bool(seals)
        and all(s.intact and s.trusted for s in seals)
        and all(changes_allowed)
        and seals[-1].covers_whole_document
    )
    return VerificationReport(valid=valid, seals=tuple(seals))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
