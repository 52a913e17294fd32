"""POST /v1/verify (nothing fetched) and the RFC 3161 TSA endpoint, checked with openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.conftest import Gateway, Session
from tests.exchange.conftest import SENDER, meta_for, send


def verify(session: Session, pdf: bytes) -> httpx.Response:
    return session.post("/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})


def test_verify_reports_our_seal(
    seal_keeper: Session, sender_seal: dict[str, object], sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jtj"], "玉政办发〔2026〕40号"), sample_pdf).json()
    sealed = seal_keeper.get(f"/v1/documents/{sent['id']}/content").content
    report = verify(seal_keeper, sealed)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["valid"] is True
    [seal] = body["seals"]
    assert seal["seal_id"] == sender_seal["id"]
    assert seal["department"] == SENDER
    assert seal["level"] == "B-LT"
    assert seal["intact"] and seal["trusted"] and seal["covers_whole_document"]
    assert seal["revoked"] is False
    assert seal["timestamp"] is not None

    tampered = bytearray(sealed)
    position = sealed.index(b"/Contents") - 40  # inside the first signed byte range
    tampered[position] ^= 0x01
    broken = verify(seal_keeper, bytes(tampered))
    assert broken.status_code in (200, 422)
    if broken.status_code == 200:
        assert broken.json()["valid"] is False

    unsealed = verify(seal_keeper, sample_pdf).json()
    assert unsealed["valid"] is False
    assert unsealed["seals"] == []


def test_verify_refuses_non_pdf_cleanly(seal_keeper: Session, gateway: Gateway) -> None:
    response = verify(seal_keeper, b"GIF89a not a pdf")
    assert response.status_code == 415
    assert response.json()["code"] == "not_a_pdf"
    with gateway.client() as anonymous:
        assert anonymous.post("/v1/verify", content=b"%PDF-1.7").status_code == 401


def test_tsa_reply_verifies_with_openssl(
    gateway: Gateway, seal_keeper: Session, tmp_path: Path
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("公文 time-stamp test")
    query = tmp_path / "q.tsq"
    subprocess.run(
        ["openssl", "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)],
        check=True,
        capture_output=True,
    )
    reply = seal_keeper.post(
        "/v1/pki/tsa",
        content=query.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "r.tsr").write_bytes(reply.content)
    (tmp_path / "chain.pem").write_bytes((gateway.data_dir / "pki" / "chain.pem").read_bytes())
    checked = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-in",
            str(tmp_path / "r.tsr"),
            "-queryfile",
            str(query),
            "-CAfile",
            str(gateway.ca_path),
            "-untrusted",
            str(tmp_path / "chain.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    with gateway.client() as anonymous:
        refused = anonymous.post(
            "/v1/pki/tsa",
            content=query.read_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
        )
        assert refused.status_code == 401
