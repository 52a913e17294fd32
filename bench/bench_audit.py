"""Audit log in PostgreSQL: appends through the outbox, and proofs at one million entries.

1. Appends: 8 concurrent writers (one event per transaction, as producers write them) while
   the sequencer runs; appends/s is the rate at which events become log entries. Baseline:
   the same writers into the outbox with no sequencer, in the same run.
2. Proofs: one million entries bulk-loaded with COPY (leaves and every perfect node, built by
   the same code as the sequencer), then inclusion and consistency proofs answered from the
   stored nodes (O(log n) reads) against recomputing the root from all leaf hashes.

Uses ``BENCH_DATABASE_URL`` or starts pgserver in a temporary directory. Writes
bench/results/audit.json.

    .venv/bin/python bench/bench_audit.py [--events 20000] [--entries 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage import audit_log, merkle
from storage.audit_outbox import AuditEvent, record_event
from storage.db import APP_ROLE, SCHEMA, connect
from storage.migrate import migrate

RESULTS = Path(__file__).resolve().parent / "results" / "audit.json"
WRITERS = 8
T0 = datetime(2026, 11, 26, tzinfo=UTC)


async def _new_database(server_url: str) -> str:
    name = "bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(server_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    await migrate(url)
    return url


async def _writer(url: str, writer: int, count: int) -> None:
    connection = await connect(url, role=APP_ROLE)
    try:
        for seq in range(count):
            async with connection.transaction():
                await record_event(
                    connection,
                    AuditEvent(
                        "bench.write",
                        datetime.now(UTC),
                        actor_official=f"official-{writer}",
                        department=f"dept-{writer}",
                        document=f"doc-{writer}-{seq}",
                        details={"writer": writer, "seq": seq},
                    ),
                )
    finally:
        await connection.close()


async def _writers(url: str, total: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(_writer(url, w, total // WRITERS) for w in range(WRITERS)))
    return time.perf_counter() - started


async def bench_appends(server_url: str, total: int) -> dict[str, float]:
    baseline_url = await _new_database(server_url)
    baseline = await _writers(baseline_url, total)
    # Sequencer capacity alone: drain the outbox the baseline writers filled.
    drain = await connect(baseline_url, role=APP_ROLE)
    assert await audit_log.try_acquire_sequencer(drain)
    drain_started = time.perf_counter()
    assert await audit_log.sequence_pending(drain) == total
    drain_s = time.perf_counter() - drain_started
    await drain.close()
    url = await _new_database(server_url)
    sequencer = await connect(url, role=APP_ROLE)
    assert await audit_log.try_acquire_sequencer(sequencer)
    done = asyncio.Event()

    async def sequence() -> None:
        while True:
            moved = await audit_log.sequence_pending(sequencer)
            if done.is_set() and moved == 0:
                return
            if moved == 0:
                await asyncio.sleep(0.005)

    started = time.perf_counter()
    task = asyncio.create_task(sequence())
    await _writers(url, total)
    done.set()
    await task
    elapsed = time.perf_counter() - started
    assert await audit_log.log_size(sequencer) == total
    await sequencer.close()
    return {
        "events": total,
        "writers": WRITERS,
        "appends_per_s": total / elapsed,
        "outbox_only_inserts_per_s": total / baseline,
        "sequencer_alone_per_s": total / drain_s,
        "ratio_vs_outbox_only": baseline / elapsed,
    }


async def _bulk_load(url: str, entries: int) -> list[bytes]:
    owner = await connect(url)
    leaf_hashes: list[bytes] = []
    frontier = merkle.Frontier.empty()
    chunk = 50_000
    salt = bytes(16)
    try:
        for start in range(0, entries, chunk):
            rows = []
            hashes = []
            for index in range(start, min(entries, start + chunk)):
                details = b'{"n":%d}' % index
                digest = audit_log.details_hash(salt, details)
                at = T0 + timedelta(milliseconds=index)
                leaf = audit_log.build_leaf(
                    index=index,
                    type="bench.load",
                    at=at,
                    actor_official=None,
                    actor_jkt=None,
                    department="dept-a",
                    document=None,
                    details_hash=digest,
                )
                hashes.append(merkle.leaf_hash(leaf))
                rows.append((index, index + 1, "bench.load", at, "dept-a", leaf, digest))
            appended = merkle.append_leaves(frontier, hashes)
            frontier = appended.frontier
            leaf_hashes.extend(hashes)
            await owner.copy_records_to_table(
                "audit_log",
                records=rows,
                columns=("idx", "outbox_id", "type", "at", "department", "leaf", "details_hash"),
                schema_name=SCHEMA,
            )
            await owner.copy_records_to_table(
                "audit_nodes",
                records=[(n.level, n.index, h) for n, h in appended.new_nodes.items()],
                columns=("level", "idx", "hash"),
                schema_name=SCHEMA,
            )
        await owner.execute("ANALYZE audit_log; ANALYZE audit_nodes")
    finally:
        await owner.close()
    return leaf_hashes


async def bench_proofs(server_url: str, entries: int, proofs: int) -> dict[str, float]:
    url = await _new_database(server_url)
    started = time.perf_counter()
    leaf_hashes = await _bulk_load(url, entries)
    load_s = time.perf_counter() - started
    connection = await connect(url, role=APP_ROLE)
    rng = random.Random(7)
    try:
        root = await audit_log.root_at(connection, entries)
        recompute_started = time.perf_counter()
        assert merkle.root_from_leaf_hashes(leaf_hashes) == root
        recompute_s = time.perf_counter() - recompute_started
        inclusion: list[float] = []
        consistency: list[float] = []
        for _ in range(proofs):
            index = rng.randrange(entries)
            t = time.perf_counter()
            proof = await audit_log.inclusion_proof(connection, index, entries)
            inclusion.append(time.perf_counter() - t)
            merkle.verify_inclusion(leaf_hashes[index], index, entries, proof, root)
            old = rng.randrange(1, entries)
            t = time.perf_counter()
            proof = await audit_log.consistency_proof(connection, old, entries)
            consistency.append(time.perf_counter() - t)
            if len(consistency) <= 5:  # verifying needs the old root: check a few
                old_root = merkle.root_from_leaf_hashes(leaf_hashes[:old])
                merkle.verify_consistency(old, entries, proof, old_root, root)
    finally:
        await connection.close()
    inclusion_ms = statistics.median(inclusion) * 1000
    consistency_ms = statistics.median(consistency) * 1000
    return {
        "entries": entries,
        "bulk_load_s": load_s,
        "recompute_root_ms": recompute_s * 1000,
        "inclusion_median_ms": inclusion_ms,
        "inclusion_p99_ms": sorted(inclusion)[int(len(inclusion) * 0.99)] * 1000,
        "consistency_median_ms": consistency_ms,
        "consistency_p99_ms": sorted(consistency)[int(len(consistency) * 0.99)] * 1000,
        "recompute_over_inclusion": recompute_s * 1000 / inclusion_ms,
        "recompute_over_consistency": recompute_s * 1000 / consistency_ms,
    }


async def run(args: argparse.Namespace, server_url: str) -> dict[str, object]:
    appends = await bench_appends(server_url, args.events)
    print(
        f"appends: {appends['appends_per_s']:.0f}/s with {WRITERS} writers through the outbox"
        f" (target >= 5000); outbox-only inserts {appends['outbox_only_inserts_per_s']:.0f}/s;"
        f" sequencer alone {appends['sequencer_alone_per_s']:.0f}/s;"
        f" ratio {appends['ratio_vs_outbox_only']:.2f}",
        flush=True,
    )
    proofs = await bench_proofs(server_url, args.entries, args.proofs)
    print(
        f"proofs at {proofs['entries']} entries: inclusion {proofs['inclusion_median_ms']:.2f} ms"
        f" (p99 {proofs['inclusion_p99_ms']:.2f}), consistency"
        f" {proofs['consistency_median_ms']:.2f} ms (p99 {proofs['consistency_p99_ms']:.2f});"
        f" recomputing the root {proofs['recompute_root_ms']:.0f} ms"
        f" = {proofs['recompute_over_inclusion']:.0f}x an inclusion proof;"
        f" bulk load {proofs['bulk_load_s']:.0f} s"
    )
    return {"appends": appends, "proofs": proofs, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=500)
    args = parser.parse_args()
    configured = os.environ.get("BENCH_DATABASE_URL")
    root = None
    server = None
    if configured:
        server_url = configured
    else:
        from pgserver.postgres_server import get_server

        root = tempfile.mkdtemp(prefix="bapg-", dir="/tmp")
        os.chmod(root, 0o755)  # noqa: S103 - pgserver drops privileges when run as root
        server = get_server(Path(root), cleanup_mode="stop")
        server_url = server.get_uri()
    try:
        result = asyncio.run(run(args, server_url))
    finally:
        if server is not None:
            server.cleanup()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
