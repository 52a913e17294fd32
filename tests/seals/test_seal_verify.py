"""verify(): each kind of tampering or trust problem is reported precisely."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from keys.pki import RECEIPT_SIGNING_EKU
from seals.errors import PdfMalformed
from seals.pades import Level, SealOptions, seal_pdf
from seals.signer import InMemorySealKey, SealSigner
from seals.verify import verify

from . import seal_corpus
from .conftest import Department
from .seal_pki import Issued, SealTestPki


@pytest.fixture(scope="module")
def sealed(pki: SealTestPki, departments: list[Department]) -> bytes:
    return seal_pdf(
        seal_corpus.reportlab_pdf(),
        departments[0].signer,
        departments[0].appearance,
        SealOptions(level=Level.B_T),
        timestamper=pki.timestamper(),
    )


def test_intact_document_is_valid(sealed: bytes, pki: SealTestPki) -> None:
    report = verify(sealed, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert report.valid
    (seal,) = report.seals
    assert (seal.intact, seal.trusted, seal.revoked) == (True, True, False)
    assert seal.modifications == "none"
    assert seal.signed_at is not None and seal.timestamp is not None


def test_known_seal_ids_are_reported(sealed: bytes, pki: SealTestPki) -> None:
    first = verify(sealed, [pki.root_der()], seal_issuer=pki.seal_issuer)
    sha = first.seals[0].certificate_sha256
    report = verify(
        sealed, [pki.root_der()], known_seals={sha: "seal-42"}, seal_issuer=pki.seal_issuer
    )
    assert report.seals[0].seal_id == "seal-42"


def test_byte_changed_inside_signed_range(sealed: bytes, pki: SealTestPki) -> None:
    assert sealed.count(b"ReportLab") >= 1
    tampered = sealed.replace(b"ReportLab", b"ReportLob", 1)
    report = verify(tampered, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert not report.valid
    assert not report.seals[0].intact
    assert "the sealed content was modified" in report.seals[0].problems


def test_unknown_ca(sealed: bytes, pki: SealTestPki) -> None:
    other = SealTestPki.create("Some Other Root")
    report = verify(sealed, [other.root_der()], other.crls(), seal_issuer=pki.seal_issuer)
    assert not report.valid
    seal = report.seals[0]
    assert seal.intact and not seal.trusted
    assert "the seal certificate does not chain to a trusted root" in seal.problems


def test_truncated_sealed_file_raises_malformed(sealed: bytes, pki: SealTestPki) -> None:
    with pytest.raises(PdfMalformed):
        verify(sealed[: len(sealed) - 2000], [pki.root_der()], seal_issuer=pki.seal_issuer)


def _shadow_attack(sealed: bytes) -> bytes:
    """Replace the page content in an incremental update, as a shadow attack does."""
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    evil = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 36 Tf 72 700 Td (PAID IN FULL) Tj ET")
    )
    page["/Contents"] = evil
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_shadow_attack_is_reported(sealed: bytes, pki: SealTestPki) -> None:
    attacked = _shadow_attack(sealed)
    report = verify(attacked, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert not report.valid
    seal = report.seals[0]
    assert seal.intact and seal.trusted  # the seal itself still checks out
    assert not seal.covers_whole_document
    assert seal.modifications == "other"
    assert not seal.modifications_allowed
    assert "the document was changed after the last seal" in report.problems


def test_shadow_attack_between_joint_seals(pki: SealTestPki, departments: list[Department]) -> None:
    doc = seal_pdf(seal_corpus.reportlab_pdf(), departments[0].signer, departments[0].appearance)
    doc = _shadow_attack(doc)
    doc = seal_pdf(doc, departments[1].signer, departments[1].appearance)
    report = verify(doc, [pki.root_der()], seal_issuer=pki.seal_issuer)
    assert not report.valid
    first, second = report.seals
    assert not first.modifications_allowed
    assert second.covers_whole_document and second.modifications_allowed


def test_unsealed_document_is_not_valid(pki: SealTestPki) -> None:
    report = verify(seal_corpus.reportlab_pdf(), [pki.root_der()], seal_issuer=pki.seal_issuer)
    assert not report.valid and report.seals == ()


def _backdated_timestamper(pki: SealTestPki, when: dt.datetime) -> DummyTimeStamper:
    ts = pki.timestamper()
    return DummyTimeStamper(tsa_cert=ts.tsa_cert, tsa_key=ts.tsa_key, fixed_dt=when)


def test_revoked_before_timestamp_is_invalid(
    pki: SealTestPki, departments: list[Department]
) -> None:
    local = SealTestPki(pki.root, pki.seal_ca, pki.tsa)
    seal = local.issue_seal("市审计局")
    local.revoke(seal, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    doc = seal_pdf(
        seal_corpus.reportlab_pdf(),
        local.signer(seal),
        departments[0].appearance,
        SealOptions(level=Level.B_T),
        timestamper=local.timestamper(),
    )
    report = verify(doc, [local.root_der()], local.crls(), seal_issuer=local.seal_issuer)
    assert not report.valid
    (r,) = report.seals
    assert r.revoked and r.revoked_before_timestamp and not r.trusted
    assert "the seal certificate was revoked before the seal was applied" in r.problems


def test_revoked_after_timestamp_stays_valid(
    pki: SealTestPki, departments: list[Department]
) -> None:
    local = SealTestPki(pki.root, pki.seal_ca, pki.tsa)
    seal = local.issue_seal("市审计局")
    now = dt.datetime.now(dt.UTC)
    doc = seal_pdf(
        seal_corpus.reportlab_pdf(),
        local.signer(seal),
        departments[0].appearance,
        SealOptions(level=Level.B_T),
        timestamper=_backdated_timestamper(local, now - dt.timedelta(hours=3)),
    )
    local.revoke(seal, now - dt.timedelta(hours=1))
    report = verify(doc, [local.root_der()], local.crls(), seal_issuer=local.seal_issuer)
    (r,) = report.seals
    assert r.revoked and not r.revoked_before_timestamp
    assert r.trusted, r.problems
    assert report.valid, report.problems


def _sealed_by(cert: Issued, pki: SealTestPki, departments: list[Department]) -> bytes:
    return seal_pdf(seal_corpus.reportlab_pdf(), pki.signer(cert), departments[0].appearance)


def test_seal_ca_certificate_without_seal_policy_is_not_a_seal(
    pki: SealTestPki, departments: list[Department]
) -> None:
    look_alike = pki.issue_seal("市财政局", policy=None)
    doc = _sealed_by(look_alike, pki, departments)
    report = verify(doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert not report.valid
    (seal,) = report.seals
    assert seal.intact and seal.trusted and not seal.seal_certificate
    assert "the certificate is not a seal certificate (no seal certificate policy)" in seal.problems


def test_registered_seal_from_before_the_policy_still_counts(
    pki: SealTestPki, departments: list[Department]
) -> None:
    """Seals issued before certificates carried the policy are in the seals table."""
    legacy = pki.issue_seal("市财政局", policy=None)
    doc = _sealed_by(legacy, pki, departments)
    sha = hashlib.sha256(legacy.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    report = verify(
        doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer, known_seals={sha: "old"}
    )
    assert report.valid, report.problems
    assert report.seals[0].seal_certificate


def test_certificate_for_another_purpose_is_not_a_seal(
    pki: SealTestPki, departments: list[Department]
) -> None:
    receipt_like = pki.issue_seal("市财政局", eku=[RECEIPT_SIGNING_EKU])
    doc = _sealed_by(receipt_like, pki, departments)
    sha = hashlib.sha256(receipt_like.cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    report = verify(
        doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer, known_seals={sha: "x"}
    )
    assert not report.valid
    assert "its key is for another purpose" in "; ".join(report.seals[0].problems)


def test_certificate_from_another_ca_of_the_same_root_is_not_a_seal(
    pki: SealTestPki, departments: list[Department]
) -> None:
    # Issued by the root directly (as the TSA certificate is), with the seal policy.
    direct = SealTestPki(pki.root, pki.root, pki.tsa).issue_seal("市财政局")
    doc = seal_pdf(
        seal_corpus.reportlab_pdf(),
        SealSigner(
            InMemorySealKey(direct.key),
            direct.cert.public_bytes(serialization.Encoding.DER),
            [],
        ),
        departments[0].appearance,
    )
    report = verify(doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert not report.valid
    (seal,) = report.seals
    assert seal.trusted and not seal.seal_certificate
    assert "not issued by the seal CA" in "; ".join(seal.problems)
