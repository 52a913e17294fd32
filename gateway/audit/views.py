"""The audit endpoints' JSON: entry and checkpoint pages, proofs, and their schemas."""

from __future__ import annotations

import base64
from typing import Any

from gateway.http.bodies import encode_cursor
from gateway.paging import Page
from storage.audit_log import LogEntry, StoredCheckpoint
from storage.signed_note import NoteVerifier

OBJECT = {"type": "object"}
ENTRY = {
    "type": "object",
    "required": ["index", "type", "at", "actor", "department", "document", "details", "leaf"],
    "properties": {
        "index": {"type": "integer"},
        "type": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "object"},
        "department": {"type": ["string", "null"]},
        "document": {"type": ["string", "null"]},
        "details": {"type": ["object", "null"]},
        "salt": {"type": ["string", "null"], "description": "base64; null once erased"},
        "erased": {"type": "boolean"},
        "leaf": {"type": "string", "description": "base64 of the exact RFC 8785 leaf bytes"},
    },
}
COSIGN_BODY = {
    "type": "object",
    "required": ["note", "verifier_key"],
    "properties": {
        "note": {"type": "string", "description": "the checkpoint note, cosigned"},
        "verifier_key": {"type": "string", "description": "the witness's key"},
    },
}


def page_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


def entries_json(page: Page[LogEntry]) -> dict[str, Any]:
    last = page.last
    return {
        "items": [entry.as_json() for entry in page.items],
        "next_cursor": None if last is None else encode_cursor({"after": last.index}),
    }


def checkpoints_json(page: Page[StoredCheckpoint], start: int) -> dict[str, Any]:
    after = start + len(page.items)
    return {
        "items": [checkpoint.as_json() for checkpoint in page.items],
        "next_cursor": encode_cursor({"offset": after}) if page.more else None,
    }


def log_key_json(verifier: NoteVerifier) -> dict[str, Any]:
    return {"verifier_key": verifier.verifier_key, "origin": verifier.name}


def hashes_json(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]
