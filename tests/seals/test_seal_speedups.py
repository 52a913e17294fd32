"""The speed-ups change nothing observable: same CMS structure, same parse results."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import filters as filters_module
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfStreamError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

import seals.pades
import seals.verify
from seals import _speedups
from seals._aio import run_sync
from seals._fastverify import fast_outcome
from seals.pades import Level, SealOptions, seal_pdf
from seals.verify import SEAL_DIFF_POLICY, _context, verify

from . import seal_corpus
from .conftest import Department
from .seal_pki import SealTestPki


def test_fast_cms_matches_pyhanko(departments: list[Department]) -> None:
    signer = departments[0].signer
    digest = hashlib.sha256(b"document").digest()
    fast = asyncio.run(signer.async_sign(digest, "sha256", use_pades=True))
    slow = asyncio.run(Signer.async_sign(signer, digest, "sha256", use_pades=True))
    fast_sd, slow_sd = fast["content"], slow["content"]
    for part in ("version", "digest_algorithms", "encap_content_info", "certificates"):
        assert fast_sd[part].dump() == slow_sd[part].dump(), part
    fast_si, slow_si = fast_sd["signer_infos"][0], slow_sd["signer_infos"][0]
    for part in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        assert fast_si[part].dump() == slow_si[part].dump(), part
    # The signature itself is randomised (ECDSA) but must verify over the same attributes.
    assert cms.ContentInfo.load(fast.dump())["content"]["signer_infos"][0]["signature"].native


def test_fast_cms_with_timestamp_matches_pyhanko(
    pki: SealTestPki, departments: list[Department]
) -> None:
    signer = departments[0].signer
    digest = hashlib.sha256(b"document").digest()
    ts = pki.timestamper()
    fast = asyncio.run(signer.async_sign(digest, "sha256", use_pades=True, timestamper=ts))
    slow = asyncio.run(Signer.async_sign(signer, digest, "sha256", use_pades=True, timestamper=ts))
    fast_un = fast["content"]["signer_infos"][0]["unsigned_attrs"]
    slow_un = slow["content"]["signer_infos"][0]["unsigned_attrs"]
    assert [a["type"].native for a in fast_un] == [a["type"].native for a in slow_un]


@pytest.mark.parametrize(
    "raw",
    [
        b"<48656C6C6F>",
        b"<48 65\n6C\t6C 6F>",
        b"<4865 6C6C6>",
        b"<>",
        b"<  >",
        b"<48656C6C6F> trailing",
        b"<48%comment\n65>",
    ],
)
def test_hex_reader_matches_pyhanko(raw: bytes) -> None:
    fast_stream, slow_stream = io.BytesIO(raw), io.BytesIO(raw)
    fast = _speedups._fast_read_hex_string(fast_stream)
    slow = _speedups.original_reader()(slow_stream)
    assert fast == slow
    assert type(fast) is type(slow)
    assert fast_stream.tell() == slow_stream.tell()


@pytest.mark.parametrize("raw", [b"<48656Z>", b"<4865", b"<"])
def test_hex_reader_errors_match_pyhanko(raw: bytes) -> None:
    with pytest.raises(PdfStreamError):
        _speedups.original_reader()(io.BytesIO(raw))
    with pytest.raises(PdfStreamError):
        _speedups._fast_read_hex_string(io.BytesIO(raw))


def test_hex_reader_is_installed() -> None:
    assert generic.read_hex_string_from_stream is _speedups._fast_read_hex_string


def _predicted(rng: random.Random, columns: int, rows: int, filters: tuple[int, ...]) -> bytes:
    return b"".join(bytes([rng.choice(filters)]) + rng.randbytes(columns) for _ in range(rows))


@pytest.mark.parametrize("columns", [1, 2, 3, 7, 64, 1000])
def test_png_predictor_matches_pyhanko(columns: int) -> None:
    rng = random.Random(columns)
    for filters in ((0,), (1,), (2,), (0, 1, 2)):
        data = _predicted(rng, columns, 50, filters)
        fast = _speedups._fast_png_decode(memoryview(data), columns)
        assert fast == _speedups._original_png_decode(memoryview(data), columns)
    assert filters_module._png_decode is _speedups._fast_png_decode


@pytest.mark.parametrize(
    ("data", "columns", "error"),
    [
        (b"\x03abc", 3, NotImplementedError),  # Average: pyhanko does not support it
        (b"\x02ab", 3, AssertionError),  # not a whole number of rows
    ],
)
def test_png_predictor_errors_match_pyhanko(
    data: bytes, columns: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        _speedups._original_png_decode(memoryview(data), columns)
    with pytest.raises(error):
        _speedups._fast_png_decode(memoryview(data), columns)


def test_overflowing_reservation_falls_back_to_a_valid_seal(
    monkeypatch: pytest.MonkeyPatch, pki: SealTestPki, departments: list[Department]
) -> None:
    monkeypatch.setattr(seals.pades, "_CMS_OVERHEAD", 16)
    monkeypatch.setattr(seals.pades, "_TST_ALLOWANCE", 0)
    dep = departments[0]
    doc = seal_pdf(
        seal_corpus.reportlab_pdf(),
        dep.signer,
        dep.appearance,
        SealOptions(level=Level.B_T),
        timestamper=pki.timestamper(),
    )
    report = verify(doc, [pki.root_der()], seal_issuer=pki.seal_issuer)
    assert report.valid, report.problems


def _first_sig(doc: bytes) -> EmbeddedPdfSignature:
    sig: EmbeddedPdfSignature = PdfFileReader(io.BytesIO(doc)).embedded_regular_signatures[0]
    return sig


@pytest.mark.parametrize("level", [Level.B_B, Level.B_T])
def test_fast_verification_path_is_taken_for_our_seals(
    level: Level, pki: SealTestPki, departments: list[Department]
) -> None:
    dep = departments[0]
    doc = seal_pdf(
        seal_corpus.reportlab_pdf(),
        dep.signer,
        dep.appearance,
        SealOptions(level=level),
        timestamper=pki.timestamper(),
    )
    context = _context([asn1_x509.Certificate.load(pki.root_der())], [], [])
    outcome = run_sync(fast_outcome(_first_sig(doc), context, b"trust", SEAL_DIFF_POLICY))
    assert outcome is not None and outcome.trusted and outcome.intact
    assert (outcome.timestamp_validity is not None) == (level is Level.B_T)


def test_fast_verification_path_declines_doubt(
    pki: SealTestPki, departments: list[Department]
) -> None:
    dep = departments[0]
    doc = seal_pdf(seal_corpus.reportlab_pdf(), dep.signer, dep.appearance)
    tampered = doc.replace(b"ReportLab", b"ReportLob", 1)
    good_context = _context([asn1_x509.Certificate.load(pki.root_der())], [], [])
    other_root = SealTestPki.create("Other Root").root_der()
    other_context = _context([asn1_x509.Certificate.load(other_root)], [], [])
    assert (
        run_sync(fast_outcome(_first_sig(tampered), good_context, b"a", SEAL_DIFF_POLICY)) is None
    )
    assert run_sync(fast_outcome(_first_sig(doc), other_context, b"b", SEAL_DIFF_POLICY)) is None


async def _never(*_: object) -> None:
    return None


def test_fast_and_full_verification_report_the_same(
    monkeypatch: pytest.MonkeyPatch, pki: SealTestPki, departments: list[Department]
) -> None:
    doc = seal_corpus.reportlab_pdf()
    for dep in departments:
        doc = seal_pdf(
            doc,
            dep.signer,
            dep.appearance,
            SealOptions(level=Level.B_LT, trust_roots=(pki.root_der(),), crls=tuple(pki.crls())),
            timestamper=pki.timestamper(),
        )
    attacked = seal_corpus_shadow(doc)
    fast = [
        verify(d, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
        for d in (doc, attacked)
    ]
    monkeypatch.setattr(seals.verify, "fast_outcome", _never)
    full = [
        verify(d, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
        for d in (doc, attacked)
    ]
    assert fast == full
    assert fast[0].valid and not fast[1].valid


def seal_corpus_shadow(doc: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(doc))
    page = writer.root["/Pages"]["/Kids"].raw_get(0).get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT ET"))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
