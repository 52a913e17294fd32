"""Fixtures for the sealing core: a test PKI, an NSS trust store for pdfsig, the corpus."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from seals.image import render_seal
from seals.pades import SealAppearance
from seals.signer import SealSigner

from . import seal_corpus
from .seal_pki import Issued, SealTestPki


@pytest.fixture(scope="session")
def pki() -> SealTestPki:
    return SealTestPki.create()


@dataclass
class Department:
    name: str
    seal: Issued
    signer: SealSigner
    appearance: SealAppearance


@pytest.fixture(scope="session")
def departments(pki: SealTestPki) -> list[Department]:
    out = []
    for name in ("市财政局", "市教育局", "市公安局"):
        seal = pki.issue_seal(name)
        out.append(Department(name, seal, pki.signer(seal), SealAppearance(render_seal(name))))
    return out


@pytest.fixture(scope="session")
def nss_db(pki: SealTestPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("nssdb")
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    root = pki.write_root(db / "root.pem")
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "root", "-t", "CT,C,C", "-i", str(root)],
        check=True,
    )
    return db


@dataclass
class PdfsigSignature:
    valid: bool
    trusted: bool
    total: bool
    field: str


def parse_pdfsig(output: str) -> list[PdfsigSignature]:
    sigs: list[PdfsigSignature] = []
    for block in output.split("Signature #")[1:]:
        field = ""
        for line in block.splitlines():
            if "Signature Field Name:" in line:
                field = line.split(":", 1)[1].strip()
        sigs.append(
            PdfsigSignature(
                valid="Signature is Valid." in block,
                trusted="Certificate is Trusted." in block,
                total="Total document signed" in block and "Not total document signed" not in block,
                field=field,
            )
        )
    return sigs


@pytest.fixture
def pdfsig(nss_db: Path, tmp_path: Path) -> Callable[[bytes], list[PdfsigSignature]]:
    def run(data: bytes) -> list[PdfsigSignature]:
        path = tmp_path / "pdfsig-input.pdf"
        path.write_bytes(data)
        proc = subprocess.run(
            ["pdfsig", "-nssdir", f"sql:{nss_db}", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        return parse_pdfsig(proc.stdout)

    return run


@pytest.fixture
def qpdf_check(tmp_path: Path) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        path = tmp_path / "qpdf-input.pdf"
        path.write_bytes(data)
        proc = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "No syntax or stream encoding errors found" in proc.stdout

    return run


# LibreOffice conversions take seconds each, so they run once per session. There is no skip:
# without soffice these fixtures fail (./dev.sh test installs libreoffice-writer-nogui).


@pytest.fixture(scope="session")
def soffice_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private LibreOffice user installation, used by this session's conversions only."""
    return tmp_path_factory.mktemp("soffice-profile")


@pytest.fixture(scope="session")
def libreoffice_pdf(tmp_path_factory: pytest.TempPathFactory, soffice_profile: Path) -> bytes:
    return seal_corpus.libreoffice_pdf(tmp_path_factory.mktemp("libreoffice"), soffice_profile)


@pytest.fixture(scope="session")
def pdfa_2b_pdf(tmp_path_factory: pytest.TempPathFactory, soffice_profile: Path) -> bytes:
    return seal_corpus.pdfa_2b_pdf(tmp_path_factory.mktemp("pdfa"), soffice_profile)


CONVERTED_CORPUS = {"libreoffice": "libreoffice_pdf", "pdfa_2b": "pdfa_2b_pdf"}
"""Corpus members made by LibreOffice: kind -> name of the session fixture holding the PDF."""


def converted_document(request: pytest.FixtureRequest, kind: str) -> bytes:
    data = request.getfixturevalue(CONVERTED_CORPUS[kind])
    assert isinstance(data, bytes)
    return data
