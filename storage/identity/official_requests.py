"""The ``official_requests`` table: four-eyes acts on people waiting for their second person
(an enrollment code for someone else, a privileged new official, a transfer)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from storage.db import DbConnection
from storage.identity.errors import RequestNotFound
from storage.vocabulary import OfficialRequestKind, OfficialRequestStatus

RequestKind = OfficialRequestKind
# How a pending request ends.
Decision = Literal[
    OfficialRequestStatus.APPROVED, OfficialRequestStatus.DECLINED, OfficialRequestStatus.CANCELLED
]
REQUEST_STATES = tuple(OfficialRequestStatus)


@dataclass(frozen=True)
class OfficialRequest:
    """A four-eyes act waiting for its second person."""

    id: str
    kind: OfficialRequestKind
    official: str | None
    department: str
    target_department: str | None
    payload: dict[str, Any]
    status: OfficialRequestStatus
    requested_by: str
    requested_with_kid: str | None
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None


_COLUMNS = (
    "id::text AS id, kind, official, department, target_department, payload, status,"
    " requested_by, requested_with_kid, requested_at, decided_by, decided_at"
)


def _request(row: asyncpg.Record) -> OfficialRequest:
    fields = {name: value for name, value in row.items() if name != "official_roles"}
    return OfficialRequest(
        **{
            **fields,
            "kind": OfficialRequestKind(row["kind"]),
            "status": OfficialRequestStatus(row["status"]),
            "payload": dict(row["payload"]),
        }
    )


async def find_pending(
    connection: DbConnection, kind: RequestKind, official: str
) -> OfficialRequest | None:
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM official_requests"  # noqa: S608 (constant column lists)
        " WHERE kind = $1 AND official = $2 AND status = 'pending'",
        kind,
        official,
    )
    return None if row is None else _request(row)


async def insert_request(
    connection: DbConnection,
    *,
    kind: RequestKind,
    official: str | None,
    department: str,
    target_department: str | None,
    payload: dict[str, Any],
    requested_by: str,
    requested_with_kid: str | None,
    now: datetime,
) -> OfficialRequest:
    row = await connection.fetchrow(
        "INSERT INTO official_requests (id, kind, official, department, target_department,"  # noqa: S608 (constant column lists)
        " payload, requested_by, requested_with_kid, requested_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        f" RETURNING {_COLUMNS}",
        uuid.uuid4(),
        kind,
        official,
        department,
        target_department,
        payload,
        requested_by,
        requested_with_kid,
        now,
    )
    assert row is not None
    return _request(row)


async def get_request(
    connection: DbConnection, request_id: str, *, for_update: bool = False
) -> OfficialRequest:
    try:
        parsed = uuid.UUID(request_id)
    except ValueError:
        raise RequestNotFound("no such request") from None
    lock = " FOR UPDATE" if for_update else ""
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM official_requests WHERE id = $1{lock}",  # noqa: S608
        parsed,
    )
    if row is None:
        raise RequestNotFound("no such request")
    return _request(row)


async def list_requests(
    connection: DbConnection, *, department: str | None, status: str | None, limit: int = 200
) -> list[tuple[OfficialRequest, tuple[str, ...]]]:
    """Newest first, each with the current roles of the official it concerns (none for a new
    official); *department*: only requests concerning it (either side of a transfer)."""
    rows = await connection.fetch(
        f"SELECT {_COLUMNS}, (SELECT o.roles FROM officials o"  # noqa: S608 (constant column lists)
        " WHERE o.id = official_requests.official) AS official_roles FROM official_requests"
        " WHERE ($1::text IS NULL OR department = $1 OR target_department = $1)"
        " AND ($2::text IS NULL OR status = $2)"
        " ORDER BY requested_at DESC, id DESC LIMIT $3",
        department,
        status,
        limit,
    )
    return [(_request(row), tuple(row["official_roles"] or ())) for row in rows]


async def set_decision(
    connection: DbConnection,
    request_id: str,
    *,
    status: Decision,
    decided_by: str | None,
    now: datetime,
) -> OfficialRequest:
    row = await connection.fetchrow(
        "UPDATE official_requests SET status = $2, decided_by = $3, decided_at = $4"  # noqa: S608 (constant column lists)
        f" WHERE id = $1 RETURNING {_COLUMNS}",
        uuid.UUID(request_id),
        status,
        decided_by,
        now,
    )
    if row is None:
        raise RequestNotFound("no such request")
    return _request(row)


async def cancel_pending_for(
    connection: DbConnection, official: str, *, now: datetime, keep: str | None
) -> None:
    """Cancel the official's pending requests, except request *keep* (the one being acted on)."""
    await connection.execute(
        "UPDATE official_requests SET status = 'cancelled', decided_at = $2"
        " WHERE official = $1 AND status = 'pending' AND id IS DISTINCT FROM $3::uuid",
        official,
        now,
        keep,
    )
