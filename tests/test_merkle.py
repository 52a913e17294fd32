"""RFC 9162 Merkle math: shared test vectors, an independent reference, and properties."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.merkle import (
    EMPTY_ROOT,
    Frontier,
    InvalidProofError,
    InvalidProofRequestError,
    InvalidTreeStateError,
    MerkleError,
    MissingNodeError,
    NodeId,
    append_leaves,
    consistency_plan,
    consistency_proof,
    frontier_from_nodes,
    frontier_node_ids,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_nodes_for_range,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

VECTOR_DIR = Path(__file__).resolve().parent / "vectors" / "rfc9162"


def _load(kind: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((VECTOR_DIR / kind).rglob("*.json"))
    return [(str(f.relative_to(VECTOR_DIR)), json.loads(f.read_text())) for f in files]


INCLUSION_VECTORS = _load("inclusion")
CONSISTENCY_VECTORS = _load("consistency")


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _hashes(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def test_no_vector_directory_is_empty() -> None:
    # Every case directory copied from transparency-dev/merkle must still hold its JSON files.
    # Directories nest (inclusion/additional/0/...), so every one, at any depth, counts.
    case_dirs = [d for kind in ("inclusion", "consistency") for d in (VECTOR_DIR / kind).rglob("*")]
    case_dirs = [d for d in case_dirs if d.is_dir()]
    assert len(case_dirs) >= 10
    empty = [str(d.relative_to(VECTOR_DIR)) for d in case_dirs if not any(d.rglob("*.json"))]
    assert empty == []
    assert (VECTOR_DIR / "LICENSE").is_file()


def test_vectors_were_found() -> None:
    # Guards against a path mistake turning the parametrized tests below into zero tests.
    assert len(INCLUSION_VECTORS) > 50
    assert len(CONSISTENCY_VECTORS) > 50
    assert any(not v["wantErr"] for _, v in INCLUSION_VECTORS)
    assert any(v["wantErr"] for _, v in INCLUSION_VECTORS)
    assert any(not v["wantErr"] for _, v in CONSISTENCY_VECTORS)
    assert any(v["wantErr"] for _, v in CONSISTENCY_VECTORS)


@pytest.mark.parametrize(
    "vector", [v for _, v in INCLUSION_VECTORS], ids=[n for n, _ in INCLUSION_VECTORS]
)
def test_inclusion_vector(vector: dict[str, Any]) -> None:
    def check() -> None:
        verify_inclusion(
            _b64(vector["leafHash"]),
            vector["leafIdx"],
            vector["treeSize"],
            _hashes(vector["proof"]),
            _b64(vector["root"]),
        )

    if vector["wantErr"]:
        with pytest.raises(InvalidProofError):
            check()
    else:
        check()


@pytest.mark.parametrize(
    "vector", [v for _, v in CONSISTENCY_VECTORS], ids=[n for n, _ in CONSISTENCY_VECTORS]
)
def test_consistency_vector(vector: dict[str, Any]) -> None:
    def check() -> None:
        verify_consistency(
            vector["size1"],
            vector["size2"],
            _hashes(vector["proof"]),
            _b64(vector["root1"]),
            _b64(vector["root2"]),
        )

    if vector["wantErr"]:
        with pytest.raises(InvalidProofError):
            check()
    else:
        check()


# The eight leaves of the RFC 6962 reference tree the vectors were generated from.
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
REFERENCE_HASHES = [leaf_hash(d) for d in REFERENCE_LEAVES]


def _store_for(leaf_hashes: list[bytes]) -> dict[NodeId, bytes]:
    return append_leaves(Frontier.empty(), leaf_hashes).new_nodes


def test_generated_proofs_reproduce_every_happy_vector() -> None:
    """Our provers, not just the verifiers, must match the published proofs byte for byte."""
    store = _store_for(REFERENCE_HASHES)
    checked = 0
    for name, v in INCLUSION_VECTORS:
        if v["wantErr"] or v["treeSize"] > len(REFERENCE_HASHES):
            continue
        size, index = v["treeSize"], v["leafIdx"]
        if REFERENCE_HASHES[index] != _b64(v["leafHash"]):
            continue  # a vector about some other single-leaf tree
        assert root_from_leaf_hashes(REFERENCE_HASHES[:size]) == _b64(v["root"]), name
        expected = _hashes(v["proof"])
        assert inclusion_plan(index, size).assemble(store) == expected, name
        assert inclusion_proof(REFERENCE_HASHES, index, size) == expected, name
        checked += 1
    for name, v in CONSISTENCY_VECTORS:
        if v["wantErr"] or v["size2"] > len(REFERENCE_HASHES):
            continue
        if _b64(v["root2"]) != root_from_leaf_hashes(REFERENCE_HASHES[: v["size2"]]):
            continue  # a vector about arbitrary roots, not about the reference tree
        expected = _hashes(v["proof"])
        assert consistency_plan(v["size1"], v["size2"]).assemble(store) == expected, name
        assert consistency_proof(REFERENCE_HASHES, v["size1"], v["size2"]) == expected, name
        checked += 1
    assert checked >= 8


def test_hash_prefixes_by_hand() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    # Root of the reference tree as published with RFC 6962's test data.
    assert root_from_leaf_hashes(REFERENCE_HASHES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def _mth(leaves: list[bytes]) -> bytes:
    """MTH written straight from RFC 9162 section 2.1.1, as an independent reference."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}:{i}".encode()) for i in range(n)]


