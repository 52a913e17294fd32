"""Seals and seal requests as JSON: each schema beside the function that renders it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.http.openapi import json_content
from storage.seals import Seal, SealRequest

SEAL = json_content(
    {
        "type": "object",
        "required": [
            "id",
            "department",
            "purpose",
            "status",
            "certificate_pem",
            "valid_from",
            "valid_to",
        ],
        "properties": {
            "id": {"type": "string"},
            "department": {"type": "string"},
            "purpose": {"type": "string"},
            "status": {"type": "string"},
            "certificate_pem": {"type": "string"},
            "valid_from": {"type": "string"},
            "valid_to": {"type": "string"},
            "revoked_at": {"type": ["string", "null"]},
            "invalid_since": {"type": ["string", "null"]},
        },
    }
)
SEAL_REQUEST = json_content(
    {
        "type": "object",
        "required": ["id", "department", "kind", "status"],
        "properties": {
            "id": {"type": "string"},
            "department": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string"},
            "purpose": {"type": "string"},
            "seal_id": {"type": ["string", "null"]},
            "invalid_since": {"type": ["string", "null"]},
        },
    }
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def seal_json(seal: Seal) -> dict[str, Any]:
    return {
        "id": str(seal.id),
        "department": seal.department,
        "purpose": seal.purpose,
        "status": seal.status,
        "certificate_pem": seal.certificate_pem,
        "valid_from": _iso(seal.valid_from),
        "valid_to": _iso(seal.valid_to),
        "revoked_at": _iso(seal.revoked_at),
        "invalid_since": _iso(seal.invalid_since),
    }


def seal_list_json(seals: list[Seal]) -> dict[str, Any]:
    return {"items": [seal_json(seal) for seal in seals], "next_cursor": None}


def request_json(made: SealRequest) -> dict[str, Any]:
    return {
        "id": str(made.id),
        "department": made.department,
        "kind": made.kind,
        "purpose": made.purpose,
        "seal_id": str(made.seal_id) if made.seal_id else None,
        "invalid_since": _iso(made.invalid_since),
        "status": made.status,
        "requested_by": made.requested_by,
        "requested_at": _iso(made.requested_at),
        "decided_by": made.decided_by,
        "decided_at": _iso(made.decided_at),
    }
