"""The audit endpoints' JSON: entries, checkpoints, cosignatures, proofs and their pages,
each a TypedDict (shown in /openapi.json) beside the function that renders it; and the
cosigning body."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import encode_cursor
from gateway.http.models import RequestBody
from gateway.paging import Page
from storage.audit_leaf import format_time
from storage.audit_log import Cosignature, LogEntry, StoredCheckpoint
from storage.signed_note import NoteVerifier

MAX_NOTE_CHARS = 16384
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class CosignBody(RequestBody):
    """A checkpoint note the inspector's witness verified, and that witness's key."""

    note: str = Field(max_length=MAX_NOTE_CHARS, description="the checkpoint note, cosigned")
    verifier_key: str = Field(description="the witness's key")


class Actor(TypedDict):
    official: str | None
    jkt: str | None


class AuditEntry(TypedDict):
    """One log entry; ``leaf`` is base64 of the exact RFC 8785 leaf bytes."""

    index: int
    type: str
    at: Time
    actor: Actor
    department: str | None
    document: str | None
    details: dict[str, Any] | None
    salt: Annotated[str | None, Field(description="base64; null once erased")]
    erased: bool
    leaf: Annotated[str, Field(description="base64 of the exact RFC 8785 leaf bytes")]


class AuditEntryPage(TypedDict):
    items: list[AuditEntry]
    next_cursor: str | None


class CosignatureJson(TypedDict):
    """A witness's cosignature of a checkpoint (C2SP tlog-cosignature line)."""

    official: str | None
    verifier_key: str
    signature: str
    tree_size: int
    cosigned_at: Time


class Checkpoint(TypedDict):
    """A signed checkpoint (C2SP note), its RFC 3161 token (base64) and cosignatures."""

    tree_size: int
    root_hash: str
    note: str
    timestamp: str
    created_at: Time
    cosignatures: list[CosignatureJson]


class CheckpointPage(TypedDict):
    items: list[Checkpoint]
    next_cursor: str | None


class LogKey(TypedDict):
    verifier_key: str
    origin: str


class InclusionProof(TypedDict):
    leaf_index: int
    tree_size: int
    hashes: list[str]


ConsistencyProof = TypedDict("ConsistencyProof", {"from": int, "to": int, "hashes": list[str]})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def entry_json(entry: LogEntry) -> AuditEntry:
    return {
        "index": entry.index,
        "type": entry.type,
        "at": format_time(entry.at),
        "actor": {"official": entry.actor_official, "jkt": entry.actor_jkt},
        "department": entry.department,
        "document": entry.document,
        "details": None if entry.details is None else json.loads(entry.details),
        "salt": None if entry.salt is None else _b64(entry.salt),
        "erased": entry.erased_at is not None,
        "leaf": _b64(entry.leaf),
    }


def cosignature_json(cosignature: Cosignature) -> CosignatureJson:
    return {
        "official": cosignature.official,
        "verifier_key": cosignature.verifier_key,
        "signature": cosignature.signature_line,
        "tree_size": cosignature.tree_size,
        "cosigned_at": format_time(cosignature.created_at),
    }


def checkpoint_json(checkpoint: StoredCheckpoint) -> Checkpoint:
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": _b64(checkpoint.root_hash),
        "note": checkpoint.note,
        "timestamp": _b64(checkpoint.timestamp_token),
        "created_at": format_time(checkpoint.created_at),
        "cosignatures": [cosignature_json(c) for c in checkpoint.cosignatures],
    }


def entries_json(page: Page[LogEntry]) -> AuditEntryPage:
    last = page.last
    return {
        "items": [entry_json(entry) for entry in page.items],
        "next_cursor": None if last is None else encode_cursor({"after": last.index}),
    }


def checkpoints_json(page: Page[StoredCheckpoint], start: int) -> CheckpointPage:
    after = start + len(page.items)
    return {
        "items": [checkpoint_json(checkpoint) for checkpoint in page.items],
        "next_cursor": encode_cursor({"offset": after}) if page.more else None,
    }


def log_key_json(verifier: NoteVerifier) -> LogKey:
    return {"verifier_key": verifier.verifier_key, "origin": verifier.name}


def hashes_json(hashes: list[bytes]) -> list[str]:
    return [_b64(h) for h in hashes]


def inclusion_json(index: int, tree_size: int, hashes: list[bytes]) -> InclusionProof:
    return {"leaf_index": index, "tree_size": tree_size, "hashes": hashes_json(hashes)}


def consistency_json(old: int, new: int, hashes: list[bytes]) -> ConsistencyProof:
    return {"from": old, "to": new, "hashes": hashes_json(hashes)}
