"""Seals and seal requests as JSON: each TypedDict (shown in /openapi.json) beside the
function that renders it."""

from __future__ import annotations

from datetime import datetime

from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from storage.seals import Seal, SealRequest
from storage.vocabulary import SealRequestKind, SealRequestStatus, SealStatus


class SealJson(TypedDict):
    """A seal: its certificate, status and validity."""

    id: str
    department: str
    purpose: str
    status: SealStatus
    certificate_pem: str
    valid_from: str
    valid_to: str
    revoked_at: str | None
    invalid_since: str | None


class SealList(TypedDict):
    items: list[SealJson]
    next_cursor: None


class SealRequestJson(TypedDict):
    """An issuance or revocation request, pending until a second admin decides."""

    id: str
    department: str
    kind: SealRequestKind
    purpose: str
    seal_id: str | None
    invalid_since: str | None
    status: SealRequestStatus
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None


def _stamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def seal_json(seal: Seal) -> SealJson:
    return {
        "id": str(seal.id),
        "department": seal.department,
        "purpose": seal.purpose,
        "status": seal.status,
        "certificate_pem": seal.certificate_pem,
        "valid_from": _stamp(seal.valid_from),
        "valid_to": _stamp(seal.valid_to),
        "revoked_at": _iso(seal.revoked_at),
        "invalid_since": _iso(seal.invalid_since),
    }


def seal_list_json(seals: list[Seal]) -> SealList:
    return {"items": [seal_json(seal) for seal in seals], "next_cursor": None}


def request_json(made: SealRequest) -> SealRequestJson:
    return {
        "id": str(made.id),
        "department": made.department,
        "kind": made.kind,
        "purpose": made.purpose,
        "seal_id": str(made.seal_id) if made.seal_id else None,
        "invalid_since": _iso(made.invalid_since),
        "status": made.status,
        "requested_by": made.requested_by,
        "requested_at": _stamp(made.requested_at),
        "decided_by": made.decided_by,
        "decided_at": _iso(made.decided_at),
    }
