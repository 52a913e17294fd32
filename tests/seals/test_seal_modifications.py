"""Changes between and after seals: only further seals and validation data may follow a seal.

Every member of the modification corpus is appended to a sealed document and must be
reported invalid by verify() (named in the seal's ``modifications``) and by pdfsig (whose
verdict on a later unsigned revision is that the seal is "not total document signed"), and
must stay invalid when another seal is put on top, which pdfsig cannot see.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from asn1crypto import crl as asn1_crl
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore

from seals.pades import seal_pdf
from seals.verify import VerificationReport, verify

from . import modification_corpus
from .conftest import Department, PdfsigSignature
from .seal_pki import SealTestPki

# What each change is named as in the first seal's ``modifications``.
EXPECTED_KIND = {
    "unsigned_signature_widget": "other",
    "text_widget_with_appearance": "other",
    "seal_appearance_replaced": "other",
    "annotation": "other",
    "form_value": "form_filling",
    "page_added": "other",
    "page_removed": "other",
    "contents_replaced": "other",
    "font_replaced": "other",
    "xobject_replaced": "other",
    "info_metadata": "metadata",
    "xmp_metadata": "metadata",
}
KINDS = sorted(modification_corpus.MODIFICATIONS)


def test_every_corpus_member_has_an_expectation() -> None:
    assert set(EXPECTED_KIND) == set(KINDS)


def _sealed(kind: str, department: Department) -> bytes:
    return seal_pdf(modification_corpus.base_for(kind), department.signer, department.appearance)


def _check(doc: bytes, pki: SealTestPki) -> VerificationReport:
    return verify(doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)


@pytest.mark.parametrize("kind", KINDS)
def test_change_after_the_only_seal_is_invalid(
    kind: str,
    pki: SealTestPki,
    departments: list[Department],
    pdfsig: Callable[[bytes], list[PdfsigSignature]],
) -> None:
    sealed = _sealed(kind, departments[0])
    assert _check(sealed, pki).valid
    changed = modification_corpus.MODIFICATIONS[kind](sealed)
    report = _check(changed, pki)
    assert not report.valid
    (seal,) = report.seals
    assert seal.intact and seal.trusted and seal.seal_certificate
    assert not seal.modifications_allowed
    assert seal.modifications == EXPECTED_KIND[kind], seal.modification_details
    assert seal.modification_details and seal.modification_details[0].startswith("revision 2:")
    assert "the document was changed after the last seal" in report.problems
    # pdfsig: the seal itself is fine, but it no longer covers the file.
    signed = [s for s in pdfsig(changed) if s.field == "Seal1"]
    assert len(signed) == 1
    assert signed[0].valid and signed[0].trusted
    assert not signed[0].total


@pytest.mark.parametrize("kind", KINDS)
def test_change_between_seals_is_invalid(
    kind: str, pki: SealTestPki, departments: list[Department]
) -> None:
    """The attack of issue 16: the change, then another seal that covers the whole file."""
    changed = modification_corpus.MODIFICATIONS[kind](_sealed(kind, departments[0]))
    resealed = seal_pdf(changed, departments[1].signer, departments[1].appearance)
    report = _check(resealed, pki)
    assert not report.valid
    first, second = report.seals
    assert first.intact and first.trusted
    assert not first.modifications_allowed
    assert first.modifications == EXPECTED_KIND[kind]
    assert first.modification_details[0].startswith("revision 2:")
    # The later seal is sound on its own; the document as a whole is not.
    assert second.ok and second.covers_whole_document
    assert "the document was changed after the last seal" not in report.problems


def test_unsigned_field_then_reseal_names_the_field(
    pki: SealTestPki, departments: list[Department]
) -> None:
    doc = modification_corpus.unsigned_signature_widget(_sealed("x", departments[0]))
    doc = seal_pdf(doc, departments[1].signer, departments[1].appearance)
    first = _check(doc, pki).seals[0]
    assert "only allowed after an approval signature" in first.modification_details[0]


def test_joint_seals_stay_valid(pki: SealTestPki, departments: list[Department]) -> None:
    doc = _sealed("x", departments[0])
    for department in departments[1:]:
        doc = seal_pdf(doc, department.signer, department.appearance)
    report = _check(doc, pki)
    assert report.valid, report.problems
    assert [s.modifications for s in report.seals] == ["further_seals", "further_seals", "none"]


def test_validation_data_after_the_seal_stays_valid(
    pki: SealTestPki, departments: list[Department]
) -> None:
    """A DSS-only update (what an archive adds for long-term validation) is not a change."""
    sealed = _sealed("x", departments[0])
    out = io.BytesIO(sealed)
    DocumentSecurityStore.add_dss(
        out,
        None,
        certs=[pki.seal_ca.asn1, pki.root.asn1],
        crls=[asn1_crl.CertificateList.load(c) for c in pki.crls()],
    )
    report = _check(out.getvalue(), pki)
    assert len(out.getvalue()) > len(sealed)
    assert report.valid, report.problems
    (seal,) = report.seals
    assert seal.modifications == "validation_data"
    assert not seal.covers_whole_document


def test_metadata_change_inside_a_dss_update_is_invalid(
    pki: SealTestPki, departments: list[Department]
) -> None:
    """Validation data cannot carry a retitled document along with it."""
    changed = modification_corpus.info_metadata(_sealed("x", departments[0]))
    out = io.BytesIO(changed)
    DocumentSecurityStore.add_dss(out, None, certs=[pki.seal_ca.asn1], force_write=True)
    report = _check(out.getvalue(), pki)
    assert not report.valid
    assert report.seals[0].modifications == "metadata"


def test_document_time_stamp_does_not_make_its_revision_a_seal(
    pki: SealTestPki, departments: list[Department]
) -> None:
    """Document time stamps are not validated as seals, so the field one adds is no seal:
    otherwise any key could sign a 'time stamp' revision carrying an overprinting widget."""
    sealed = _sealed("x", departments[0])
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    out = io.BytesIO()
    PdfTimeStamper(pki.timestamper()).timestamp_pdf(writer, "sha256", output=out)
    report = _check(out.getvalue(), pki)
    assert not report.valid
    (seal,) = report.seals
    assert seal.modifications == "unsigned_signature_field", seal.modification_details
