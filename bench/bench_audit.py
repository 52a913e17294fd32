"""Audit log in PostgreSQL: appends through the outbox, and proofs at one million entries.

1. Appends: 8 concurrent writers (one event per transaction, as producers write them) while
   the gateway's sequencer service (gateway/audit/sequencer.py, in this process) runs;
   appends/s is the rate at which events become log entries. Baselines, in the same run: the
   same writers into the outbox with no sequencer, once with the outbox trigger as it is and
   once with the trigger before migration 0010 (a NOTIFY in every transaction); and the
   sequencer alone draining a full outbox. ``--writer-processes N`` runs the writers in N child
   processes instead of the bench's own event loop: where the client's CPU is the limit and
   cores are free, that shows it (on a 2-core machine it did not help: 2 processes about the
   same, 4 and 8 slower, all processes sharing the same two cores with PostgreSQL).
   The same again with the writers' client cost taken out: 8 pgbench clients (C) insert
   into the outbox while the same service sequences, against pgbench alone.
2. Proofs: one million entries bulk-loaded with COPY (leaves and every perfect node, built by
   the same code as the sequencer), then inclusion and consistency proofs answered from the
   stored nodes (O(log n) reads) against recomputing the root from all leaf hashes.

Uses ``BENCH_DATABASE_URL`` or starts pgserver in a temporary directory. Writes
bench/results/audit.json.

    .venv/bin/python bench/bench_audit.py [--events 20000] [--entries 1000000]
        [--writer-processes 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.audit import sequencer as audit_sequencer
from gateway.audit.sequencer import AuditService, checkpoint_key
from keys.master import load_or_create_master_key
from keys.platform import ensure_platform_pki
from storage import audit_leaf, audit_log, merkle
from storage.audit_outbox import AuditEvent, record_event
from storage.db import APP_ROLE, SCHEMA, connect, create_pool
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


def _writer_process(url: str, writers: range, count: int, start: Any) -> None:
    """A child process running some of the writers (its own event loop and CPU)."""
    start.wait()
    asyncio.run(_writer_group(url, writers, count))


async def _writer_group(url: str, writers: range, count: int) -> None:
    await asyncio.gather(*(_writer(url, w, count) for w in writers))


async def _writers(url: str, total: int, processes: int) -> float:
    """Seconds for WRITERS writers to commit ``total`` events, one per transaction: all in this
    process's event loop (``processes`` 0), or spread over that many child processes."""
    per_writer = total // WRITERS
    if processes == 0:
        started = time.perf_counter()
        await _writer_group(url, range(WRITERS), per_writer)
        return time.perf_counter() - started
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    children = [
        context.Process(
            target=_writer_process,
            args=(url, range(WRITERS)[p::processes], per_writer, start),
        )
        for p in range(processes)
    ]
    for child in children:
        child.start()
    # Threads, so that this process's event loop (the sequencer) keeps running meanwhile.
    await asyncio.to_thread(start.wait)
    started = time.perf_counter()
    for child in children:
        await asyncio.to_thread(child.join)
    elapsed = time.perf_counter() - started
    if any(child.exitcode != 0 for child in children):
        raise RuntimeError("a writer process failed")
    return elapsed


async def _notify_on_every_commit(url: str) -> None:
    """The outbox trigger as it was before migration 0010: NOTIFY in every transaction."""
    owner = await connect(url)
    try:
        await owner.execute(
            "CREATE OR REPLACE FUNCTION audit_outbox_notify() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('sealhub_audit_outbox', '');"
            " RETURN NULL; END $$"
        )
    finally:
        await owner.close()


def _signer(data_dir: Path) -> audit_log.CheckpointSigner:
    platform_pki = ensure_platform_pki(
        data_dir,
        public_url="https://bench.invalid:8443",
        hostnames=["localhost"],
        master_key=load_or_create_master_key(data_dir / "master.key"),
    )
    return audit_log.CheckpointSigner(
        origin="bench.invalid:8443/audit",
        key=checkpoint_key(platform_pki.keystore),
        timestamper=platform_pki.timestamper,
    )


async def _sequenced(url: str, total: int, write: Callable[[str], Awaitable[object]]) -> float:
    """Seconds from the start of ``write(url)`` until all ``total`` events have their log
    index, with the gateway's sequencer service running in this process."""
    pool = await create_pool(url, min_size=1, max_size=2)
    watcher = await connect(url, role=APP_ROLE)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as data_dir:
        service = AuditService(pool, _signer(Path(data_dir)))
        task = asyncio.create_task(service.run())
        try:
            while not service.is_sequencer:  # noqa: ASYNC110 - watching it from outside
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            await write(url)
            while await audit_log.log_size(watcher) < total:  # noqa: ASYNC110 - polls the db
                await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert await audit_log.log_size(watcher) == total
    await watcher.close()
    await pool.close()
    return elapsed


