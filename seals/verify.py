"""Pure verification of sealed PDFs: nothing is fetched, only given CRLs and embedded data count."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign.diff_analysis import (
    CatalogModificationRule,
    DocInfoRule,
    DSSCompareRule,
    FormUpdatingRule,
    GenericFieldModificationRule,
    MetadataUpdateRule,
    ModificationLevel,
    ObjectStreamRule,
    SigFieldCreationRule,
    SigFieldModificationRule,
    StandardDiffPolicy,
    XrefStreamRule,
)
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
)
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from seals._aio import run_sync
from seals._fastverify import Outcome, fast_outcome
from seals.errors import PdfMalformed, PdfTooComplex
from seals.pdfcheck import DEFAULT_MAX_BYTES, open_pdf
from seals.revocation import effective_revocation, invalid_since

_MODIFICATION_NAMES = {
    ModificationLevel.NONE: "none",
    ModificationLevel.LTA_UPDATES: "validation_data",
    ModificationLevel.FORM_FILLING: "form_filling_and_signing",
    ModificationLevel.ANNOTATIONS: "annotations",
    ModificationLevel.OTHER: "other",
}


# pyhanko's default policy, except that a certified document may receive new *visible*
# signature fields: our certification means "further seals allowed" (joint documents).
SEAL_DIFF_POLICY = StandardDiffPolicy(
    global_rules=[
        CatalogModificationRule(),  # type: ignore[no-untyped-call]
        DocInfoRule().as_qualified(ModificationLevel.LTA_UPDATES),
        XrefStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
        ObjectStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
        DSSCompareRule().as_qualified(ModificationLevel.LTA_UPDATES),
        MetadataUpdateRule().as_qualified(  # type: ignore[no-untyped-call]
            ModificationLevel.LTA_UPDATES
        ),
    ],
    form_rule=FormUpdatingRule(
        field_rules=[
            SigFieldCreationRule(allow_new_visible_after_certify=True),  # type: ignore[no-untyped-call]
            SigFieldModificationRule(),
            GenericFieldModificationRule(),
        ],
    ),
)


@dataclass(frozen=True)
class SealReport:
    """One signature of the document, in the field names of the /v1/verify contract."""

    field: str
    department: str | None
    seal_id: str | None
    signer_subject: str
    certificate_sha256: str
    serial: str
    signed_at: str | None
    timestamp: str | None
    level: str
    certifying: bool
    intact: bool
    trusted: bool
    revoked: bool
    revoked_at: str | None
    revoked_before_timestamp: bool
    covers_whole_document: bool
    modifications: str
    modifications_allowed: bool
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            self.intact
            and self.trusted
            and not self.revoked_before_timestamp
            and self.modifications_allowed
        )


@dataclass(frozen=True)
class VerificationReport:
    valid: bool
    seals: tuple[SealReport, ...] = field(default_factory=tuple)
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "seals": [asdict(s) for s in self.seals],
            "problems": list(self.problems),
        }


def department_from_subject(subject: asn1_x509.Name) -> str | None:
    """Seal certificates carry the department's Chinese name as the OU (keys/ issues them so)."""
    native = subject.native
    ou = native.get("organizational_unit_name")
    if isinstance(ou, list):
        ou = ou[-1] if ou else None
    if ou:
        return str(ou)
    cn = native.get("common_name")
    return str(cn) if cn else None


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _embedded_revinfo(
    reader: Any,
) -> tuple[list[asn1_x509.Certificate], list[asn1_crl.CertificateList], bool]:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return [], [], False
    certs = list(dss.load_certs())
    crls = [
        asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL))
        for ref in dss.crls
    ]
    return certs, crls, bool(crls or dss.ocsps)


def _fast_or_none(
    sig: EmbeddedPdfSignature, context: ValidationContext, trust_key: bytes
) -> Outcome | None:
    """The fast path only ever confirms; any surprise in it defers to pyhanko's full path."""
    try:
        return run_sync(fast_outcome(sig, context, trust_key, SEAL_DIFF_POLICY))
    except Exception:
        return None


def _trust_key(*groups: Sequence[Any]) -> bytes:
    """A digest of all trust material: cached trust decisions are only reused for equal input."""
    digest = hashlib.sha256()
    for group in groups:
        digest.update(b"|")
        for item in group:
            digest.update(hashlib.sha256(item.dump()).digest())
    return digest.digest()


