"""One large PDF through the real gateway over HTTPS, against a plain file copy of its bytes.

Run: ``.venv/bin/python bench/bench_large.py [--mb 200]`` (about a minute; starts its own
PostgreSQL and a real gateway). It builds a PDF of that size (one page and an incompressible
embedded file), then, as a seal keeper:

- sends it (upload, sealing at B-LT in a worker, storing draft and sealed copy);
- downloads the sealed copy;
- verifies the sealed copy through ``POST /v1/verify``.

For each step it reports the throughput and the gateway's peak RSS growth (the peak is
reset through ``/proc/<pid>/clear_refs`` before the step and read from ``VmHWM`` after),
and the worker processes' peak RSS. The baseline, measured in the same run, is copying
the same bytes from one file to another; ratios are throughput against that copy.
Prints the figures and writes ``bench/results/large.json``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import Gateway, Session, _create_database, login_as, start_gateway  # noqa: E402
from tests.exchange.conftest import meta_for, send  # noqa: E402
from tests.largepdf import write_large_pdf  # noqa: E402
from tests.seals.seal_corpus import reportlab_pdf  # noqa: E402

MiB = 1024 * 1024
RESULTS = REPO / "bench" / "results" / "large.json"
TARGET_GROWTH = 64 * MiB


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """The gateway's process tree below it: the forkserver and the sealing workers."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = status_kib(int(entry.name), "PPid")
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, of in parents.items() if of == parent]
        found += children
        frontier += children
    return found


def reset_peak(pid: int) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid, "VmRSS") * 1024


class PeakWatch:
    """Peak RSS growth of the gateway, and the peak RSS of its workers, over one step."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> PeakWatch:
        for child in descendants(self.pid):
            with contextlib.suppress(OSError):
                reset_peak(child)
        self.base = reset_peak(self.pid)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.growth = status_kib(self.pid, "VmHWM") * 1024 - self.base
        peaks = []
        for child in descendants(self.pid):
            with contextlib.suppress(OSError):
                peaks.append(status_kib(child, "VmHWM") * 1024)
        self.worker_peak = max(peaks, default=0)


def chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(MiB):
        yield chunk


def run(gateway: Gateway, work: Path, size_mb: int) -> dict[str, float]:
    draft = work / "draft.pdf"
    write_large_pdf(draft, size_mb * MiB)
    size = draft.stat().st_size

    copies = []
    for _ in range(3):
        started = time.perf_counter()
        shutil.copyfile(draft, work / "copy.pdf")
        copies.append(time.perf_counter() - started)
    copy_mb_s = size / MiB / min(copies)

    first, second = login_as(gateway, "yl", ["admin"]), login_as(gateway, "yl", ["admin"])
    asked = first.post("/v1/departments/yl-bgs/seal-requests", json={"purpose": "公文专用章"})
    second.post(f"/v1/seal-requests/{asked.json()['id']}/approve").raise_for_status()
    keeper: Session = login_as(gateway, "yl-bgs", ["seal_keeper"])
    pid = gateway.process.pid
    # Warm the worker pool, the seal caches and lazy imports, as a running gateway would be.
    send(keeper, meta_for(["yl-czj"], "玉政办发〔2026〕949号"), reportlab_pdf()).raise_for_status()

    with PeakWatch(pid) as sending, draft.open("rb") as stream:
        files = {
            "meta": (
                None,
                json.dumps(meta_for(["yl-czj"], "玉政办发〔2026〕950号")),
                "application/json",
            ),
            "file": ("large.pdf", stream, "application/pdf"),
        }
        sent = keeper.post("/v1/documents", files=files, timeout=600)
    sent.raise_for_status()
    document = sent.json()

    path = f"/v1/documents/{document['id']}/content"
    sealed = work / "sealed.pdf"
    with PeakWatch(pid) as download, sealed.open("wb") as out:
        digest = hashlib.sha256()
        with keeper.client.stream(
            "GET", path, headers=keeper.headers("GET", path), timeout=600
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(MiB):
                digest.update(chunk)
                out.write(chunk)
    assert digest.hexdigest() == document["sha256"], "the download is not the sealed copy"

    with PeakWatch(pid) as verify, sealed.open("rb") as stream:
        checked = keeper.post(
            "/v1/verify",
            content=chunks(stream),
            headers={"Content-Type": "application/pdf"},
            timeout=600,
        )
    checked.raise_for_status()
    assert checked.json()["valid"], checked.json()["problems"]

    sealed_mb = sealed.stat().st_size / MiB
    numbers: dict[str, float] = {"document_mb": size / MiB, "file_copy_mb_s": copy_mb_s}
    for name, watch, mb in (
        ("send", sending, size / MiB),
        ("download", download, sealed_mb),
        ("verify", verify, sealed_mb),
    ):
        numbers[f"{name}_s"] = watch.seconds
        numbers[f"{name}_mb_s"] = mb / watch.seconds
        numbers[f"{name}_ratio_to_file_copy"] = mb / watch.seconds / copy_mb_s
        numbers[f"{name}_gateway_peak_rss_growth_mb"] = watch.growth / MiB
        numbers[f"{name}_worker_peak_rss_mb"] = watch.worker_peak / MiB
    return numbers


def main() -> None:
    from pgserver.postgres_server import get_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200, help="document size in MiB")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shbench-", dir="/tmp"))
    root.chmod(0o755)
    server = get_server(root / "pg", cleanup_mode="stop")
    try:
        server_url = server.get_uri()
        database_url = _create_database(server_url, asyncio.run(_template(server_url)))
        # Verification has its own size limit (64 MiB by default): let it take the document.
        limits = {
            "SEALHUB_SEAL_WORKERS": "1",
            "SEALHUB_MAX_VERIFY_BYTES": str((args.mb + 16) * 1024 * 1024),
        }
        gateway = start_gateway(database_url, root / "gw", demo=True, env=limits)
        try:
            work = root / "work"
            work.mkdir()
            numbers = run(gateway, work, args.mb)
        finally:
            gateway.stop()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    for name, value in numbers.items():
        print(f"{name:42} {value:10.2f}")
    worst = max(
        numbers[f"{step}_gateway_peak_rss_growth_mb"] for step in ("send", "download", "verify")
    )
    verdict = "met" if worst * MiB < TARGET_GROWTH else "MISSED"
    print(f"target gateway peak RSS growth < {TARGET_GROWTH // MiB} MB in every step: {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(numbers, indent=2))


async def _template(server_url: str) -> str:
    import asyncpg

    from storage.migrate import migrate
    from tests.conftest import database_url_for

    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute("DROP DATABASE IF EXISTS bench_template")
        await connection.execute("CREATE DATABASE bench_template")
    finally:
        await connection.close()
    await migrate(database_url_for(server_url, "bench_template"))
    return "bench_template"


if __name__ == "__main__":
    main()
