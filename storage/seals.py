"""The department seals and the requests two admins agree on: the ``seals`` and
``seal_requests`` tables, and nothing else reads or writes them.

The database is the only place a revocation lives: each process derives its CRL and its
verification input from these rows, so no process can go on trusting what another revoked.
Functions take the caller's connection and never open a transaction: the sealing service
decides what one unit of work is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import DbConnection
from storage.vocabulary import SealRequestKind, SealRequestStatus, SealStatus

_SEAL_COLUMNS = (
    "s.id, s.department, s.purpose, s.kid, s.certificate_pem, s.serial_number, s.status,"
    " s.valid_from, s.valid_to, s.issued_at, s.revoked_at, s.revocation_reason,"
    " s.invalid_since, s.request_id"
)
_REQUEST_COLUMNS = (
    "id, department, purpose, kind, seal_id, reason, reason_code, status, requested_by,"
    " requested_with_kid, requested_at, decided_by, decided_at, invalid_since"
)
_LISTED_REQUEST_COLUMNS = ", ".join("r." + name.strip() for name in _REQUEST_COLUMNS.split(","))


@dataclass(frozen=True)
class Seal:
    """One issued seal: its certificate and whether it still counts."""

    id: uuid.UUID
    department: str
    purpose: str
    kid: str
    certificate_pem: str
    serial_number: int
    status: SealStatus
    valid_from: datetime
    valid_to: datetime
    issued_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    invalid_since: datetime | None
    request_id: uuid.UUID


@dataclass(frozen=True)
class NamedSeal:
    """A seal with the name of its department, which its stamp image shows."""

    seal: Seal
    department_name: str


@dataclass(frozen=True)
class SealRequest:
    """What one admin asked for and a second one decides: a new seal or a revocation."""

    id: uuid.UUID
    department: str
    purpose: str
    kind: SealRequestKind
    seal_id: uuid.UUID | None
    reason: str | None
    reason_code: str | None
    status: SealRequestStatus
    requested_by: str
    requested_with_kid: str | None
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    invalid_since: datetime | None


@dataclass(frozen=True)
class ListedSealRequest:
    """A request as the admins' list shows it: who asked and decided by name, and the seal
    it concerns (a revocation's, or the one an approved issuance made), if there is one."""

    request: SealRequest
    department_name: str
    requester_name: str | None
    decider_name: str | None
    seal_id: uuid.UUID | None
    seal_status: SealStatus | None


@dataclass(frozen=True)
class Revocation:
    """One revoked seal certificate as a CRL entry needs it."""

    serial_number: int
    revoked_at: datetime
    reason: str | None
    invalid_since: datetime | None


def _seal(row: asyncpg.Record) -> Seal:
    return Seal(
        id=row["id"],
        department=row["department"],
        purpose=row["purpose"],
        kid=row["kid"],
        certificate_pem=row["certificate_pem"],
        serial_number=int(row["serial_number"]),
        status=SealStatus(row["status"]),
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        issued_at=row["issued_at"],
        revoked_at=row["revoked_at"],
        revocation_reason=row["revocation_reason"],
        invalid_since=row["invalid_since"],
        request_id=row["request_id"],
    )


def _request(row: asyncpg.Record) -> SealRequest:
    return SealRequest(
        id=row["id"],
        department=row["department"],
        purpose=row["purpose"],
        kind=SealRequestKind(row["kind"]),
        seal_id=row["seal_id"],
        reason=row["reason"],
        reason_code=row["reason_code"],
        status=SealRequestStatus(row["status"]),
        requested_by=row["requested_by"],
        requested_with_kid=row["requested_with_kid"],
        requested_at=row["requested_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        invalid_since=row["invalid_since"],
    )


# --- seals -----------------------------------------------------------------------------------


async def insert_seal(connection: DbConnection, seal: Seal) -> None:
    await connection.execute(
        "INSERT INTO seals (id, department, purpose, kid, certificate_pem, serial_number,"
        " valid_from, valid_to, issued_at, request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        seal.id,
        seal.department,
        seal.purpose,
        seal.kid,
        seal.certificate_pem,
        seal.serial_number,
        seal.valid_from,
        seal.valid_to,
        seal.issued_at,
        seal.request_id,
    )


async def get_seal(connection: DbConnection, seal_id: uuid.UUID) -> Seal | None:
    row = await connection.fetchrow(
        f"SELECT {_SEAL_COLUMNS} FROM seals s WHERE s.id = $1",  # noqa: S608 (constant columns)
        seal_id,
    )
    return None if row is None else _seal(row)


async def get_named_seal(connection: DbConnection, seal_id: uuid.UUID) -> NamedSeal | None:
    row = await connection.fetchrow(
        f"SELECT {_SEAL_COLUMNS}, d.name AS department_name FROM seals s"  # noqa: S608
        " JOIN departments d ON d.code = s.department WHERE s.id = $1",
        seal_id,
    )
    return None if row is None else NamedSeal(_seal(row), row["department_name"])


async def seals_of_department(connection: DbConnection, department: str) -> list[Seal]:
    """Newest first."""
    rows = await connection.fetch(
        f"SELECT {_SEAL_COLUMNS} FROM seals s WHERE s.department = $1"  # noqa: S608
        " ORDER BY s.issued_at DESC",
        department,
    )
    return [_seal(row) for row in rows]


async def seal_for_sealing(connection: DbConnection, department: str) -> NamedSeal | None:
    """The seal a new document of *department* gets: the newest unexpired active one, or,
    when none is active, the newest unexpired revoked one (so the refusal can name it)."""
    row = await connection.fetchrow(
        f"SELECT {_SEAL_COLUMNS}, d.name AS department_name FROM seals s"  # noqa: S608
        " JOIN departments d ON d.code = s.department"
        " WHERE s.department = $1 AND s.valid_to > now()"
        " ORDER BY (s.status = 'active') DESC, s.issued_at DESC LIMIT 1",
        department,
    )
    return None if row is None else NamedSeal(_seal(row), row["department_name"])


async def seal_certificates(connection: DbConnection) -> list[tuple[uuid.UUID, str]]:
    """(id, certificate PEM) of every seal the platform ever issued, revoked ones too."""
    rows = await connection.fetch("SELECT id, certificate_pem FROM seals")
    return [(row["id"], row["certificate_pem"]) for row in rows]


async def revoke_seal(
    connection: DbConnection,
    seal_id: uuid.UUID,
    *,
    now: datetime,
    reason_code: str | None,
    invalid_since: datetime | None,
) -> Seal | None:
    """Marks an active seal revoked; None when it is not active (any more)."""
    row = await connection.fetchrow(
        "UPDATE seals s SET status = 'revoked', revoked_at = $2, revocation_reason = $3,"  # noqa: S608 (constant columns)
        " invalid_since = $4 WHERE s.id = $1 AND s.status = 'active'"
        f" RETURNING {_SEAL_COLUMNS}",
        seal_id,
        now,
        reason_code,
        invalid_since,
    )
    return None if row is None else _seal(row)


async def revocations(connection: DbConnection) -> tuple[Revocation, ...]:
    """Every revoked seal, in a stable order (equal tuples mean an equal CRL)."""
    rows = await connection.fetch(
        "SELECT serial_number, revoked_at, revocation_reason, invalid_since FROM seals"
        " WHERE status = 'revoked' ORDER BY serial_number"
    )
    return tuple(
        Revocation(
            int(row["serial_number"]),
            row["revoked_at"],
            row["revocation_reason"],
            row["invalid_since"],
        )
        for row in rows
    )


async def still_active_for_dispatch(connection: DbConnection, seal_id: uuid.UUID) -> bool:
    """In the dispatch transaction: is the seal still active, and will it stay so until commit?

    ``FOR SHARE`` sees a revocation committed meanwhile (READ COMMITTED re-reads the newest
    row version) and makes a revocation that comes later wait for this commit, so a document
    is either dispatched before the revocation took effect or not at all.
    """
    status: str | None = await connection.fetchval(
        "SELECT status FROM seals WHERE id = $1 FOR SHARE", seal_id
    )
    return status == SealStatus.ACTIVE


# --- seal requests ---------------------------------------------------------------------------


async def insert_issue_request(
    connection: DbConnection,
    *,
    department: str,
    purpose: str,
    requested_by: str,
    requested_with_kid: str,
    now: datetime,
) -> SealRequest:
    row = await connection.fetchrow(
        "INSERT INTO seal_requests (id, department, purpose, kind, requested_by,"  # noqa: S608 (constant columns)
        " requested_with_kid, requested_at) VALUES ($1, $2, $3, 'issue', $4, $5, $6)"
        f" RETURNING {_REQUEST_COLUMNS}",
        uuid.uuid4(),
        department,
        purpose,
        requested_by,
        requested_with_kid,
        now,
    )
    assert row is not None
    return _request(row)


async def insert_revoke_request(
    connection: DbConnection,
    seal: Seal,
    *,
    reason: str,
    reason_code: str,
    invalid_since: datetime | None,
    requested_by: str,
    requested_with_kid: str,
    now: datetime,
) -> SealRequest:
    row = await connection.fetchrow(
        "INSERT INTO seal_requests (id, department, purpose, kind, seal_id, reason,"  # noqa: S608 (constant columns)
        " reason_code, requested_by, requested_with_kid, requested_at, invalid_since)"
        " VALUES ($1, $2, $3, 'revoke', $4, $5, $6, $7, $8, $9, $10)"
        f" RETURNING {_REQUEST_COLUMNS}",
        uuid.uuid4(),
        seal.department,
        seal.purpose,
        seal.id,
        reason,
        reason_code,
        requested_by,
        requested_with_kid,
        now,
        invalid_since,
    )
    assert row is not None
    return _request(row)


async def lock_request(connection: DbConnection, request_id: uuid.UUID) -> SealRequest | None:
    """The request, locked until the caller's transaction ends (one decision per request)."""
    row = await connection.fetchrow(
        f"SELECT {_REQUEST_COLUMNS} FROM seal_requests WHERE id = $1 FOR UPDATE",  # noqa: S608
        request_id,
    )
    return None if row is None else _request(row)


async def list_requests(
    connection: DbConnection,
    *,
    status: SealRequestStatus | None,
    department: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ListedSealRequest]:
    """Newest first, before (requested_at, id); *status* and *department* narrow it."""
    rows = await connection.fetch(
        f"SELECT {_LISTED_REQUEST_COLUMNS}, d.name AS department_name,"  # noqa: S608 (constant columns)
        " asker.name AS requester_name, decider.name AS decider_name,"
        " s.id AS shown_seal, s.status AS shown_seal_status"
        " FROM seal_requests r JOIN departments d ON d.code = r.department"
        " LEFT JOIN officials asker ON asker.id = r.requested_by"
        " LEFT JOIN officials decider ON decider.id = r.decided_by"
        " LEFT JOIN seals s ON s.id = r.seal_id OR (r.kind = 'issue' AND s.request_id = r.id)"
        " WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.department = $2)"
        " AND ($3::timestamptz IS NULL OR (r.requested_at, r.id) < ($3, $4))"
        " ORDER BY r.requested_at DESC, r.id DESC LIMIT $5",
        status,
        department,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [
        ListedSealRequest(
            _request(row),
            row["department_name"],
            row["requester_name"],
            row["decider_name"],
            row["shown_seal"],
            None if row["shown_seal_status"] is None else SealStatus(row["shown_seal_status"]),
        )
        for row in rows
    ]


async def mark_request_closed(
    connection: DbConnection,
    request_id: uuid.UUID,
    *,
    status: SealRequestStatus,
    decided_by: str | None,
    now: datetime,
) -> SealRequest:
    """A pending request ended without a seal: declined (by *decided_by*) or cancelled."""
    row = await connection.fetchrow(
        "UPDATE seal_requests SET status = $2, decided_by = $3, decided_at = $4"  # noqa: S608 (constant columns)
        f" WHERE id = $1 RETURNING {_REQUEST_COLUMNS}",
        request_id,
        status,
        decided_by,
        now,
    )
    assert row is not None  # the caller holds the row's lock
    return _request(row)


async def mark_request_approved(
    connection: DbConnection, request_id: uuid.UUID, *, decided_by: str, now: datetime
) -> None:
    await connection.execute(
        "UPDATE seal_requests SET status = 'approved', decided_by = $2, decided_at = $3"
        " WHERE id = $1",
        request_id,
        decided_by,
        now,
    )
