"""RFC 9162 proof verification against every vector in tests/vectors/rfc9162
(transparency-dev/merkle), and against proofs made by the server's storage.merkle."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sealhub_sdk import VerificationError, leaf_hash, verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9162"


def _load(kind: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [(str(p.relative_to(VECTORS)), json.loads(p.read_text())) for p in files]


INCLUSION = _load("inclusion")
CONSISTENCY = _load("consistency")


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def test_the_vectors_are_there() -> None:
    assert len(INCLUSION) > 0
    assert len(CONSISTENCY) > 0
    assert len(INCLUSION) + len(CONSISTENCY) == len(list(VECTORS.rglob("*.json")))


@pytest.mark.parametrize(("name", "case"), INCLUSION, ids=[n for n, _ in INCLUSION])
def test_inclusion_vector(name: str, case: dict[str, Any]) -> None:
    def run() -> None:
        verify_inclusion(
            case["leafIdx"],
            case["treeSize"],
            _b(case["leafHash"]),
            [_b(p) for p in case["proof"] or []],
            _b(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(VerificationError):
            run()
    else:
        run()


@pytest.mark.parametrize(("name", "case"), CONSISTENCY, ids=[n for n, _ in CONSISTENCY])
def test_consistency_vector(name: str, case: dict[str, Any]) -> None:
    def run() -> None:
        verify_consistency(
            case["size1"],
            case["size2"],
            [_b(p) for p in case["proof"] or []],
            _b(case["root1"]),
            _b(case["root2"]),
        )

    if case["wantErr"]:
        with pytest.raises(VerificationError):
            run()
    else:
        run()


def test_leaf_hash_is_rfc9162() -> None:
    # SHA-256 of the single byte 0x00: the hash of an empty leaf.
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_proofs_made_by_the_server_log_verify() -> None:
    """Every inclusion and consistency proof of storage.merkle for trees up to 17 leaves."""
    from storage import merkle as server

    leaves = [server.leaf_hash(f"entry {i}".encode()) for i in range(17)]
    assert leaves[3] == leaf_hash(b"entry 3")
    for size in range(1, len(leaves) + 1):
        root = server.root_from_leaf_hashes(leaves[:size])
        for index in range(size):
            verify_inclusion(
                index, size, leaves[index], server.inclusion_proof(leaves, index, size), root
            )
        for old in range(1, size + 1):
            old_root = server.root_from_leaf_hashes(leaves[:old])
            verify_consistency(
                old, size, server.consistency_proof(leaves, old, size), old_root, root
            )
    proof = server.inclusion_proof(leaves, 5, 17)
    with pytest.raises(VerificationError):
        verify_inclusion(6, 17, leaves[5], proof, server.root_from_leaf_hashes(leaves))