def test_reference_root_matches_rfc_recursion() -> None:
    leaves = _leaves(130)
    for n in range(131):
        assert root_from_leaf_hashes(leaves[:n]) == _mth(leaves[:n])


def test_builder_one_leaf_at_a_time_matches_reference_for_every_size() -> None:
    leaves = _leaves(300)
    frontier = Frontier.empty()
    assert frontier.root() == EMPTY_ROOT
    for n, h in enumerate(leaves, start=1):
        result = append_leaves(frontier, [h])
        frontier = result.frontier
        assert frontier.size == n
        assert result.root == frontier.root() == root_from_leaf_hashes(leaves[:n])


@st.composite
def batched_tree(draw: st.DrawFn, max_size: int = 300) -> tuple[list[bytes], list[int]]:
    size = draw(st.integers(min_value=1, max_value=max_size))
    salt = draw(st.integers(min_value=0, max_value=2**32))
    batches: list[int] = []
    remaining = size
    while remaining:
        batch = draw(st.integers(min_value=1, max_value=min(remaining, 40)))
        batches.append(batch)
        remaining -= batch
    return _leaves(size, salt), batches


def _build(leaves: list[bytes], batches: list[int]) -> tuple[dict[NodeId, bytes], dict[int, bytes]]:
    """Append in batches like the sequencer would; return the node store and roots by size."""
    store: dict[NodeId, bytes] = {}
    roots = {0: EMPTY_ROOT}
    frontier = Frontier.empty()
    start = 0
    for batch in batches:
        result = append_leaves(frontier, leaves[start : start + batch])
        assert not store.keys() & result.new_nodes.keys(), "a perfect node was written twice"
        store.update(result.new_nodes)
        frontier = result.frontier
        start += batch
        roots[start] = result.root
    return store, roots


@settings(max_examples=60, deadline=None)
@given(batched_tree())
def test_builder_batches_store_every_perfect_node_once(
    tree: tuple[list[bytes], list[int]],
) -> None:
    leaves, batches = tree
    store, roots = _build(leaves, batches)
    for size, root in roots.items():
        assert root == root_from_leaf_hashes(leaves[:size])
    n = len(leaves)
    expected_ids = {
        NodeId(level, index) for level in range(n.bit_length()) for index in range(n >> level)
    }
    assert set(store) == expected_ids
    for node, value in store.items():
        assert value == root_from_leaf_hashes(leaves[node.begin : node.end])
    for size in range(n + 1):
        assert frontier_from_nodes(size, store).root() == root_from_leaf_hashes(leaves[:size])


