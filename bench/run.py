"""Every benchmark in bench/, and one table: each figure beside its baseline from the same run,
the ratio, the target (issue 20's table, or the bench's own) and whether it is met.

    .venv/bin/python bench/run.py [--quick] [--only seal,audit] [--compare EARLIER.json]
        [--from-results]

Each bench runs as its own process, as it does alone (its own PostgreSQL, its own RSS, its
own sys.path), and writes bench/results/<name>.json; this script reads those files, so
nothing is parsed from printed text. Output of each bench goes to bench/results/<name>.log.
``--quick`` runs smaller sizes (a minute or two): the figures show the code works end to end,
but targets stated for full sizes (500 departments, 200 MB) are only indicative then.
``--from-results`` rebuilds the table from the JSON files of an earlier run without running.
Writes bench/results/all.json; ``--compare`` prints the change of each measure against an
earlier all.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ALL = RESULTS / "all.json"


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    quick_env: dict[str, str] = field(default_factory=dict)


BENCHES = (
    Bench("seal", "bench_seal.py", ("--seconds", "6"), ("--seconds", "1.5")),
    Bench("fanout", "bench_fanout.py", quick_env={"BENCH_RECIPIENTS": "50"}),
    Bench(
        "audit",
        "bench_audit.py",
        quick=("--events", "2000", "--entries", "20000", "--proofs", "50"),
    ),
    Bench("large", "bench_large.py", ("--mb", "200"), ("--mb", "20")),
    Bench("merkle", "bench_merkle.py", quick=("--leaves", "50000", "--proofs", "200")),
    Bench("objectstore", "bench_objectstore.py", ("--mb", "200"), ("--mb", "20")),
    Bench("supervision", "bench_supervision.py", quick=("--deliveries", "20000", "--repeat", "3")),
    Bench("inbox_tls", "bench_inbox_tls.py", ("--seconds", "8"), ("--seconds", "3")),
)


@dataclass
class Row:
    """One measure: the figure, its baseline from the same run, their ratio, the target."""

    key: str
    measure: str
    figure: float | None = None
    unit: str = ""
    baseline: float | None = None
    baseline_what: str = ""
    ratio: float | None = None
    target: str = ""
    source: str = ""  # "issue 20" or "bench"
    met: bool | None = None
    status: str = ""

    def settle(self) -> Row:
        if self.status:
            return self
        if self.figure is None:
            self.status = "not measured"
        elif self.met is None:
            self.status = "no target" if not self.target else "?"
        else:
            self.status = "met" if self.met else "NOT MET"
        return self


def not_measured(key: str, measure: str, target: str, why: str) -> Row:
    return Row(key, measure, target=target, source="issue 20", status="not measured", unit=why)


def seal_rows(r: dict[str, Any]) -> list[Row]:
    plain, ours = r["plain_pyhanko"], r["ours"]
    ratios = r["ratios"]
    own_ratio = ratios.get("seal_b_lt_vs_sign_pdf_b_lt_platform_tsa")
    rows: list[Row] = []
    if own_ratio is None:
        rows.append(
            not_measured(
                "seal_b_lt_vs_sign_pdf_b_lt",
                "sealing B-LT, own TSA, vs plain sign_pdf B-LT, same TSA",
                ">= 5x",
                "no plain B-LT baseline",
            )
        )
    else:
        valid = all(r["platform_tsa_b_lt_valid_in_verify"].values())
        rows.append(
            Row(
                "seal_b_lt_vs_sign_pdf_b_lt",
                "sealing B-LT, platform PKI and TSA, vs plain sign_pdf B-LT, same TSA",
                ours["seal_b_lt_platform_tsa"]["ms"],
                "ms",
                plain["sign_pdf_b_lt_platform_tsa"]["ms"],
                "plain sign_pdf B-LT",
                own_ratio,
                ">= 5x",
                "issue 20",
                own_ratio >= 5 and valid,
            )
        )
    if "seal_b_lt_vs_sign_pdf_b_lt_same_test_tsa" in ratios:
        rows.append(
            Row(
                "seal_b_lt_test_tsa_vs_sign_pdf_b_lt",
                "sealing B-LT vs plain sign_pdf B-LT, both pyhanko's test TSA",
                ours["seal_b_lt_test_tsa_paired"]["ms"],
                "ms",
                plain["sign_pdf_b_lt_test_tsa"]["ms"],
                "plain sign_pdf B-LT",
                ratios["seal_b_lt_vs_sign_pdf_b_lt_same_test_tsa"],
                source="bench",
            )
        )
    rows += [
        Row(
            "seal_b_b_vs_sign_pdf_b_b",
            "sealing B-B (visible, certifying) vs plain sign_pdf B-B",
            ours["seal_b_b_visible_certifying"]["ms"],
            "ms",
            plain["sign_pdf_b_b"]["ms"],
            "plain sign_pdf B-B",
            r["ratios"]["seal_b_b_vs_sign_pdf"],
            source="bench",
        ),
        Row(
            "verify_vs_validate_pdf_signature",
            "verification vs plain validate_pdf_signature",
            ours["verify"]["ms"],
            "ms",
            plain["validate_pdf_signature"]["ms"],
            "validate_pdf_signature",
            r["ratios"]["verify_vs_validate_pdf_signature"],
            ">= 3x",
            "issue 20",
            r["ratios"]["verify_vs_validate_pdf_signature"] >= 3,
        ),
    ]
    platform_tsa = ours.get("platform_tsa_in_process_timestamp_alone")
    if platform_tsa is None:
        rows.append(not_measured("tsa_token", "one TSA token, InProcessTimeStamper", "<= 2 ms", ""))
    else:
        test_tsa = ours["test_tsa_timestamp_alone"]["ms"]
        rows.append(
            Row(
                "tsa_token",
                "one token, platform TSA via InProcessTimeStamper",
                platform_tsa["ms"],
                "ms",
                test_tsa,
                "pyhanko test TSA",
                platform_tsa["ms"] / test_tsa,
                "<= 2 ms",
                "issue 20",
                platform_tsa["ms"] <= 2,
            )
        )
    valid = r["outputs_valid_in_verify"] and all(r["outputs_valid_in_pdfsig"].values())
    rows.append(
        Row(
            "seal_outputs_valid",
            "sealed outputs valid in pdfsig and verify()",
            1.0 if valid else 0.0,
            "(1 = all)",
            target="all valid",
            source="bench",
            met=valid,
        )
    )
    return rows


def fanout_rows(r: dict[str, Any]) -> list[Row]:
    n = int(r["recipients"])
    last, inserts = r["post_to_last_wake_s"], r["insert_500_round_trips_s"]
    ratio = r["ratio_last_wake_to_500_inserts"]
    return [
        Row(
            "fanout_last_wake",
            f"one sealed document to {n} departments, POST -> last long-poll woken",
            last,
            "s",
            inserts,
            f"{n} bare INSERT round trips",
            ratio,
            "<= 0.25 s, <= 3x",
            "issue 20",
            last <= 0.25 and ratio <= 3,
        ),
        Row(
            "fanout_post_to_201",
            f"one sealed document to {n} departments, POST -> 201",
            r["post_to_201_s"],
            "s",
            inserts,
            f"{n} bare INSERT round trips",
            r["post_to_201_s"] / inserts,
            source="bench",
        ),
    ]


def audit_rows(r: dict[str, Any]) -> list[Row]:
    a = r["appends"]
    rows = [
        Row(
            "audit_appends",
            f"audit appends, {a['writers']} writers through outbox and sequencer",
            a["appends_per_s"],
            "/s",
            a["outbox_only_inserts_per_s"],
            "outbox alone",
            a["ratio_vs_outbox_only"],
            ">= 0.9x",
            "issue 20",
            a["ratio_vs_outbox_only"] >= 0.9,
        )
    ]
    pg = r.get("appends_pgbench_writers")
    if pg:
        rows.append(
            Row(
                "audit_appends_pgbench",
                f"audit appends, {pg['writers']} pgbench writers, same sequencer",
                pg["appends_per_s"],
                "/s",
                pg["outbox_only_inserts_per_s"],
                "pgbench into outbox alone",
                pg["ratio_vs_outbox_only"],
                source="bench",
            )
        )
    p = r["proofs"]
    rows.append(
        Row(
            "audit_inclusion_proof",
            f"inclusion proof from PostgreSQL at {p['entries']} entries",
            p["inclusion_median_ms"],
            "ms",
            p["recompute_root_ms"],
            "recompute root",
            p["recompute_over_inclusion"],
            source="bench",
        )
    )
    return rows


def large_rows(r: dict[str, Any]) -> list[Row]:
    mb = r["document_mb"]
    steps = ("send", "download", "verify")
    worst = max(r[f"{s}_gateway_peak_rss_growth_mb"] for s in steps)
    rows = [
        Row(
            "large_peak_rss_growth",
            f"{mb:.0f} MB document, gateway peak RSS growth (worst step)",
            worst,
            "MB",
            mb,
            "document size",
            worst / mb,
            "< 64 MB",
            "issue 20",
            worst < 64,
        )
    ]
    for step in steps:
        rows.append(
            Row(
                f"large_{step}_throughput",
                f"{mb:.0f} MB document, {step} throughput",
                r[f"{step}_mb_s"],
                "MB/s",
                r["file_copy_mb_s"],
                "file copy",
                r[f"{step}_ratio_to_file_copy"],
                source="bench",
            )
        )
    return rows


def merkle_rows(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "merkle_inclusion",
            f"Merkle inclusion proof at {r['leaves']} leaves (in memory)",
            r["inclusion_median_seconds"] * 1e6,
            "us",
            r["reference_root_seconds"] * 1e6,
            "recompute root",
            r["speedup_inclusion_vs_recompute"],
            source="bench",
        ),
        Row(
            "merkle_build",
            f"Merkle appends, {r['leaves']} leaves in batches of {r['append_batch']}",
            r["build_seconds"],
            "s",
            r["reference_root_seconds"],
            "one root over all leaves",
            r["build_vs_reference_root_ratio"],
            source="bench",
        ),
    ]


def objectstore_rows(r: dict[str, Any]) -> list[Row]:
    base = r["baseline"]
    rows = []
    for name, row in r["backends"].items():
        is_fs = name == "fs"
        rows.append(
            Row(
                f"objectstore_{name.split()[0]}_put",
                f"object store {name}, put {r['object_mb']} MB",
                row["put_mb_s"],
                "MB/s",
                base["copy_mb_s"],
                "file copy",
                row["put_vs_copy"],
                ">= 100 MB/s" if is_fs else "",
                "bench" if is_fs else "",
                row["put_mb_s"] >= 100 if is_fs else None,
            )
        )
        rows.append(
            Row(
                f"objectstore_{name.split()[0]}_get",
                f"object store {name}, get {r['object_mb']} MB",
                row["get_mb_s"],
                "MB/s",
                base["read_mb_s"],
                "file read",
                row["get_vs_read"],
                ">= 100 MB/s" if is_fs else "",
                "bench" if is_fs else "",
                row["get_mb_s"] >= 100 if is_fs else None,
            )
        )
        growth = max(row["put_rss_growth_mb"], row["get_rss_growth_mb"])
        rows.append(
            Row(
                f"objectstore_{name.split()[0]}_rss",
                f"object store {name}, peak RSS growth",
                growth,
                "MB",
                float(r["object_mb"]),
                "object size",
                growth / r["object_mb"],
                "< 64 MB",
                "bench",
                growth < 64,
            )
        )
    return rows


def supervision_rows(r: dict[str, Any]) -> list[Row]:
    t = r["timings"]
    ms = t["stats_busiest_department_year"]["median_ms"]
    return [
        Row(
            "supervision_busiest",
            f"supervision stats, busiest department, {r['load']['deliveries']} deliveries",
            ms,
            "ms",
            t["baseline_count_all"]["median_ms"],
            "count(*) of all",
            r["ratio_to_count_all"]["stats_busiest_department_year"],
            "< 200 ms",
            "bench",
            ms < 200,
        )
    ]


def inbox_tls_rows(r: dict[str, Any]) -> list[Row]:
    clients, ratio = int(r["clients"]), float(r["ratio"])
    return [
        Row(
            "inbox_tls_200_clients",
            f"GET /v1/inbox over TLS, {clients} clients, vs bare aiohttp handler",
            r["gateway_rps"],
            "req/s",
            r["bare_rps"],
            "bare aiohttp handler, same TLS",
            ratio,
            ">= 0.5x",
            "issue 20",
            ratio >= 0.5 and r["gateway_non_200"] == 0,
        )
    ]


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "seal": seal_rows,
    "fanout": fanout_rows,
    "audit": audit_rows,
    "large": large_rows,
    "merkle": merkle_rows,
    "objectstore": objectstore_rows,
    "supervision": supervision_rows,
    "inbox_tls": inbox_tls_rows,
}


def run_bench(bench: Bench, quick: bool) -> dict[str, Any]:
    """Runs one bench in its own process; its JSON results, or why there are none."""
    out = RESULTS / f"{bench.name}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if quick:
        env.update(bench.quick_env)
    command = [sys.executable, str(ROOT / "bench" / bench.script)]
    command += list(bench.quick if quick else bench.full)
    print(f"running {bench.name}: {' '.join(command[1:])} ...", end=" ", flush=True)
    started = time.perf_counter()
    with (RESULTS / f"{bench.name}.log").open("w") as log:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    ok = done.returncode == 0 and out.exists()
    print(f"{'ok' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
    entry: dict[str, Any] = {"ok": ok, "seconds": seconds, "returncode": done.returncode}
    if ok:
        entry["result"] = json.loads(out.read_text())
    else:
        entry["log_tail"] = (RESULTS / f"{bench.name}.log").read_text()[-2000:]
    return entry


# Targets stated for full sizes (500 departments, 200 MB): under --quick only indicative.
SIZE_BOUND = {"fanout_last_wake", "large_peak_rss_growth"}


def rows_for(benches: dict[str, dict[str, Any]], quick: bool) -> list[Row]:
    rows: list[Row] = []
    for name, entry in benches.items():
        if entry.get("ok"):
            try:
                rows += ROWS[name](entry["result"])
            except (KeyError, TypeError, ZeroDivisionError) as error:
                rows.append(Row(name, f"{name}: results unreadable ({error!r})", status="FAILED"))
        else:
            rows.append(Row(name, f"{name}: bench failed, see {name}.log", status="FAILED"))
    settled = [row.settle() for row in rows]
    for row in settled:
        if quick and row.key in SIZE_BOUND and row.met is not None:
            row.status += " (quick size)"
    return settled


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    header = ("measure", "figure", "baseline (same run)", "ratio", "target", "status")
    lines = [header]
    for r in rows:
        figure = f"{number(r.figure)} {r.unit}".strip() if r.figure is not None else r.unit
        baseline = (
            f"{number(r.baseline)} {r.unit} ({r.baseline_what})" if r.baseline is not None else ""
        )
        ratio = f"{number(r.ratio)}x" if r.ratio is not None else ""
        target = f"{r.target} ({r.source})" if r.target and r.source == "bench" else r.target
        lines.append((r.measure, figure, baseline, ratio, target, r.status))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in out)


def compare(rows: list[Row], earlier_path: Path) -> str:
    earlier = json.loads(earlier_path.read_text())
    before = {r["key"]: r for r in earlier.get("rows", [])}
    lines = [f"change against {earlier_path} ({earlier.get('when', '?')}):"]
    for r in rows:
        old = before.get(r.key)
        if r.figure is None or old is None or old.get("figure") is None:
            lines.append(f"  {r.measure}: no pair to compare")
            continue
        change = (r.figure - old["figure"]) / old["figure"] * 100 if old["figure"] else 0.0
        ratio = ""
        if r.ratio is not None and old.get("ratio") is not None:
            ratio = f"; ratio {number(old['ratio'])}x -> {number(r.ratio)}x"
        lines.append(
            f"  {r.measure}: {number(old['figure'])} -> {number(r.figure)} {r.unit}"
            f" ({change:+.0f} %){ratio}; {old.get('status', '?')} -> {r.status}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a minute or two")
    parser.add_argument("--only", help="comma-separated bench names: " + ",".join(ROWS))
    parser.add_argument("--compare", type=Path, help="an earlier all.json")
    parser.add_argument(
        "--from-results", action="store_true", help="do not run: read bench/results/<name>.json"
    )
    args = parser.parse_args()
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    benches: dict[str, dict[str, Any]] = {}
    for bench in chosen:
        if args.from_results:
            path = RESULTS / f"{bench.name}.json"
            benches[bench.name] = (
                {"ok": True, "result": json.loads(path.read_text())}
                if path.exists()
                else {"ok": False}
            )
        else:
            benches[bench.name] = run_bench(bench, args.quick)
    rows = rows_for(benches, args.quick)
    print()
    print(table(rows))
    if args.quick:
        print("\n--quick: smaller sizes; targets stated for full sizes are only indicative.")
    print("Figures come from a shared machine: compare ratios, not absolute numbers.")
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": [asdict(r) for r in rows],
        "benches": benches,
    }
    if args.compare:
        print()
        print(compare(rows, args.compare))
    ALL.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"\nwrote {ALL.relative_to(ROOT)}")
    if any(r.status == "FAILED" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
