"""Sealing: every output must satisfy pdfsig, qpdf and our own verify()."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm

from seals.pades import FieldPlacement, Level, SealOptions, seal_pdf
from seals.verify import verify

from . import seal_corpus
from .conftest import CONVERTED_CORPUS, Department, PdfsigSignature, converted_document
from .seal_pki import SealTestPki


def _seal(pdf: bytes, dep: Department, pki: SealTestPki, level: Level, **kw: Any) -> bytes:
    return seal_pdf(
        pdf,
        dep.signer,
        dep.appearance,
        SealOptions(level=level, trust_roots=(pki.root_der(),), crls=tuple(pki.crls()), **kw),
        timestamper=pki.timestamper() if level is not Level.B_B else None,
    )


def _assert_all_good(
    data: bytes,
    pki: SealTestPki,
    pdfsig: Callable[[bytes], list[PdfsigSignature]],
    qpdf_check: Callable[[bytes], None],
    expected_level: str,
    count: int,
) -> None:
    sigs = pdfsig(data)
    assert len(sigs) == count
    assert all(s.valid and s.trusted for s in sigs), sigs
    assert sigs[-1].total
    qpdf_check(data)
    report = verify(data, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert report.valid, report.problems
    assert len(report.seals) == count
    assert all(s.level == expected_level for s in report.seals)
    assert report.seals[-1].covers_whole_document
    assert report.seals[0].certifying


@pytest.mark.parametrize("level", list(Level))
def test_single_seal_each_level(
    level: Level,
    pki: SealTestPki,
    departments: list[Department],
    pdfsig: Callable[[bytes], list[PdfsigSignature]],
    qpdf_check: Callable[[bytes], None],
) -> None:
    sealed = _seal(seal_corpus.reportlab_pdf(), departments[0], pki, level)
    _assert_all_good(sealed, pki, pdfsig, qpdf_check, level.value, 1)
    report = verify(sealed, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    seal = report.seals[0]
    assert seal.department == "市财政局"
    assert (seal.timestamp is not None) == (level is not Level.B_B)


@pytest.mark.parametrize("level", [Level.B_B, Level.B_LT])
def test_joint_document_three_departments(
    level: Level,
    pki: SealTestPki,
    departments: list[Department],
    pdfsig: Callable[[bytes], list[PdfsigSignature]],
    qpdf_check: Callable[[bytes], None],
) -> None:
    doc = seal_corpus.reportlab_pdf(2)
    for dep in departments:
        doc = _seal(doc, dep, pki, level)
    _assert_all_good(doc, pki, pdfsig, qpdf_check, level.value, 3)
    report = verify(doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert [s.department for s in report.seals] == ["市财政局", "市教育局", "市公安局"]
    assert [s.field for s in report.seals] == ["Seal1", "Seal2", "Seal3"]
    # The earlier seals see only further seals after them.
    assert {s.modifications for s in report.seals[:-1]} == {"further_seals"}


def test_first_seal_certifies_allowing_further_seals(
    pki: SealTestPki, departments: list[Department]
) -> None:
    doc = _seal(seal_corpus.reportlab_pdf(), departments[0], pki, Level.B_B)
    doc = _seal(doc, departments[1], pki, Level.B_B)
    reader = PdfFileReader(io.BytesIO(doc))
    first, second = reader.embedded_regular_signatures
    assert first.docmdp_level == MDPPerm.FILL_FORMS
    assert second.docmdp_level is None


CORPUS: dict[str, Callable[[Path], bytes]] = {
    "multipage": lambda _: seal_corpus.reportlab_pdf(5),
    "scanned": lambda _: seal_corpus.scanned_pdf(),
    "incremental": lambda _: seal_corpus.incremental_pdf(),
    "linearized": seal_corpus.linearized_pdf,
    "xref_streams": seal_corpus.xref_stream_pdf,
}


def corpus_document(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> bytes:
    if kind in CONVERTED_CORPUS:
        return converted_document(request, kind)
    return CORPUS[kind](tmp_path)


@pytest.mark.parametrize("kind", sorted([*CORPUS, *CONVERTED_CORPUS]))
def test_corpus_documents_seal_validly(
    kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    pki: SealTestPki,
    departments: list[Department],
    pdfsig: Callable[[bytes], list[PdfsigSignature]],
    qpdf_check: Callable[[bytes], None],
) -> None:
    doc = corpus_document(kind, tmp_path, request)
    doc = _seal(doc, departments[0], pki, Level.B_T)
    doc = _seal(doc, departments[1], pki, Level.B_T)
    _assert_all_good(doc, pki, pdfsig, qpdf_check, "B-T", 2)


def _pdftotext(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("kind", sorted(CONVERTED_CORPUS))
def test_libreoffice_documents_are_what_they_claim(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, qpdf_check: Callable[[bytes], None]
) -> None:
    doc = converted_document(request, kind)
    qpdf_check(doc)
    info = PdfFileReader(io.BytesIO(doc)).trailer["/Info"]
    assert str(info["/Producer"]).startswith("LibreOffice")
    assert "各区县人民政府" in _pdftotext(doc, tmp_path)
    expected = ("2", "B") if kind == "pdfa_2b" else None
    assert seal_corpus.pdfa_claim(doc) == expected


def test_sealed_pdfa_still_claims_pdfa(
    pdfa_2b_pdf: bytes, pki: SealTestPki, departments: list[Department]
) -> None:
    # Only the claim and the untouched original revision are checked, not full conformance:
    # pyHanko sets the catalog /Version to 2.0 (PDF/A-2 is PDF 1.7 based) and rewrites the
    # XMP so pdf:Producer differs from the /Info Producer; no PDF/A validator runs here.
    doc = _seal(pdfa_2b_pdf, departments[0], pki, Level.B_LT)
    doc = _seal(doc, departments[1], pki, Level.B_LT)
    assert doc.startswith(pdfa_2b_pdf)
    assert seal_corpus.pdfa_claim(doc) == ("2", "B")
    reader = PdfFileReader(io.BytesIO(doc))
    assert "/OutputIntents" in reader.root


def _red_fraction(png: bytes, box: tuple[int, int, int, int]) -> float:
    with Image.open(io.BytesIO(png)) as img:
        region = img.convert("RGB").crop(box)
    raw = region.tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    red = [p for p in pixels if p[0] > 180 and p[1] < 90 and p[2] < 90]
    return len(red) / len(pixels)


def test_stamp_is_visible_where_the_field_is(
    tmp_path: Path, pki: SealTestPki, departments: list[Department]
) -> None:
    doc = seal_corpus.reportlab_pdf(2)
    doc = _seal(doc, departments[0], pki, Level.B_B)
    path = tmp_path / "sealed.pdf"
    path.write_bytes(doc)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "2", "-l", "2", str(path), str(tmp_path / "p")],
        check=True,
    )
    (png_path,) = tmp_path.glob("p*.png")
    png = png_path.read_bytes()
    with Image.open(io.BytesIO(png)) as img:
        width, height = img.size
    scale = 50 / 72
    # Default field: lower right, 119 pt square, 56 pt from the right and bottom edges.
    page_w, page_h = 595.2756, 841.8898
    x0 = round((page_w - 56 - 119) * scale)
    x1 = round((page_w - 56) * scale)
    y1 = round((page_h - 56) * scale)
    y0 = round((page_h - 56 - 119) * scale)
    assert abs(width - page_w * scale) <= 1 and abs(height - page_h * scale) <= 1
    assert _red_fraction(png, (x0, y0, x1, y1)) > 0.05
    # And not elsewhere: the top left of the page stays free of red.
    assert _red_fraction(png, (0, 0, x1 - x0, y1 - y0)) == 0


def test_custom_box_and_page(pki: SealTestPki, departments: list[Department]) -> None:
    doc = seal_corpus.reportlab_pdf(3)
    placement = FieldPlacement(page=0, box=(72, 600, 192, 720))
    doc = _seal(doc, departments[0], pki, Level.B_B, placement=placement)
    reader = PdfFileReader(io.BytesIO(doc))
    (sig,) = reader.embedded_regular_signatures
    widget = sig.sig_field
    assert [float(v) for v in widget["/Rect"]] == [72, 600, 192, 720]
    first_page = reader.root["/Pages"]["/Kids"].raw_get(0)
    assert widget.raw_get("/P").reference == first_page.reference
