"""Fixtures for the exchange: a gateway with the demo directory, a department with an
issued seal (two admins agreed), its seal keeper, and tools that check PDFs independently."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Gateway, Session, login_as
from tests.seals.seal_corpus import reportlab_pdf

SENDER = "yl-bgs"


def send(
    session: Session,
    meta: dict[str, object],
    pdf: bytes,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    files = {
        "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
        "file": ("document.pdf", pdf, "application/pdf"),
    }
    return session.post("/v1/documents", files=files, headers=headers or {})


def meta_for(recipients: list[str], doc_number: str, **extra: object) -> dict[str, object]:
    return {
        "title": "关于做好2026年度安全生产检查工作的通知",
        "doc_number": doc_number,
        "urgency": "urgent",
        "classification": "internal",
        "recipients": recipients,
        **extra,
    }


@pytest.fixture(scope="module")
def admins(gateway: Gateway) -> Iterator[tuple[Session, Session]]:
    first = login_as(gateway, "yl", ["admin"], name="管理员甲")
    second = login_as(gateway, "yl", ["admin"], name="管理员乙")
    yield first, second
    first.close()
    second.close()


def issue_seal(admins: tuple[Session, Session], department: str) -> dict[str, object]:
    first, second = admins
    requested = first.post(
        f"/v1/departments/{department}/seal-requests", json={"purpose": "公文专用章"}
    )
    assert requested.status_code == 201, requested.text
    approved = second.post(f"/v1/seal-requests/{requested.json()['id']}/approve")
    assert approved.status_code == 201, approved.text
    seal: dict[str, object] = approved.json()
    return seal


@pytest.fixture(scope="module")
def sender_seal(admins: tuple[Session, Session]) -> dict[str, object]:
    return issue_seal(admins, SENDER)


@pytest.fixture(scope="module")
def seal_keeper(gateway: Gateway, sender_seal: dict[str, object]) -> Iterator[Session]:
    session = login_as(gateway, SENDER, ["seal_keeper", "clerk"], name="用印员")
    yield session
    session.close()


@pytest.fixture(scope="module")
def sample_pdf() -> bytes:
    return reportlab_pdf(pages=2)


@pytest.fixture(scope="module")
def nss_db(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NSS database trusting only the platform root (what pdfsig validates against)."""
    directory = tmp_path_factory.mktemp("nss")
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{directory}",
            "-n",
            "sealhub-root",
            "-t",
            "CT,C,C",
            "-i",
            str(gateway.ca_path),
        ],
        check=True,
    )
    return directory


@pytest.fixture(scope="module")
def pdfsig(nss_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[bytes], str]:
    """pdfsig's report for a PDF (poppler, independent of pyhanko)."""
    folder = tmp_path_factory.mktemp("pdfsig")

    def check(pdf: bytes) -> str:
        path = folder / "doc.pdf"
        path.write_bytes(pdf)
        result = subprocess.run(
            ["pdfsig", "-nssdir", f"sql:{nss_db}", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout + result.stderr

    return check