def _flip_bit(proof: list[bytes], element: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[element])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:element], bytes(changed), *proof[element + 1 :]]


@settings(max_examples=40, deadline=None)
@given(batched_tree(), st.data())
def test_planned_proofs_verify_and_mutations_fail(
    tree: tuple[list[bytes], list[int]], data: st.DataObject
) -> None:
    leaves, batches = tree
    store, _ = _build(leaves, batches)
    n = data.draw(st.integers(min_value=1, max_value=len(leaves)), label="tree size")
    root = root_from_leaf_hashes(leaves[:n])

    for m in range(n):
        plan = inclusion_plan(m, n)
        assert all(node.end <= n for node in plan.needed_nodes)
        assert len(plan.needed_nodes) <= 2 * n.bit_length()
        assert sum(len(element) > 1 for element in plan.elements) <= 1
        verify_inclusion(leaves[m], m, n, plan.assemble(store), root)
    for m in range(1, n + 1):
        plan = consistency_plan(m, n)
        assert all(node.end <= n for node in plan.needed_nodes)
        assert len(plan.needed_nodes) <= 2 * n.bit_length()
        assert sum(len(element) > 1 for element in plan.elements) <= 1
        old_root = root_from_leaf_hashes(leaves[:m])
        verify_consistency(m, n, plan.assemble(store), old_root, root)

    # Mutations of one inclusion proof.
    m = data.draw(st.integers(min_value=0, max_value=n - 1), label="leaf index")
    proof = inclusion_plan(m, n).assemble(store)
    if proof:
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        with pytest.raises(InvalidProofError):
            verify_inclusion(leaves[m], m, n, _flip_bit(proof, element, bit), root)
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m), label="wrong index")
        with pytest.raises(InvalidProofError):
            verify_inclusion(leaves[m], other, n, proof, root)
        with pytest.raises(InvalidProofError):
            verify_inclusion(leaves[other], other, n, proof, root)
    for wrong_size in {n - 1, n + 1, 2 * n, n // 2} - {n}:
        if wrong_size <= m:
            with pytest.raises(InvalidProofError):
                verify_inclusion(leaves[m], m, wrong_size, proof, root)
            continue
        if wrong_size <= len(leaves):
            # Against the genuine root of that size the proof can never pass.
            with pytest.raises(InvalidProofError):
                verify_inclusion(
                    leaves[m], m, wrong_size, proof, root_from_leaf_hashes(leaves[:wrong_size])
                )
        # Against the original root it must fail whenever the path has another shape; with
        # the same shape (e.g. index 0 of 3 vs 4) RFC 9162 cannot tell, the checkpoint does.
        if len(inclusion_plan(m, wrong_size).elements) != len(proof):
            with pytest.raises(InvalidProofError):
                verify_inclusion(leaves[m], m, wrong_size, proof, root)

    # Mutations of one consistency proof.
    old = data.draw(st.integers(min_value=1, max_value=n), label="old size")
    old_root = root_from_leaf_hashes(leaves[:old])
    cproof = consistency_plan(old, n).assemble(store)
    if cproof:
        element = data.draw(st.integers(0, len(cproof) - 1), label="c element")
        bit = data.draw(st.integers(0, 255), label="c bit")
        with pytest.raises(InvalidProofError):
            verify_consistency(old, n, _flip_bit(cproof, element, bit), old_root, root)
    for wrong_old in {old - 1, old + 1} - {0}:
        if wrong_old <= n:
            with pytest.raises(InvalidProofError):
                verify_consistency(
                    wrong_old, n, cproof, root_from_leaf_hashes(leaves[:wrong_old]), root
                )
    for wrong_new in {n - 1, n + 1}:
        if old <= wrong_new <= len(leaves):
            with pytest.raises(InvalidProofError):
                verify_consistency(
                    old, wrong_new, cproof, old_root, root_from_leaf_hashes(leaves[:wrong_new])
                )


def test_planner_matches_in_memory_proofs_for_all_pairs_up_to_64() -> None:
    leaves = _leaves(64, salt=7)
    store = _store_for(leaves)
    for n in range(1, 65):
        for m in range(n):
            assert inclusion_plan(m, n).assemble(store) == inclusion_proof(leaves, m, n)
        for m in range(1, n + 1):
            expected = consistency_proof(leaves, m, n)
            assert consistency_plan(m, n).assemble(store) == expected
            verify_consistency(m, n, expected, _mth(leaves[:m]), _mth(leaves[:n]))


def test_plan_needs_few_nodes_in_a_large_tree() -> None:
    size = 1_000_003
    plan = inclusion_plan(999_999, size)
    assert len(plan.elements) <= 20
    assert len(plan.needed_nodes) <= 40
    assert len(set(plan.needed_nodes)) == len(plan.needed_nodes)
    assert all(node.end <= size for node in consistency_plan(524_289, size).needed_nodes)


def test_assemble_accepts_plain_row_tuples_as_keys() -> None:
    """What a SQL layer naturally builds from ``SELECT level, index, hash`` rows."""
    leaves = _leaves(21)
    rows = [(node.level, node.index, h) for node, h in _store_for(leaves).items()]
    plan = consistency_plan(13, 21)
    wanted = set(plan.needed_nodes)
    fetched = {(level, index): h for level, index, h in rows if (level, index) in wanted}
    assert len(fetched) == len(plan.needed_nodes)
    assert plan.assemble(fetched) == consistency_proof(leaves, 13, 21)


def test_perfect_nodes_for_range_covers_exactly() -> None:
    for begin in range(0, 40):
        for end in range(begin, 70):
            nodes = perfect_nodes_for_range(begin, end)
            covered = [leaf for node in nodes for leaf in range(node.begin, node.end)]
            assert covered == list(range(begin, end))
    assert frontier_node_ids(13) == [NodeId(3, 0), NodeId(2, 2), NodeId(0, 12)]


def test_bad_requests_and_states_are_typed() -> None:
    for index, size in [(0, 0), (5, 5), (-1, 3)]:
        with pytest.raises(InvalidProofRequestError) as info:
            inclusion_plan(index, size)
        assert info.value.code == "invalid_proof_request"
    for old, new in [(0, 5), (6, 5), (-1, 2)]:
        with pytest.raises(InvalidProofRequestError):
            consistency_plan(old, new)
    with pytest.raises(InvalidProofRequestError):
        inclusion_proof(_leaves(3), 0, 4)

    with pytest.raises(MissingNodeError) as missing:
        inclusion_plan(0, 4).assemble({})
    assert missing.value.code == "merkle_node_missing"
    with pytest.raises(MissingNodeError):
        frontier_from_nodes(3, {})

    with pytest.raises(InvalidTreeStateError) as state:
        Frontier(3, (b"x" * 32,))
    assert state.value.code == "merkle_state_invalid"
    with pytest.raises(InvalidTreeStateError):
        append_leaves(Frontier.empty(), [b"short"])
    assert issubclass(InvalidProofError, MerkleError)


def test_verification_edge_cases() -> None:
    leaves = _leaves(5)
    root1, root5 = _mth(leaves[:1]), _mth(leaves)
    with pytest.raises(InvalidProofError) as info:
        verify_consistency(0, 5, [], EMPTY_ROOT, root5)
    assert info.value.code == "invalid_proof"
    verify_consistency(5, 5, [], root5, root5)
    with pytest.raises(InvalidProofError):
        verify_consistency(5, 5, [root1], root5, root5)
    with pytest.raises(InvalidProofError):
        verify_consistency(1, 5, [], root1, root5)
    proof = inclusion_proof(leaves, 2)
    with pytest.raises(InvalidProofError):
        verify_inclusion(leaves[2], 2, 5, [*proof, leaves[0]], root5)  # one element too many
    with pytest.raises(InvalidProofError):
        verify_inclusion(leaves[2], 2, 5, proof[:-1], root5)  # one element too few
    with pytest.raises(InvalidProofError):
        verify_inclusion(leaves[2], 2, 5, [p + b"\x00" for p in proof], root5)