def _context(
    roots: Sequence[asn1_x509.Certificate],
    certs: Sequence[asn1_x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    moment: dt.datetime | None = None,
) -> ValidationContext:
    return ValidationContext(
        trust_roots=list(roots),
        other_certs=list(certs),
        crls=list(crls),
        allow_fetching=False,
        revocation_mode="soft-fail",
        moment=moment,
        retroactive_revinfo=moment is not None,
    )


def verify(
    pdf_bytes: bytes | BinaryIO,
    trust_roots: Sequence[bytes],
    crls: Sequence[bytes] = (),
    *,
    known_seals: Mapping[str, str] | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> VerificationReport:
    """Check every seal of a document; ``known_seals`` maps certificate SHA-256 to seal id.

    Raises only the typed input errors (not_a_pdf, pdf_encrypted, pdf_malformed,
    payload_too_large); everything about the seals themselves is in the report.
    """
    info = open_pdf(pdf_bytes, max_bytes=max_bytes)
    reader = info.reader
    roots = [asn1_x509.Certificate.load(r) for r in trust_roots]
    given_crls = [asn1_crl.CertificateList.load(c) for c in crls]
    try:
        embedded_certs, embedded_crls, has_revinfo = _embedded_revinfo(reader)
        signatures = list(reader.embedded_regular_signatures)
    except (PdfError, ValueError, TypeError, KeyError) as exc:
        raise PdfMalformed(f"signature data is damaged: {exc}") from None
    if not signatures:
        return VerificationReport(valid=False, problems=("the document carries no seal",))

    all_crls = given_crls + embedded_crls
    trust_key = _trust_key(roots, embedded_certs, all_crls)
    context = _context(roots, embedded_certs, all_crls)
    reports = []
    for index, sig in enumerate(signatures):
        reports.append(
            _check_one(
                sig,
                context,
                (roots, embedded_certs, all_crls),
                trust_key=trust_key,
                has_revinfo=has_revinfo,
                certifying=index == 0 and sig.docmdp_level is not None,
                known_seals=known_seals or {},
            )
        )
    problems = []
    if not reports[-1].covers_whole_document:
        problems.append("the document was changed after the last seal")
    for r in reports:
        if not r.ok:
            problems.append(f"{r.field}: " + "; ".join(r.problems))
    valid = not problems
    return VerificationReport(valid=valid, seals=tuple(reports), problems=tuple(problems))


def _check_one(
    sig: EmbeddedPdfSignature,
    context: ValidationContext,
    material: tuple[
        Sequence[asn1_x509.Certificate],
        Sequence[asn1_x509.Certificate],
        Sequence[asn1_crl.CertificateList],
    ],
    *,
    trust_key: bytes,
    has_revinfo: bool,
    certifying: bool,
    known_seals: Mapping[str, str],
) -> SealReport:
    try:
        status = _fast_or_none(sig, context, trust_key)
        if status is None:
            status = Outcome.from_status(
                run_sync(
                    async_validate_pdf_signature(
                        sig,
                        signer_validation_context=context,
                        ts_validation_context=context,
                        diff_policy=SEAL_DIFF_POLICY,
                    )
                )
            )
    except (SignatureValidationError, ValueError, KeyError, TypeError) as exc:
        return _broken(sig, f"the signature cannot be evaluated: {exc}")
    except PdfError as exc:
        raise PdfMalformed(f"signature data is damaged: {exc}") from None
    except RecursionError:
        raise PdfTooComplex("the document's object graph nests too deeply") from None

    problems: list[str] = []
    cert = status.signing_cert
    ts = status.timestamp_validity
    timestamp = ts.timestamp if ts is not None and ts.intact and ts.valid else None
    revocation = status.revocation_details
    trusted = status.trusted
    revoked_before = False
    if revocation is not None:
        when = timestamp or dt.datetime.now(dt.UTC)
        # A compromised key's invalidity date (CRL entry) counts, not only the revocation date.
        revoked_from = effective_revocation(
            revocation.revocation_date, invalid_since(cert, material[2])
        )
        revoked_before = revoked_from <= when
        if not revoked_before:
            # Revoked after a trusted timestamp: the seal was good when it was applied.
            roots, certs, crls = material
            retro = run_sync(
                async_validate_pdf_signature(
                    sig,
                    signer_validation_context=_context(roots, certs, crls, moment=timestamp),
                    ts_validation_context=context,
                    skip_diff=True,
                )
            )
            trusted = retro.trusted
        else:
            problems.append("the seal certificate was revoked before the seal was applied")
    if not status.intact:
        problems.append("the sealed content was modified")
    elif not status.valid:
        problems.append("the cryptographic signature is invalid")
    elif not trusted and revocation is None:
        problems.append("the seal certificate does not chain to a trusted root")
    if ts is not None and not (ts.intact and ts.valid and ts.trusted):
        problems.append("the timestamp is not valid or not trusted")
    level_name = status.modification_level
    modifications = _MODIFICATION_NAMES.get(level_name, "unknown") if level_name else "unknown"
    allowed = bool(status.docmdp_ok) and status.coverage in (
        SignatureCoverageLevel.ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION,
    )
    if not allowed:
        problems.append(
            f"changes after the seal exceed what the certification allows ({modifications})"
        )
    level = "B-B"
    if ts is not None:
        level = "B-LT" if has_revinfo else "B-T"
    cert_sha = hashlib.sha256(cert.dump()).hexdigest()
    return SealReport(
        field=str(sig.field_name),  # a pyhanko TextStringObject does not deepcopy
        department=department_from_subject(cert.subject),
        seal_id=known_seals.get(cert_sha),
        signer_subject=cert.subject.human_friendly,
        certificate_sha256=cert_sha,
        serial=format(cert.serial_number, "x"),
        signed_at=_iso(status.signer_reported_dt),
        timestamp=_iso(timestamp),
        level=level,
        certifying=certifying,
        intact=status.intact,
        trusted=trusted,
        revoked=revocation is not None,
        revoked_at=_iso(revocation.revocation_date) if revocation is not None else None,
        revoked_before_timestamp=revoked_before,
        covers_whole_document=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        modifications=modifications,
        modifications_allowed=allowed,
        problems=tuple(problems),
    )


def _broken(sig: EmbeddedPdfSignature, problem: str) -> SealReport:
    return SealReport(
        field=str(sig.field_name),  # a pyhanko TextStringObject does not deepcopy
        department=None,
        seal_id=None,
        signer_subject="",
        certificate_sha256="",
        serial="",
        signed_at=None,
        timestamp=None,
        level="unknown",
        certifying=False,
        intact=False,
        trusted=False,
        revoked=False,
        revoked_at=None,
        revoked_before_timestamp=False,
        covers_whole_document=False,
        modifications="unknown",
        modifications_allowed=False,
        problems=(problem,),
    )
