"""RFC 9162 (Certificate Transparency v2) Merkle proofs, verified without trusting the server.

Leaf hash = SHA-256(0x00 || leaf), node = SHA-256(0x01 || left || right). The algorithms
follow RFC 9162 sections 2.1.3.2 and 2.1.4.2; every failure raises VerificationError.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from sealhub_sdk._internal.errors import VerificationError

HASH_SIZE = 32


def leaf_hash(leaf: bytes) -> bytes:
    """The tree hash of one log entry's exact leaf bytes."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _fail(detail: str) -> VerificationError:
    return VerificationError(detail, code="proof_invalid")


def _check_hashes(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, value in named:
        if len(value) != HASH_SIZE:
            raise _fail(f"{name} is not a SHA-256 hash")
    if any(len(p) != HASH_SIZE for p in proof):
        raise _fail("a proof element is not a SHA-256 hash")


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash_value: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 2.1.3.2)."""
    if tree_size <= 0 or not 0 <= leaf_index < tree_size:
        raise _fail("leaf index is outside the tree")
    _check_hashes(proof, ("leaf hash", leaf_hash_value))
    fn, sn = leaf_index, tree_size - 1
    result = leaf_hash_value
    for p in proof:
        if sn == 0:
            raise _fail("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = _node(p, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = _node(result, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("the inclusion proof is too short")
    return result


def verify_inclusion(
    leaf_index: int,
    tree_size: int,
    leaf_hash_value: bytes,
    proof: Sequence[bytes],
    root_hash: bytes,
) -> None:
    """Raise VerificationError unless *leaf_hash_value* is at *leaf_index* of the tree."""
    if len(root_hash) != HASH_SIZE:
        raise _fail("root is not a SHA-256 hash")
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash_value, proof)
    if not hmac.compare_digest(computed, root_hash):
        raise _fail("the inclusion proof does not lead to the root")


def verify_consistency(
    first_size: int,
    second_size: int,
    proof: Sequence[bytes],
    first_root: bytes,
    second_root: bytes,
) -> None:
    """Raise VerificationError unless the tree of *second_size* extends that of *first_size*.

    A check from size 0 proves nothing and is refused, as in the reference vectors.
    """
    if first_size <= 0:
        raise _fail("a consistency check from an empty tree proves nothing")
    if first_size > second_size:
        raise _fail("the first tree is larger than the second")
    if first_size == second_size:
        # Nothing to recompute: the same tree must have the same root (compared as given).
        if proof:
            raise _fail("equal tree sizes need an empty proof")
        if not hmac.compare_digest(first_root, second_root):
            raise _fail("equal tree sizes but different roots")
        return
    _check_hashes(proof, ("first root", first_root), ("second root", second_root))
    if not proof:
        raise _fail("the consistency proof is empty")
    elements = list(proof)
    # When first_size is a power of two its root is a node of the second tree: RFC 9162
    # leaves it out of the proof, so the walk starts from the first root itself.
    if first_size & (first_size - 1) == 0:
        elements.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = elements[0]
    for c in elements[1:]:
        if sn == 0:
            raise _fail("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("the consistency proof is too short")
    if not hmac.compare_digest(fr, first_root):
        raise _fail("the consistency proof does not lead to the first root")
    if not hmac.compare_digest(sr, second_root):
        raise _fail("the consistency proof does not lead to the second root")
