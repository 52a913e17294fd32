"""A 200 MB PDF end to end over HTTPS: sent, sealed, downloaded and verified, while the
gateway's memory stays flat. The gateway's peak RSS is reset (``/proc/<pid>/clear_refs``)
before and read (``VmHWM``) after, so the bound holds for the whole round trip.

On main the send alone grew the gateway by about 2.6 times the document (kept in a
bytearray, copied, pickled to the worker and back); now every copy lives in a spool file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import asyncpg
import httpx
import pytest

from tests.conftest import Gateway, Session, login_as, start_gateway
from tests.exchange.conftest import SENDER, issue_seal, meta_for, send
from tests.largepdf import write_large_pdf
from tests.s3server import MotoServer
from tests.seals.seal_corpus import reportlab_pdf

MiB = 1024 * 1024
LARGE = 200 * MiB
# Buffers the gateway may hold at once: aiohttp's read chunks, the store's 1 MiB batches
# with one write in flight, worker-thread I/O chunks and the interpreter's own growth.
RSS_GROWTH_BOUND = 64 * MiB
RECIPIENT = "yl-czj"


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


def reset_peak(pid: int) -> int:
    """Reset the peak RSS to the current RSS (Linux clear_refs 5); returns it in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_kib(pid, "VmRSS") * 1024


def peak(pid: int) -> int:
    return _status_kib(pid, "VmHWM") * 1024


def file_chunks(stream: BinaryIO, size: int = MiB) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def objects_on_disk(gateway: Gateway) -> set[str]:
    root = gateway.data_dir / "objects"
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def document_rows(gateway: Gateway) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(gateway.database_url)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM sealhub.documents"))
        finally:
            await connection.close()

    return asyncio.run(count())


def spool_entries(gateway: Gateway) -> list[str]:
    return sorted(p.name for p in (gateway.data_dir / "spool").iterdir())


@pytest.fixture(scope="module")
def large_pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("large") / "large.pdf"
    return path, write_large_pdf(path, LARGE)


def send_file(session: Session, meta: dict[str, object], path: Path) -> httpx.Response:
    with path.open("rb") as stream:
        files = {
            "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
            "file": ("large.pdf", stream, "application/pdf"),
        }
        return session.post("/v1/documents", files=files, timeout=120)


# Verification has its own, smaller size limit; these gateways verify what they seal.
LARGE_VERIFY = {"SEALHUB_MAX_VERIFY_BYTES": str(256 * 1024 * 1024)}


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(module_db_url, tmp_path_factory.mktemp("gw"), env=LARGE_VERIFY)
    try:
        yield running
    finally:
        running.stop()


def test_large_pdf_round_trip_keeps_gateway_memory_flat(
    gateway: Gateway,
    seal_keeper: Session,
    large_pdf: tuple[Path, str],
    tmp_path: Path,
) -> None:
    round_trip(gateway, seal_keeper, large_pdf, tmp_path)


def test_large_pdf_round_trip_with_s3_store_keeps_gateway_memory_flat(
    db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: MotoServer,
    large_pdf: tuple[Path, str],
    tmp_path: Path,
) -> None:
    """The S3 backend streams too: multipart parts of bounded size up, ranged GETs down."""
    env = {
        "S3_ENDPOINT": f"http://{moto_server.endpoint}",
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_BUCKET": "sealhub-" + uuid.uuid4().hex[:8],
        **LARGE_VERIFY,
    }
    running = start_gateway(db_url, tmp_path_factory.mktemp("gw-s3"), env=env)
    try:
        admins = (login_as(running, "yl", ["admin"]), login_as(running, "yl", ["admin"]))
        issue_seal(admins, SENDER)
        with login_as(running, SENDER, ["seal_keeper"]) as keeper:
            round_trip(running, keeper, large_pdf, tmp_path)
    finally:
        running.stop()


