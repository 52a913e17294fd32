"""Damaged or hostile uploads are refused with their code before any key is used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seals.errors import (
    NotAPdf,
    PayloadTooLarge,
    PdfEncrypted,
    PdfInputError,
    PdfMalformed,
    PdfTooComplex,
)
from seals.pades import seal_pdf
from seals.pdfcheck import open_pdf
from seals.signer import SealSigner
from seals.verify import verify

from . import seal_corpus
from .conftest import CONVERTED_CORPUS, Department, converted_document
from .seal_pki import SealTestPki


def _raw_chain_loop() -> bytes:
    # /Contents points at an object whose value is a reference back to itself.
    return seal_corpus._raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"5 0 R",
            b"4 0 R",
        ]
    )


DAMAGED: dict[str, tuple[Callable[[Path], bytes], type[PdfInputError], str]] = {
    "truncated": (
        lambda _: seal_corpus.truncated(seal_corpus.reportlab_pdf()),
        PdfMalformed,
        "pdf_malformed",
    ),
    "truncated_xref_stream": (
        lambda tmp: seal_corpus.truncated(seal_corpus.xref_stream_pdf(tmp)),
        PdfMalformed,
        "pdf_malformed",
    ),
    "wrong_xref": (
        lambda _: seal_corpus.wrong_xref(seal_corpus.reportlab_pdf()),
        PdfMalformed,
        "pdf_malformed",
    ),
    "page_tree_loop": (lambda _: seal_corpus.reference_loop_pdf(), PdfMalformed, "pdf_malformed"),
    "reference_chain_loop": (lambda _: _raw_chain_loop(), PdfMalformed, "pdf_malformed"),
    "decompression_bomb": (
        lambda _: seal_corpus.decompression_bomb_pdf(),
        PdfTooComplex,
        "pdf_too_complex",
    ),
    "encrypted": (seal_corpus.encrypted_pdf, PdfEncrypted, "pdf_encrypted"),
    "not_a_pdf": (lambda _: seal_corpus.NOT_A_PDF, NotAPdf, "not_a_pdf"),
    "empty": (lambda _: b"", NotAPdf, "not_a_pdf"),
}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return seal_corpus.decompression_bomb_pdf()


@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_damaged_input_raises_its_code(kind: str, tmp_path: Path) -> None:
    make, error, code = DAMAGED[kind]
    with pytest.raises(error) as info:
        open_pdf(make(tmp_path))
    assert info.value.code == code


def test_too_large_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge) as info:
        open_pdf(seal_corpus.reportlab_pdf(), max_bytes=1000)
    assert info.value.code == "payload_too_large"


class CountingKey:
    """A real P-256 key that records whether it was asked to sign."""

    def __init__(self, inner: SealSigner) -> None:
        self.calls = 0
        self._inner = inner._seal_key

    def sign_sha256_digest(self, digest: bytes) -> bytes:
        self.calls += 1
        return self._inner.sign_sha256_digest(digest)


@pytest.mark.parametrize("kind", ["truncated", "encrypted", "decompression_bomb", "not_a_pdf"])
def test_sealing_refuses_before_the_key_is_used(
    kind: str, tmp_path: Path, pki: SealTestPki, departments: list[Department]
) -> None:
    dep = departments[0]
    key = CountingKey(dep.signer)
    signer = SealSigner(key, dep.signer.certificate_der, dep.signer.chain_der)
    make, error, _ = DAMAGED[kind]
    with pytest.raises(error):
        seal_pdf(make(tmp_path), signer, dep.appearance)
    assert key.calls == 0
    # The same key does sign a good document, so the counter can move.
    seal_pdf(seal_corpus.reportlab_pdf(), signer, dep.appearance)
    assert key.calls == 1


@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_verify_raises_only_typed_input_errors(kind: str, tmp_path: Path, pki: SealTestPki) -> None:
    make, error, _ = DAMAGED[kind]
    with pytest.raises(error):
        verify(make(tmp_path), [pki.root_der()], seal_issuer=pki.seal_issuer)


@pytest.mark.parametrize(
    "make",
    [
        lambda _: seal_corpus.reportlab_pdf(3),
        lambda _: seal_corpus.scanned_pdf(),
        lambda _: seal_corpus.incremental_pdf(),
        seal_corpus.linearized_pdf,
        seal_corpus.xref_stream_pdf,
    ],
    ids=["multipage", "scanned", "incremental", "linearized", "xref_streams"],
)
def test_good_documents_pass(make: Callable[[Path], bytes], tmp_path: Path) -> None:
    info = open_pdf(make(tmp_path))
    assert len(info.page_refs) >= 1
    assert info.signature_count == 0


@pytest.mark.parametrize("kind", sorted(CONVERTED_CORPUS))
def test_libreoffice_documents_pass(kind: str, request: pytest.FixtureRequest) -> None:
    info = open_pdf(converted_document(request, kind))
    assert len(info.page_refs) == 1
    assert info.signature_count == 0
