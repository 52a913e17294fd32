"""Supervision statistics over a year of exchange: one million deliveries.

Bulk-loads a year of documents and deliveries with COPY (234 departments, a skewed share
of the traffic per department, realistic states and sign-for times), then times
``storage.supervision.department_stats`` (the query behind GET /v1/supervision/stats) for
the busiest department, a typical one and every department at once, over the whole year.
Baseline, in the same run on the same table: a plain ``SELECT count(*) FROM deliveries``.
Also times the evaluator's overdue-deliveries query. Target: one department's year under
200 ms.

Uses ``BENCH_DATABASE_URL`` or starts pgserver in a temporary directory. Writes
bench/results/supervision.json.

    .venv/bin/python bench/bench_supervision.py [--deliveries 1000000] [--repeat 15]
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
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.supervision import views
from storage import supervision
from storage.db import APP_ROLE, connect
from storage.migrate import migrate

RESULTS = Path(__file__).resolve().parent / "results" / "supervision.json"
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
NOW = YEAR_START + YEAR
DEPARTMENTS = [f"b{n:03d}" for n in range(234)]
SIGN_FOR_WITHIN = {
    "very_urgent": timedelta(hours=2),
    "urgent": timedelta(hours=24),
    "normal": timedelta(hours=72),
}
TARGET_MS = 200.0


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


def _weights() -> list[float]:
    """Zipf-like: the city government office gets the most, small bureaus little."""
    return [1.0 / (rank + 1) ** 0.8 for rank in range(len(DEPARTMENTS))]


def _generate(
    total: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    documents: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    weights = _weights()
    sha = "0" * 64
    number = 0
    while len(deliveries) < total:
        number += 1
        sender = rng.choices(DEPARTMENTS, weights)[0]
        created = YEAR_START + timedelta(seconds=rng.uniform(0, YEAR.total_seconds() - 3600))
        urgency = rng.choices(("normal", "urgent", "very_urgent"), (80, 15, 5))[0]
        deadline = created + timedelta(days=rng.randint(1, 10)) if rng.random() < 0.1 else None
        due = deadline or created + SIGN_FOR_WITHIN[urgency]
        document_id = uuid.uuid4()
        withdrawn = rng.random() < 0.02
        documents.append(
            (
                document_id,
                sender,
                "bench",
                "关于做好年度工作的通知",
                f"玉测发〔2026〕{number}号",
                2026,
                urgency,
                "internal",
                deadline,
                "withdrawn" if withdrawn else "dispatched",
                "obj",
                sha,
                1,
                created,
                created,
            )
        )
        fanout = min(1 + int(rng.expovariate(1 / 3)), 60, total - len(deliveries))
        for recipient in set(rng.choices(DEPARTMENTS, weights, k=fanout)) - {sender}:
            if withdrawn:
                state, decided = "withdrawn", None
            else:
                # Sign-for time: minutes to days, mostly within the due time.
                took = timedelta(hours=rng.lognormvariate(1.5, 1.2))
                decided = created + took
                if decided > NOW:
                    state, decided = rng.choice(("pending", "fetched")), None
                elif rng.random() < 0.004:
                    state, decided = "pending", None  # forgotten: overdue now
                else:
                    state = "rejected" if rng.random() < 0.04 else "received"
            deliveries.append(
                (uuid.uuid4(), document_id, recipient, False, state, created, due, decided)
            )
    return documents, deliveries


async def _load(url: str, total: int) -> dict[str, float]:
    rng = random.Random(20261126)
    started = time.perf_counter()
    documents, deliveries = _generate(total, rng)
    generated = time.perf_counter() - started
    connection = await connect(url)
    try:
        await connection.copy_records_to_table(
            "departments",
            records=[(code, f"单位{code}", "bureau") for code in DEPARTMENTS],
            columns=["code", "name", "kind"],
        )
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "documents",
            records=documents,
            columns=[
                "id",
                "sender",
                "created_by",
                "title",
                "doc_number",
                "doc_year",
                "urgency",
                "classification",
                "deadline",
                "status",
                "draft_object",
                "draft_sha256",
                "draft_size",
                "created_at",
                "dispatched_at",
            ],
        )
        await connection.copy_records_to_table(
            "deliveries",
            records=deliveries,
            columns=[
                "id",
                "document",
                "recipient",
                "copy",
                "state",
                "created_at",
                "due_at",
                "decided_at",
            ],
        )
        copied = time.perf_counter() - started
        started = time.perf_counter()
        # What autovacuum does after a load: statistics and the visibility map (index-only).
        await connection.execute("VACUUM ANALYZE documents")
        await connection.execute("VACUUM ANALYZE deliveries")
        vacuumed = time.perf_counter() - started
    finally:
        await connection.close()
    return {
        "documents": len(documents),
        "deliveries": len(deliveries),
        "generate_s": generated,
        "copy_s": copied,
        "vacuum_analyze_s": vacuumed,
    }


async def _time(call: Callable[[], Awaitable[object]], repeat: int) -> dict[str, float]:
    await call()  # warm: plan cache, buffers
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "max_ms": samples[-1], "min_ms": samples[0]}


async def run(args: argparse.Namespace, server_url: str) -> dict[str, Any]:
    url = await _new_database(server_url)
    load = await _load(url, args.deliveries)
    print(
        f"loaded {load['deliveries']} deliveries of {load['documents']} documents:"
        f" COPY {load['copy_s']:.1f} s, VACUUM ANALYZE {load['vacuum_analyze_s']:.1f} s"
    )
    connection = await connect(url, role=APP_ROLE)
    try:
        busiest = await connection.fetchval(
            "SELECT recipient FROM deliveries GROUP BY recipient ORDER BY count(*) DESC LIMIT 1"
        )
        typical = DEPARTMENTS[len(DEPARTMENTS) // 2]
        per_department = {
            code: await connection.fetchval(
                "SELECT count(*) FROM deliveries WHERE recipient = $1", code
            )
            for code in (busiest, typical)
        }

        async def baseline() -> object:
            return await connection.fetchval("SELECT count(*) FROM deliveries")

        def stats_of(department: str | None) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                return await supervision.department_stats(
                    connection, since=YEAR_START, until=NOW, now=NOW, department=department
                )

            return call

        async def overdue() -> object:
            return await supervision.overdue_deliveries(connection, NOW)

        timings = {
            "baseline_count_all": await _time(baseline, args.repeat),
            "stats_busiest_department_year": await _time(stats_of(busiest), args.repeat),
            "stats_typical_department_year": await _time(stats_of(typical), args.repeat),
            "stats_all_departments_year": await _time(stats_of(None), max(3, args.repeat // 3)),
            "evaluator_overdue_query": await _time(overdue, args.repeat),
        }
        (sample,) = await supervision.department_stats(
            connection, since=YEAR_START, until=NOW, now=NOW, department=busiest
        )
        overdue_count = len(await supervision.overdue_deliveries(connection, NOW))
    finally:
        await connection.close()
    base = timings["baseline_count_all"]["median_ms"]
    ratios = {name: value["median_ms"] / base for name, value in timings.items()}
    for name, value in timings.items():
        print(
            f"{name:32s} median {value['median_ms']:8.1f} ms  max {value['max_ms']:8.1f} ms"
            f"  = {ratios[name]:.2f}x count(*)"
        )
    busiest_ms = timings["stats_busiest_department_year"]["median_ms"]
    print(
        f"busiest department {busiest}: {per_department[busiest]} deliveries in the year,"
        f" stats {busiest_ms:.1f} ms (target < {TARGET_MS:.0f} ms:"
        f" {'met' if busiest_ms < TARGET_MS else 'MISSED'}); overdue now: {overdue_count}"
    )
    return {
        "load": load,
        "departments": len(DEPARTMENTS),
        "busiest": {"department": busiest, "deliveries": per_department[busiest]},
        "typical": {"department": typical, "deliveries": per_department[typical]},
        "busiest_stats": views.department_stats_json(sample),
        "overdue_now_total": overdue_count,
        "timings": timings,
        "ratio_to_count_all": ratios,
        "target_ms": TARGET_MS,
        "target_met": busiest_ms < TARGET_MS,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    configured = os.environ.get("BENCH_DATABASE_URL")
    root = None
    server = None
    if configured:
        server_url = configured
    else:
        from pgserver.postgres_server import get_server

        root = tempfile.mkdtemp(prefix="bspg-", dir="/tmp")
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
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