def round_trip(
    gateway: Gateway, seal_keeper: Session, large_pdf: tuple[Path, str], tmp_path: Path
) -> None:
    """Send, download (whole and a range) and verify; the gateway's peak RSS stays bounded."""
    path, draft_sha = large_pdf
    # A small document first: lazy imports and caches are not what the bound is about.
    warm = send(seal_keeper, meta_for([RECIPIENT], "永政发〔2026〕199号"), reportlab_pdf())
    assert warm.status_code == 201, warm.text
    pid = gateway.process.pid
    baseline = reset_peak(pid)

    sent = send_file(seal_keeper, meta_for([RECIPIENT], "永政发〔2026〕200号"), path)
    assert sent.status_code == 201, sent.text
    assert sent.json()["draft_sha256"] == draft_sha
    document_id = sent.json()["id"]

    content = f"/v1/documents/{document_id}/content"
    sealed_path = tmp_path / "sealed.pdf"
    digest = hashlib.sha256()
    with (
        seal_keeper.client.stream(
            "GET", content, headers=seal_keeper.headers("GET", content), timeout=120
        ) as response,
        sealed_path.open("wb") as out,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes(MiB):
            digest.update(chunk)
            out.write(chunk)
    assert digest.hexdigest() == sent.json()["sha256"]
    size = sealed_path.stat().st_size
    assert size > path.stat().st_size  # the draft plus one incremental update
    with sealed_path.open("rb") as sealed:
        prefix, left = hashlib.sha256(), path.stat().st_size
        while left:
            chunk = sealed.read(min(MiB, left))
            prefix.update(chunk)
            left -= len(chunk)
    assert prefix.hexdigest() == draft_sha

    tail = seal_keeper.get(content, headers={"Range": "bytes=-1024"})
    assert tail.status_code == 206
    with sealed_path.open("rb") as sealed:
        sealed.seek(size - 1024)
        assert tail.content == sealed.read()

    with sealed_path.open("rb") as sealed:
        verified = seal_keeper.post(
            "/v1/verify",
            content=file_chunks(sealed),
            headers={"Content-Type": "application/pdf"},
            timeout=120,
        )
    assert verified.status_code == 200, verified.text
    report = verified.json()
    assert report["valid"], report["problems"]
    assert [s["covers_whole_document"] for s in report["seals"]] == [True]

    growth = peak(pid) - baseline
    assert growth < RSS_GROWTH_BOUND, f"gateway peak RSS grew by {growth / MiB:.0f} MiB"
    assert spool_entries(gateway) == []


def test_refused_large_upload_leaves_no_objects_rows_or_spool(
    gateway: Gateway, seal_keeper: Session, tmp_path: Path
) -> None:
    """A large body that is no PDF: refused after it was stored and spooled, nothing stays."""
    junk = tmp_path / "junk.pdf"
    with junk.open("wb") as out:
        out.write(uuid.uuid4().bytes * (8 * MiB // 16))
    before = objects_on_disk(gateway), document_rows(gateway)
    refused = send_file(seal_keeper, meta_for([RECIPIENT], "永政发〔2026〕201号"), junk)
    assert refused.status_code == 415, refused.text
    assert refused.json()["code"] == "not_a_pdf"
    assert (objects_on_disk(gateway), document_rows(gateway)) == before
    assert spool_entries(gateway) == []


def test_spool_left_by_a_crash_is_swept_at_start(gateway: Gateway, tmp_path: Path) -> None:
    gateway.stop()
    spool = gateway.data_dir / "spool"
    left = spool / "doc-crashed.pdf"
    left.write_bytes(b"%PDF-1.7 half an upload")
    (spool / "stray").mkdir()
    (spool / "stray" / "inner.pdf").write_bytes(b"%PDF-1.7")
    port = int(gateway.base_url.rsplit(":", 1)[1])
    restarted = start_gateway(gateway.database_url, gateway.data_dir, demo=False, port=port)
    try:
        assert not left.exists()
        assert list(spool.iterdir()) == []
        assert spool.stat().st_mode & 0o777 == 0o700
    finally:
        restarted.stop()
