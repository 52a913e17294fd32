"""Seals and seal requests as JSON: each TypedDict (shown in /openapi.json) beside the
function that renders it."""

from __future__ import annotations

from datetime import datetime

from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import time_id_cursor
from gateway.paging import Page
from storage.seals import ListedSealRequest, Seal, SealRequest
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


class Person(TypedDict):
    """An official by id and name (``name`` null for an id no official has any more)."""

    id: str
    name: str | None


class RequestedSeal(TypedDict):
    """The seal a request concerns: a revocation's, or the one an approved issuance made."""

    id: str
    status: SealStatus
    image_url: str


class ListedSealRequestJson(TypedDict):
    """A seal request in the admins' list: ``seal`` is null for an issuance not approved
    (yet); ``reason`` and ``reason_code`` are a revocation's."""

    id: str
    kind: SealRequestKind
    department: str
    department_name: str
    purpose: str
    seal: RequestedSeal | None
    reason: str | None
    reason_code: str | None
    invalid_since: str | None
    status: SealRequestStatus
    requested_by: Person
    requested_at: str
    decided_by: Person | None
    decided_at: str | None


class SealRequestPage(TypedDict):
    items: list[ListedSealRequestJson]
    next_cursor: str | None


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


def _listed(entry: ListedSealRequest) -> ListedSealRequestJson:
    made = entry.request
    seal: RequestedSeal | None = None
    if entry.seal_id is not None and entry.seal_status is not None:
        image_url = f"/v1/seals/{entry.seal_id}/image.png"
        seal = {"id": str(entry.seal_id), "status": entry.seal_status, "image_url": image_url}
    decider: Person | None = None
    if made.decided_by is not None:
        decider = {"id": made.decided_by, "name": entry.decider_name}
    return {
        "id": str(made.id),
        "kind": made.kind,
        "department": made.department,
        "department_name": entry.department_name,
        "purpose": made.purpose,
        "seal": seal,
        "reason": made.reason,
        "reason_code": made.reason_code,
        "invalid_since": _iso(made.invalid_since),
        "status": made.status,
        "requested_by": {"id": made.requested_by, "name": entry.requester_name},
        "requested_at": _stamp(made.requested_at),
        "decided_by": decider,
        "decided_at": _iso(made.decided_at),
    }


def request_page(page: Page[ListedSealRequest]) -> SealRequestPage:
    last = page.last
    cursor = None if last is None else time_id_cursor(last.request.requested_at, last.request.id)
    return {"items": [_listed(entry) for entry in page.items], "next_cursor": cursor}
