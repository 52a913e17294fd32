"""Audit log Merkle math at one million entries: appends, and proofs from stored nodes.

A dict of perfect nodes stands in for the database table. Proof times (plan + dict lookups
+ assemble) are compared with the naive way of answering the same question, recomputing
hashes over every leaf, measured in the same run because these machines are shared and
noisy. Prints ratios and writes bench/results/merkle.json.

    .venv/bin/python bench/bench_merkle.py [--leaves 1000000] [--proofs 2000]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from storage.merkle import (
    Frontier,
    NodeId,
    append_leaves,
    consistency_plan,
    frontier_from_nodes,
    inclusion_plan,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

T = TypeVar("T")
RESULTS = Path(__file__).resolve().parent / "results" / "merkle.json"


def _timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def build(leaves: list[bytes], batch: int) -> tuple[dict[NodeId, bytes], Frontier]:
    """Append in sequencer-sized batches, keeping every perfect node like the DB table."""
    store: dict[NodeId, bytes] = {}
    frontier = Frontier.empty()
    for start in range(0, len(leaves), batch):
        result = append_leaves(frontier, leaves[start : start + batch])
        store.update(result.new_nodes)
        frontier = result.frontier
    return store, frontier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000, help="leaves per append call")
    parser.add_argument("--seed", type=int, default=9162)
    args = parser.parse_args()
    n = args.leaves
    rng = random.Random(args.seed)

    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]

    # Two million stored tuples make the cyclic GC rescan the stand-in "table" over and over
    # (about +60 % here); a real sequencer holds one batch at a time, so leave that out.
    gc.disable()
    (store, frontier), build_s = _timed(build, leaves, args.batch)
    gc.enable()
    reference_root, reference_s = _timed(root_from_leaf_hashes, leaves)
    if frontier.root() != reference_root:
        raise SystemExit("incremental root differs from the reference root")
    # The naive answer to "prove leaf m" or "prove consistency with size m" rehashes the
    # whole tree (at least); one full root recomputation is a lower bound for it.
    baseline_s = reference_s

    inclusion_s: list[float] = []
    inclusion_nodes: list[int] = []
    verify_s: list[float] = []
    for _ in range(args.proofs):
        size = rng.randint(1, n)
        index = rng.randrange(size)
        start = time.perf_counter()
        plan = inclusion_plan(index, size)
        fetched = {node: store[node] for node in plan.needed_nodes}  # one "SELECT ... IN"
        proof = plan.assemble(fetched)
        inclusion_s.append(time.perf_counter() - start)
        inclusion_nodes.append(len(plan.needed_nodes))
        # The root of an older tree comes from its stored frontier, O(log n).
        root = frontier_from_nodes(size, store).root()
        start = time.perf_counter()
        verify_inclusion(leaves[index], index, size, proof, root)
        verify_s.append(time.perf_counter() - start)

    consistency_s: list[float] = []
    consistency_nodes: list[int] = []
    for _ in range(args.proofs):
        old = rng.randint(1, n)
        start = time.perf_counter()
        plan = consistency_plan(old, n)
        fetched = {node: store[node] for node in plan.needed_nodes}
        proof = plan.assemble(fetched)
        consistency_s.append(time.perf_counter() - start)
        consistency_nodes.append(len(plan.needed_nodes))

    # Check a sample against independently computed old roots (each costs O(old)).
    for _ in range(5):
        old = rng.randint(1, n)
        proof = consistency_plan(old, n).assemble(store)
        verify_consistency(old, n, proof, root_from_leaf_hashes(leaves[:old]), reference_root)
    for _ in range(200):
        index = rng.randrange(n)
        proof = inclusion_plan(index, n).assemble(store)
        verify_inclusion(leaves[index], index, n, proof, reference_root)

    incl_median = statistics.median(inclusion_s)
    cons_median = statistics.median(consistency_s)
    results = {
        "benchmark": "merkle",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "leaves": n,
        "append_batch": args.batch,
        "gc_disabled_during_build": True,
        "stored_nodes": len(store),
        "build_seconds": build_s,
        "appends_per_second": n / build_s,
        "reference_root_seconds": reference_s,
        "build_vs_reference_root_ratio": build_s / reference_s,
        "proofs_timed": args.proofs,
        "inclusion_median_seconds": incl_median,
        "inclusion_p99_seconds": statistics.quantiles(inclusion_s, n=100)[98],
        "inclusion_max_nodes_fetched": max(inclusion_nodes),
        "consistency_median_seconds": cons_median,
        "consistency_p99_seconds": statistics.quantiles(consistency_s, n=100)[98],
        "consistency_max_nodes_fetched": max(consistency_nodes),
        "verify_inclusion_median_seconds": statistics.median(verify_s),
        "speedup_inclusion_vs_recompute": baseline_s / incl_median,
        "speedup_consistency_vs_recompute": baseline_s / cons_median,
    }

    print(f"leaves: {n:,}  stored perfect nodes: {len(store):,}")
    print(
        f"build (batches of {args.batch}): {build_s:.2f} s, {n / build_s:,.0f} appends/s; "
        f"reference root over all leaves: {reference_s:.2f} s "
        f"(build/reference = {build_s / reference_s:.2f}x)"
    )
    print(
        f"inclusion proof (plan + fetch + assemble): median {incl_median * 1e6:.1f} us, "
        f"<= {max(inclusion_nodes)} nodes; {baseline_s / incl_median:,.0f}x faster than "
        "recomputing from all leaves"
    )
    print(
        f"consistency proof (plan + fetch + assemble): median {cons_median * 1e6:.1f} us, "
        f"<= {max(consistency_nodes)} nodes; {baseline_s / cons_median:,.0f}x faster than "
        "recomputing from all leaves"
    )
    print(f"verify inclusion: median {statistics.median(verify_s) * 1e6:.1f} us")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
