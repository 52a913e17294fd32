"""Object store throughput and memory for one large object, against a plain file copy.

Usage: .venv/bin/python bench/bench_objectstore.py [--mb 200] [--backends fs,s3]

Baseline, measured in the same run: copying the source file to another file (1 MiB
chunks, fsync) and reading the copy back. Then each backend puts the same file as a
stream (encrypting, hashing) and reads it back whole (decrypting). The S3 backend talks to
moto's server, started as a separate process so its memory is not counted. Peak RSS growth
is sampled every 5 ms while each stream runs. Targets: RSS growth < 64 MB, fs put and get
>= 100 MB/s. Results go to bench/results/objectstore.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from keys.master import MasterKey
from storage.objects import (
    FilesystemStoreConfig,
    ObjectStore,
    S3StoreConfig,
    StoreConfig,
    open_store,
)

MIB = 1024 * 1024
CHUNK = MIB
RESULTS = Path(__file__).parent / "results" / "objectstore.json"
TARGET_RSS_MB = 64
TARGET_FS_MBPS = 100


class RssSampler:
    """Peak RSS above the level at start, sampled in a background thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start_rss = 0
        self.peak_rss = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self.start_rss = self.peak_rss = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak_rss - self.start_rss) / MIB


def make_source(path: Path, size: int) -> str:
    """Non-repeating data written once; returns its SHA-256."""
    block = random.Random(1).randbytes(CHUNK + 4099)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        written, index = 0, 0
        while written < size:
            offset = (index * 7919) % 4099
            piece = block[offset : offset + min(CHUNK, size - written)]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
            index += 1
    return digest.hexdigest()


def plain_copy(source: Path, target: Path) -> None:
    with source.open("rb", buffering=0) as src, target.open("wb", buffering=0) as dst:
        while piece := src.read(CHUNK):
            dst.write(piece)
        os.fsync(dst.fileno())


def plain_read(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while piece := handle.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb", buffering=0)
    try:
        while piece := await asyncio.to_thread(handle.read, CHUNK):
            yield piece
    finally:
        handle.close()


async def timed(func: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    with RssSampler() as rss:
        started = time.perf_counter()
        value = await func()
        elapsed = time.perf_counter() - started
    return elapsed, rss.growth_mb, value


async def bench_store(
    name: str, config: StoreConfig, source: Path, size: int, digest: str
) -> dict[str, float]:
    store: ObjectStore = await open_store(config, MasterKey.generate())
    try:

        async def put() -> str:
            result = await store.put(file_chunks(source), max_bytes=size)
            assert result.sha256_hex == digest, "put hash mismatch"
            return result.key

        put_s, put_rss, key = await timed(put)

        async def get() -> None:
            hasher = hashlib.sha256()
            async for piece in store.open(key):
                hasher.update(piece)
            assert hasher.hexdigest() == digest, "get hash mismatch"

        get_s, get_rss, _ = await timed(get)
        await store.delete(key)
    finally:
        await store.aclose()
    mb = size / MIB
    row = {
        "put_mb_s": round(mb / put_s, 1),
        "get_mb_s": round(mb / get_s, 1),
        "put_rss_growth_mb": round(put_rss, 1),
        "get_rss_growth_mb": round(get_rss, 1),
    }
    print(
        f"{name:>10}: put {row['put_mb_s']:7.1f} MB/s  get {row['get_mb_s']:7.1f} MB/s  "
        f"peak RSS growth put {put_rss:5.1f} MB, get {get_rss:5.1f} MB"
    )
    return row


class Moto:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                url = f"http://127.0.0.1:{self.port}/moto-api/"
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--backends", default="fs,s3")
    args = parser.parse_args()
    size = args.mb * MIB
    backends = args.backends.split(",")
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "object_mb": args.mb,
    }
    with tempfile.TemporaryDirectory(prefix="bench-objs-") as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        digest = make_source(source, size)

        copy_s, copy_rss, _ = await timed(
            lambda: asyncio.to_thread(plain_copy, source, work / "copy.bin")
        )
        read_s, _, read_digest = await timed(
            lambda: asyncio.to_thread(plain_read, work / "copy.bin")
        )
        assert read_digest == digest
        (work / "copy.bin").unlink()
        baseline = {
            "copy_mb_s": round(args.mb / copy_s, 1),
            "read_mb_s": round(args.mb / read_s, 1),
        }
        report["baseline"] = baseline
        print(
            f"{'plain file':>10}: copy {baseline['copy_mb_s']:6.1f} MB/s  "
            f"read {baseline['read_mb_s']:7.1f} MB/s  (peak RSS growth {copy_rss:.1f} MB)"
        )

        results: dict[str, dict[str, float]] = {}
        if "fs" in backends:
            fs_config = FilesystemStoreConfig(root=work / "store")
            results["fs"] = await bench_store("fs", fs_config, source, size, digest)
        if "s3" in backends:
            moto = Moto()
            try:
                s3_config = S3StoreConfig(
                    endpoint=f"127.0.0.1:{moto.port}",
                    access_key="bench",
                    secret_key="bench",  # noqa: S106 - moto accepts any credentials
                    bucket="bench",
                    secure=False,
                )
                results["s3 (moto)"] = await bench_store(
                    "s3 (moto)", s3_config, source, size, digest
                )
            finally:
                moto.stop()

    for row in results.values():
        row["put_vs_copy"] = round(row["put_mb_s"] / baseline["copy_mb_s"], 2)
        row["get_vs_read"] = round(row["get_mb_s"] / baseline["read_mb_s"], 2)
    report["backends"] = results
    print("\nratios against the plain file (1.0 = as fast as a copy / read):")
    for name, row in results.items():
        print(f"{name:>10}: put/copy {row['put_vs_copy']:.2f}  get/read {row['get_vs_read']:.2f}")
    if "fs" in results:
        fs = results["fs"]
        report["targets"] = {
            "fs_put_ge_100_mb_s": fs["put_mb_s"] >= TARGET_FS_MBPS,
            "fs_get_ge_100_mb_s": fs["get_mb_s"] >= TARGET_FS_MBPS,
            "rss_growth_lt_64_mb": all(
                max(r["put_rss_growth_mb"], r["get_rss_growth_mb"]) < TARGET_RSS_MB
                for r in results.values()
            ),
        }
        print("targets:", report["targets"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
