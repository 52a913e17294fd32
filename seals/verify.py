"""Pure verification of sealed PDFs: nothing is fetched, only given CRLs and embedded data count.

A seal certifies what it signed; afterwards only two kinds of revision may follow it: a further
seal (a signature field created and signed in the same revision) and validation data (DSS).
pyhanko's default difference policy judges each seal's later revisions as a whole; on top of
it every revision after the first seal is classified on its own, so an unsigned field, a form
value, an annotation or a metadata change in between is named even when a later seal covers it.
Only certificates issued by the seal CA under the seal certificate policy count as seals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.pdf_utils import generic
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
    SuspiciousModification,
    XrefStreamRule,
)
from pyhanko.sign.diff_analysis.form_rules_api import FieldComparisonContext, FormUpdate
from pyhanko.sign.fields import MDPPerm, enumerate_sig_fields
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
    ModificationLevel.FORM_FILLING: "further_seals",
    ModificationLevel.ANNOTATIONS: "annotations",
    ModificationLevel.OTHER: "other",
}

# Key purposes under which a certificate may sign documents: a certificate with an extended
# key usage lacking all of these (receipts, time stamps, TLS) is never a seal.
_DOCUMENT_SIGNING_PURPOSES = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}


@dataclass(frozen=True)
class SealIssuer:
    """What makes a certificate a seal: issued directly by one of these CAs (DER) and
    carrying the seal certificate policy. Trust in the root alone is not enough, because
    the same root also certifies the TSA and the gateway's receipt key."""

    ca_certs: tuple[bytes, ...] = field(repr=False)
    policy_oid: str


class _SealFieldCreationRule(SigFieldCreationRule):
    """pyhanko's rule, except that after a certification a new *visible* signature field
    passes when its signature value was written in the revision that created the field:
    a further seal. An unsigned field, whose appearance can paint over the sealed body,
    stays refused as pyhanko refuses it."""

    def apply(
        self, context: FieldComparisonContext
    ) -> Iterator[tuple[ModificationLevel, FormUpdate]]:
        for level, update in super().apply(context):
            if not update.valid_when_certifying and _signed_where_created(
                context, update.updated_ref
            ):
                update = dataclasses.replace(update, valid_when_certifying=True)
            yield level, update


def _signed_where_created(context: FieldComparisonContext, ref: generic.Reference) -> bool:
    try:
        sig_field = context.new(ref)
        value = sig_field.raw_get("/V") if isinstance(sig_field, generic.DictionaryObject) else None
        if not isinstance(value, generic.IndirectObject):
            return False
        xrefs = context.new.reader.xrefs
        created = xrefs.get_introducing_revision(ref)
        return bool(created == xrefs.get_introducing_revision(value.reference))
    except (KeyError, PdfError):
        return False


