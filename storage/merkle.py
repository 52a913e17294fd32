"""RFC 9162 Merkle tree math for the audit log: hashing, incremental appends, proofs.

Pure functions only. The database layer stores every *perfect* subtree root once, keyed by
``NodeId(level, index)`` (level 0 holds the leaf hashes), and uses the planners here to know
which O(log n) rows a proof needs, fetching them with one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from keys.codes import Code, CodedError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AppendResult",
    "Frontier",
    "InvalidProofError",
    "InvalidProofRequestError",
    "InvalidTreeStateError",
    "MerkleError",
    "MissingNodeError",
    "NodeId",
    "NodeSource",
    "ProofPlan",
    "append_leaves",
    "consistency_plan",
    "consistency_proof",
    "frontier_from_nodes",
    "frontier_node_ids",
    "inclusion_plan",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "perfect_nodes_for_range",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class MerkleError(CodedError):
    """Base of the Merkle log errors; ``code`` is the stable machine code."""

    code: str = Code.MERKLE_ERROR


class InvalidProofError(MerkleError):
    """A proof does not prove what it claims (the only outcome of a failed verification)."""

    code = Code.INVALID_PROOF


class InvalidProofRequestError(MerkleError):
    """A proof was asked for sizes or an index that make no sense (e.g. index >= size)."""

    code = Code.INVALID_PROOF_REQUEST


class InvalidTreeStateError(MerkleError):
    """A frontier or leaf hash handed to the builder is inconsistent; nothing was appended."""

    code = Code.MERKLE_STATE_INVALID


class MissingNodeError(MerkleError):
    """A node the plan needs was not supplied: the node store is incomplete."""

    code = Code.MERKLE_NODE_MISSING


class NodeId(NamedTuple):
    """Root of the perfect subtree covering leaves [index * 2**level, (index + 1) * 2**level)."""

    level: int
    # Shadows tuple.index on purpose: rows from the database, plain (level, index) tuples,
    # compare and hash equal to NodeIds, so they can key the mapping handed to assemble().
    index: int  # type: ignore[assignment]

    @property
    def begin(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


class NodeSource(Protocol):
    """Stored perfect nodes: a dict keyed by NodeId or by plain ``(level, index)`` row tuples."""

    def __getitem__(self, node: NodeId, /) -> bytes: ...


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over all leaves, O(n): the reference the incremental builder is checked against.

    Pairing level by level and promoting an odd last node unchanged builds the same tree as
    RFC 9162's split at the largest power of two below n.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash of a range from its perfect subtrees, listed left to right, largest first."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def perfect_nodes_for_range(begin: int, end: int) -> list[NodeId]:
    """The fewest perfect subtrees that exactly cover leaves [begin, end), left to right."""
    if not 0 <= begin <= end:
        raise InvalidProofRequestError(f"bad leaf range [{begin}, {end})")
    nodes: list[NodeId] = []
    while begin < end:
        # Largest level at which `begin` is aligned, capped by what still fits before `end`.
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while (1 << level) > end - begin:
            level -= 1
        nodes.append(NodeId(level, begin >> level))
        begin += 1 << level
    return nodes


def frontier_node_ids(size: int) -> list[NodeId]:
    """Perfect subtrees whose hashes make up the frontier of a tree of ``size`` leaves."""
    return perfect_nodes_for_range(0, size)


@dataclass(frozen=True, slots=True)
class Frontier:
    """Right edge of a tree: roots of its perfect subtrees, left to right (a compact range).

    It holds everything needed to append leaves and compute the root without reading the
    rest of the tree.
    """

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise InvalidTreeStateError("tree size is negative")
        if len(self.hashes) != self.size.bit_count():
            raise InvalidTreeStateError(
                f"a tree of size {self.size} has {self.size.bit_count()} frontier hashes, "
                f"got {len(self.hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in self.hashes):
            raise InvalidTreeStateError("frontier hashes must be 32 bytes")

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, ())

    @property
    def node_ids(self) -> list[NodeId]:
        return frontier_node_ids(self.size)

    def root(self) -> bytes:
        return _fold_right(self.hashes) if self.hashes else EMPTY_ROOT


def frontier_from_nodes(size: int, nodes: NodeSource) -> Frontier:
    """Rebuild the frontier from stored perfect nodes (fetch ``frontier_node_ids(size)``)."""
    ids = frontier_node_ids(size)
    try:
        return Frontier(size, tuple(nodes[i] for i in ids))
    except KeyError as exc:
        raise MissingNodeError(f"frontier node {exc.args[0]} missing") from None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of an append: the state to keep and the perfect nodes to store.

    ``new_nodes`` holds every perfect node that came into existence with these leaves,
    including the leaf hashes themselves at level 0, in creation order; each is written once.
    """

    frontier: Frontier
    root: bytes
    new_nodes: dict[NodeId, bytes]


