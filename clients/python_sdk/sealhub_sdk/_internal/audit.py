"""Audit log checks that combine the pure pieces: a checkpoint's signed note against the
log key, and an entry's leaf against a verified checkpoint (offline once fetched)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable

from sealhub_sdk._internal.errors import VerificationError
from sealhub_sdk._internal.merkle import leaf_hash, verify_consistency, verify_inclusion
from sealhub_sdk._internal.models import AuditEntry, Checkpoint, ConsistencyProof, InclusionProof
from sealhub_sdk._internal.note import CheckpointBody, NoteVerifier, open_note, parse_checkpoint
from sealhub_sdk._internal.receipts import (
    TimestampInfo,
    load_pem_certificates,
    verify_timestamp_token,
)


def verify_checkpoint(
    checkpoint: Checkpoint | str, verifier_keys: Iterable[NoteVerifier | str]
) -> CheckpointBody:
    """Open the checkpoint's note with the trusted log key(s) and parse it.

    With a :class:`Checkpoint` from the API, its JSON ``tree_size`` and ``root_hash`` must
    equal the signed values (only the note is trusted).
    """
    note = checkpoint.note if isinstance(checkpoint, Checkpoint) else checkpoint
    body = parse_checkpoint(open_note(note, verifier_keys).text)
    if isinstance(checkpoint, Checkpoint) and (
        checkpoint.tree_size != body.tree_size
        or not hmac.compare_digest(checkpoint.root_hash, body.root_hash)
    ):
        raise VerificationError(
            "the checkpoint's fields disagree with its signed note", code="checkpoint_mismatch"
        )
    return body


def verify_entry(entry: AuditEntry, proof: InclusionProof, checkpoint: CheckpointBody) -> None:
    """Raise unless *entry*'s leaf is at its index in the tree *checkpoint* signs."""
    if proof.leaf_index != entry.index or proof.tree_size != checkpoint.tree_size:
        raise VerificationError("the proof is for another entry or tree", code="proof_invalid")
    verify_inclusion(
        entry.index,
        checkpoint.tree_size,
        leaf_hash(entry.leaf),
        proof.hashes,
        checkpoint.root_hash,
    )


def verify_growth(older: CheckpointBody, newer: CheckpointBody, proof: ConsistencyProof) -> None:
    """Raise unless *newer* extends *older* (the log was only appended to)."""
    if older.origin != newer.origin:
        raise VerificationError("the checkpoints are of different logs", code="proof_invalid")
    if proof.first != older.tree_size or proof.second != newer.tree_size:
        raise VerificationError("the proof is for other tree sizes", code="proof_invalid")
    verify_consistency(
        older.tree_size, newer.tree_size, proof.hashes, older.root_hash, newer.root_hash
    )


def verify_checkpoint_timestamp(checkpoint: Checkpoint, *, ca_pem: bytes | str) -> TimestampInfo:
    """Check the checkpoint's RFC 3161 token: over SHA-256 of the whole signed note, by the
    platform TSA. Proves the log had this head no later than ``gen_time``."""
    if not checkpoint.timestamp:
        raise VerificationError("the checkpoint carries no time stamp", code="timestamp_invalid")
    try:
        token = base64.b64decode(checkpoint.timestamp, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the time stamp is not base64", code="timestamp_invalid") from None
    return verify_timestamp_token(
        token, data=checkpoint.note.encode("utf-8"), roots=load_pem_certificates(ca_pem)
    )