async def bench_appends(server_url: str, total: int, processes: int) -> dict[str, float]:
    # Baselines: the same writers into the outbox with no sequencer, with the outbox trigger
    # of migration 0010 and with the one before it (a NOTIFY in every transaction).
    notify_url = await _new_database(server_url)
    await _notify_on_every_commit(notify_url)
    notify_each = await _writers(notify_url, total, processes)
    baseline_url = await _new_database(server_url)
    baseline = await _writers(baseline_url, total, processes)
    # Sequencer capacity alone: drain the outbox the baseline writers filled.
    drain = await connect(baseline_url, role=APP_ROLE)
    assert await audit_log.try_acquire_sequencer(drain)
    drain_started = time.perf_counter()
    assert await audit_sequencer.sequence_pending(drain) == total
    drain_s = time.perf_counter() - drain_started
    await drain.close()
    # The real thing: the gateway's sequencer service (in this process) while the writers
    # write; the time runs until the last event has its log index.
    elapsed = await _sequenced(
        await _new_database(server_url), total, lambda url: _writers(url, total, processes)
    )
    return {
        "events": total,
        "writers": WRITERS,
        "writer_processes": processes,
        "appends_per_s": total / elapsed,
        "outbox_only_inserts_per_s": total / baseline,
        "outbox_only_notify_each_commit_per_s": total / notify_each,
        "sequencer_alone_per_s": total / drain_s,
        "ratio_vs_outbox_only": baseline / elapsed,
        "ratio_outbox_only_vs_notify_each": notify_each / baseline,
    }


PGBENCH_SCRIPT = (
    "\\set seq random(1, 1000000000)\n"
    "INSERT INTO audit_outbox (type, at, actor_official, department, document, details)"
    " VALUES ('bench.write', now(), 'official-' || :client_id, 'dept-' || :client_id,"
    " 'doc-' || :client_id || '-' || :seq,"
    " jsonb_build_object('writer', :client_id));\n"
)


def _pgbench() -> str | None:
    """pgbench from the PostgreSQL the bench runs (pgserver's), or from PATH."""
    try:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("pgbench")


def _as_app_role(url: str) -> str:
    parts = urlsplit(url)
    options = "options=-csearch_path%3Dsealhub%20-crole%3D" + APP_ROLE
    query = f"{parts.query}&{options}" if parts.query else options
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def _pgbench_writers(pgbench: str, url: str, total: int) -> float:
    """Seconds for WRITERS pgbench clients (C, one INSERT per transaction) to commit
    ``total`` events into the outbox as the application role."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    try:
        command = [pgbench, "-n", "-c", str(WRITERS), "-j", "2", "-t", str(total // WRITERS)]
        command += ["-f", script.name, _as_app_role(url)]
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
        elapsed = time.perf_counter() - started
    finally:
        os.unlink(script.name)
    if process.returncode != 0:
        raise RuntimeError(f"pgbench failed: {err.decode()[-500:]}")
    return elapsed


async def bench_appends_pgbench(server_url: str, total: int) -> dict[str, float] | None:
    """The same appends with the writers' client cost taken out: pgbench writes, the real
    sequencer service sequences. Shows what the log sustains when the producers are not
    Python on the same two cores; the baseline is pgbench into the outbox alone."""
    pgbench = _pgbench()
    if pgbench is None:
        return None
    baseline_url = await _new_database(server_url)
    baseline = await _pgbench_writers(pgbench, baseline_url, total)
    elapsed = await _sequenced(
        await _new_database(server_url), total, lambda url: _pgbench_writers(pgbench, url, total)
    )
    return {
        "events": total,
        "writers": WRITERS,
        "appends_per_s": total / elapsed,
        "outbox_only_inserts_per_s": total / baseline,
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
                digest = audit_leaf.details_hash(salt, details)
                at = T0 + timedelta(milliseconds=index)
                leaf = audit_leaf.build_leaf(
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
    appends = await bench_appends(server_url, args.events, args.writer_processes)
    where = f"in {args.writer_processes} processes" if args.writer_processes else "in one process"
    print(
        f"appends: {appends['appends_per_s']:.0f}/s with {WRITERS} writers ({where}) through the"
        f" outbox (target >= 5000);"
        f" outbox-only inserts {appends['outbox_only_inserts_per_s']:.0f}/s"
        f" (ratio {appends['ratio_vs_outbox_only']:.2f}); with a NOTIFY in every transaction"
        f" (before 0010) {appends['outbox_only_notify_each_commit_per_s']:.0f}/s"
        f" ({appends['ratio_outbox_only_vs_notify_each']:.2f}x slower);"
        f" sequencer alone {appends['sequencer_alone_per_s']:.0f}/s",
        flush=True,
    )
    with_pgbench = await bench_appends_pgbench(server_url, args.events)
    if with_pgbench is None:
        print("appends with pgbench writers: pgbench not found, skipped", flush=True)
    else:
        print(
            f"appends: {with_pgbench['appends_per_s']:.0f}/s with {WRITERS} pgbench writers"
            f" (C clients) through the outbox, sequenced by the same service (target >= 5000);"
            f" pgbench into the outbox alone {with_pgbench['outbox_only_inserts_per_s']:.0f}/s"
            f" (ratio {with_pgbench['ratio_vs_outbox_only']:.2f})",
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
    return {
        "appends": appends,
        "appends_pgbench_writers": with_pgbench,
        "proofs": proofs,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument(
        "--writer-processes",
        type=int,
        default=0,
        help="spread the writers over this many processes (0: all in the bench's own)",
    )
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