def append_leaves(frontier: Frontier, leaf_hashes: Iterable[bytes]) -> AppendResult:
    """Extend the tree by ``leaf_hashes`` (already ``leaf_hash``-ed), O(k + log n)."""
    size = frontier.size
    stack = list(frontier.hashes)
    new_nodes: dict[NodeId, bytes] = {}
    # This loop runs once per audit entry; the locals below halve its cost (see bench/).
    sha256, node_prefix, make = hashlib.sha256, _NODE_PREFIX, tuple.__new__
    for h in leaf_hashes:
        if len(h) != HASH_SIZE:
            raise InvalidTreeStateError("leaf hashes must be 32 bytes")
        new_nodes[make(NodeId, (0, size))] = h
        # Each trailing one bit of the old size is a perfect subtree of the same height as
        # the one being carried: merge them, exactly like binary addition.
        level, index = 0, size
        while index & 1:
            h = sha256(node_prefix + stack.pop() + h).digest()
            level += 1
            index >>= 1
            new_nodes[make(NodeId, (level, index))] = h
        stack.append(h)
        size += 1
    new_frontier = Frontier(size, tuple(stack))
    return AppendResult(new_frontier, new_frontier.root(), new_nodes)


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """Which stored nodes a proof needs, and how to turn them into the RFC 9162 proof.

    ``elements[i]`` lists the perfect nodes whose right fold is proof hash ``i`` (a single
    node, except for one subtree on the right edge of the tree that is not perfect).
    ``needed_nodes`` is the same set deduplicated, for one ``(level, index) IN (...)`` query.
    """

    elements: tuple[tuple[NodeId, ...], ...]
    needed_nodes: tuple[NodeId, ...] = field(init=False)

    def __post_init__(self) -> None:
        needed = dict.fromkeys(n for element in self.elements for n in element)
        object.__setattr__(self, "needed_nodes", tuple(needed))

    def assemble(self, nodes: NodeSource) -> list[bytes]:
        try:
            return [_fold_right([nodes[n] for n in element]) for element in self.elements]
        except KeyError as exc:
            raise MissingNodeError(f"proof node {exc.args[0]} missing") from None


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k, for n >= 2 (RFC 9162's split point)."""
    return 1 << ((n - 1).bit_length() - 1)


def _plan(ranges: list[tuple[int, int]]) -> ProofPlan:
    return ProofPlan(tuple(tuple(perfect_nodes_for_range(b, e)) for b, e in ranges))


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form PATH(index, D[size]), leaf side first."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form PROOF(old_size, D[new_size]) (RFC 9162 SUBPROOF)."""
    ranges: list[tuple[int, int]] = []
    lo, hi, whole_old_tree = 0, new_size, True
    while old_size != hi:
        k = _largest_power_of_two_below(hi - lo)
        if old_size <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_plan(index: int, size: int) -> ProofPlan:
    if not 0 <= index < size:
        raise InvalidProofRequestError(f"leaf index {index} is not in a tree of size {size}")
    return _plan(_inclusion_ranges(index, size))


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """Plan for PROOF(old_size, D[new_size]); an empty tree is consistent with nothing."""
    if not 0 < old_size <= new_size:
        raise InvalidProofRequestError(
            f"no consistency proof from size {old_size} to size {new_size}"
        )
    return _plan(_consistency_ranges(old_size, new_size))


def _proof_from_leaves(ranges: list[tuple[int, int]], leaf_hashes: Sequence[bytes]) -> list[bytes]:
    return [root_from_leaf_hashes(leaf_hashes[b:e]) for b, e in ranges]


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """In-memory proof straight from the RFC recursion, independent of the node store."""
    size = len(leaf_hashes) if size is None else size
    if size > len(leaf_hashes):
        raise InvalidProofRequestError(f"tree size {size} exceeds the {len(leaf_hashes)} leaves")
    inclusion_plan(index, size)  # same argument checks
    return _proof_from_leaves(_inclusion_ranges(index, size), leaf_hashes)


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, new_size: int | None = None
) -> list[bytes]:
    new_size = len(leaf_hashes) if new_size is None else new_size
    if new_size > len(leaf_hashes):
        raise InvalidProofRequestError(
            f"tree size {new_size} exceeds the {len(leaf_hashes)} leaves"
        )
    consistency_plan(old_size, new_size)
    return _proof_from_leaves(_consistency_ranges(old_size, new_size), leaf_hashes)


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    if any(len(p) != HASH_SIZE for p in proof):
        raise InvalidProofError("proof hashes must be 32 bytes")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2; returns only if ``leaf`` is at ``index`` under ``root``.

    ``leaf`` is the leaf *hash*. Raises :class:`InvalidProofError` otherwise.
    """
    if not 0 <= index < size:
        raise InvalidProofError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise InvalidProofError("leaf hash must be 32 bytes")
    _check_proof_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise InvalidProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("inclusion proof is too short")
    if r != root:
        raise InvalidProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 section 2.1.4.2; returns only if the new tree extends the old one.

    Equal sizes need equal roots and an empty proof. A consistency claim from the empty tree
    proves nothing and is refused. Raises :class:`InvalidProofError` otherwise.
    """
    if old_size <= 0:
        raise InvalidProofError("consistency from an empty tree is not a proof")
    if old_size > new_size:
        raise InvalidProofError(f"tree shrank from {old_size} to {new_size}")
    if old_size == new_size:
        if proof:
            raise InvalidProofError("proof between equal sizes must be empty")
        if old_root != new_root:
            raise InvalidProofError("roots differ for the same tree size")
        return
    if not proof:
        raise InvalidProofError("consistency proof is empty")
    _check_proof_hashes(proof)
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is itself a node of the new one
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("consistency proof is too short")
    if fr != old_root:
        raise InvalidProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise InvalidProofError("consistency proof does not lead to the new root")