# pyhanko's default policy with the one rule above in place of its SigFieldCreationRule.
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
            _SealFieldCreationRule(),  # type: ignore[no-untyped-call]
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
    seal_certificate: bool = False
    modification_details: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            self.intact
            and self.trusted
            and self.seal_certificate
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
    seal_issuer: SealIssuer,
    known_seals: Mapping[str, str] | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> VerificationReport:
    """Check every seal of a document.

    ``known_seals`` maps certificate SHA-256 to seal id: the seals the platform registered.
    A registered certificate counts as a seal even without the seal policy (seals issued
    before certificates carried it); an unregistered one needs the policy.

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

    findings = _revision_findings(reader, signatures)
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
                seal_issuer=seal_issuer,
                later=[f for f in findings if f.revision > sig.signed_revision],
            )
        )
    problems = []
    last_revision = max(sig.signed_revision for sig in signatures)
    if any(f.revision > last_revision for f in findings):
        problems.append("the document was changed after the last seal")
    for r in reports:
        if not r.ok:
            problems.append(f"{r.field}: " + "; ".join(r.problems))
    valid = not problems
    return VerificationReport(valid=valid, seals=tuple(reports), problems=tuple(problems))


@dataclass(frozen=True)
class _Finding:
    """A revision after a seal that is neither a further seal nor validation data."""

    revision: int
    kind: str
    detail: str

    def describe(self) -> str:
        return f"revision {self.revision}: {self.detail}"


def _revision_findings(
    reader: Any,
    signatures: Sequence[EmbeddedPdfSignature],
) -> list[_Finding]:
    """Classify each revision after the first seal against the one before it.

    Consecutive pairs, so a change is named in the revision that made it even if a later
    seal signs over it (pyhanko's per-seal review only sees the sum of later revisions).
    Only regular signatures make a revision a seal revision, because only they are validated
    as seals here; a document time stamp (never checked) must not excuse what its revision
    adds."""
    first = min(sig.signed_revision for sig in signatures)
    signed_in: dict[int, set[str]] = {}
    for sig in signatures:
        signed_in.setdefault(sig.signed_revision, set()).add(sig.field_name)
    certification = signatures[0].docmdp_level
    findings = []
    for revision in range(first + 1, reader.xrefs.total_revisions):
        finding = _classify(reader, revision, signed_in.get(revision, set()), certification)
        if finding is not None:
            findings.append(finding)
    return findings


def _classify(
    reader: Any, revision: int, sealed_fields: set[str], certification: MDPPerm | None
) -> _Finding | None:
    try:
        return _classify_revision(reader, revision, sealed_fields, certification)
    except SuspiciousModification as exc:
        return _Finding(revision, "other", _first_line(str(exc)))
    except RecursionError:
        raise PdfTooComplex("the document's object graph nests too deeply") from None
    except (PdfError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return _Finding(revision, "other", f"the revision cannot be analysed: {exc}")


def _classify_revision(
    reader: Any, revision: int, sealed_fields: set[str], certification: MDPPerm | None
) -> _Finding | None:
    old = reader.get_historical_resolver(revision - 1)
    new = reader.get_historical_resolver(revision)
    diff = SEAL_DIFF_POLICY.apply(old, new, doc_mdp=certification)
    if diff.modification_level > ModificationLevel.FORM_FILLING:
        name = _MODIFICATION_NAMES.get(diff.modification_level, "other")
        return _Finding(revision, name, f"changes at level {name}")
    old_fields = {name for name, _, _ in enumerate_sig_fields(old)}
    new_fields = {name for name, _, _ in enumerate_sig_fields(new)}
    unsigned = (new_fields - old_fields) - sealed_fields
    if unsigned:
        return _Finding(
            revision,
            "unsigned_signature_field",
            f"adds signature fields that are not seals signed in this revision: {sorted(unsigned)}",
        )
    filled = set(diff.changed_form_fields) - sealed_fields
    if filled:
        return _Finding(revision, "form_filling", f"changes form fields {sorted(filled)}")
    if not sealed_fields:
        if diff.modification_level > ModificationLevel.LTA_UPDATES:
            return _Finding(revision, "other", "changes beyond validation data")
        metadata = _metadata_changed(reader, old, new, revision)
        if metadata:
            return _Finding(revision, "metadata", f"changes the document {metadata}")
    return None


# pyhanko's writer stamps these into the information dictionary and the XMP packet on every
# incremental update, also one that only adds validation data; they say when, not what.
_WRITER_INFO_KEYS = {"/ModDate", "/Producer"}
_WRITER_XMP_ENTRIES = re.compile(
    rb"<([\w.-]+:)?(ModifyDate|MetadataDate|Producer)\b[^>]*>.*?</([\w.-]+:)?\2>"
    rb"|([\w.-]+:)?(ModifyDate|MetadataDate|Producer)=\"[^\"]*\"",
    re.S,
)


def _metadata_changed(reader: Any, old: Any, new: Any, revision: int) -> str | None:
    """Info dictionary or XMP packet changed outside a seal beyond the writer's time stamp
    and producer (pyhanko allows any such change as an 'LTA update'; validation data
    needs none)."""
    written = reader.xrefs.explicit_refs_in_revision(revision)
    for what, key, container, entries in (
        ("information dictionary", "/Info", "trailer_view", _info_entries),
        ("XMP metadata", "/Metadata", "root", _xmp_entries),
    ):
        old_ref = _ref_in(getattr(old, container), key)
        new_ref = _ref_in(getattr(new, container), key)
        touched = old_ref != new_ref or (new_ref is not None and new_ref in written)
        if touched and entries(old, old_ref) != entries(new, new_ref):
            return what
    return None


def _historical(resolver: Any, ref: generic.Reference | None) -> generic.PdfObject | None:
    """The object as it was in the resolver's revision (a plain lookup gives the newest)."""
    if ref is None or ref.idnum < 0:
        return None
    obj: generic.PdfObject = resolver(ref)
    return obj


def _info_entries(resolver: Any, ref: generic.Reference | None) -> object:
    info = _historical(resolver, ref)
    if not isinstance(info, generic.DictionaryObject):
        return repr(info) if ref is not None else None
    return {k: repr(v) for k, v in info.items() if k not in _WRITER_INFO_KEYS}


def _xmp_entries(resolver: Any, ref: generic.Reference | None) -> object:
    packet = _historical(resolver, ref)
    if not isinstance(packet, generic.StreamObject):
        return repr(packet) if ref is not None else None
    return _WRITER_XMP_ENTRIES.sub(b"", packet.data)


def _ref_in(container: generic.DictionaryObject, key: str) -> generic.Reference | None:
    """The reference stored under *key*; a direct object counts as a reference of its own."""
    if key not in container:
        return None
    value = container.raw_get(key)
    if isinstance(value, generic.IndirectObject):
        return value.reference
    return generic.Reference(-1, 0)  # direct: compared by content, never by identity


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unexplained change"
    return line[:300]


@functools.lru_cache(maxsize=256)
def _issued_by(cert_der: bytes, ca_der: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(cert_der).verify_directly_issued_by(
            x509.load_der_x509_certificate(ca_der)
        )
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _not_a_seal(cert_der: bytes, issuer: SealIssuer, registered: bool) -> str | None:
    """Why a trusted certificate is still not a seal certificate, or None."""
    if not any(_issued_by(cert_der, ca) for ca in issuer.ca_certs):
        return "the certificate is not a seal certificate (not issued by the seal CA)"
    cert = x509.load_der_x509_certificate(cert_der)
    try:
        purposes = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        purposes = None
    if purposes is not None and not purposes & _DOCUMENT_SIGNING_PURPOSES:
        return "the certificate is not a seal certificate (its key is for another purpose)"
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        oids = {p.policy_identifier.dotted_string for p in policies}
    except x509.ExtensionNotFound:
        oids = set()
    if issuer.policy_oid not in oids and not registered:
        return "the certificate is not a seal certificate (no seal certificate policy)"
    return None


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
    seal_issuer: SealIssuer,
    later: Sequence[_Finding],
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
    allowed = (
        bool(status.docmdp_ok)
        and level_name is not None
        and level_name <= ModificationLevel.FORM_FILLING
        and status.coverage
        in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION)
    )
    if later:
        allowed = False
        modifications = later[0].kind
    if not allowed:
        problems.append(
            "the document was changed after the seal by more than further seals and"
            f" validation data ({modifications})"
        )
    cert_der = cert.dump()
    cert_sha = hashlib.sha256(cert_der).hexdigest()
    not_a_seal = _not_a_seal(cert_der, seal_issuer, cert_sha in known_seals)
    if not_a_seal is not None:
        problems.append(not_a_seal)
    level = "B-B"
    if ts is not None:
        level = "B-LT" if has_revinfo else "B-T"
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
        seal_certificate=not_a_seal is None,
        modification_details=tuple(f.describe() for f in later),
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
