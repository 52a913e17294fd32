"""The ``officials`` table: who an official is, where it works and what it may do.

Repositories of the identity package take the caller's connection and never open a
transaction: the identity service (gateway/identity/service.py) owns each unit of work and
its audit events. Times always come from the caller (the gateway's clock), never from
``now()`` in SQL, so a test clock and the database agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import DbConnection
from storage.identity.errors import InvalidRoles, OfficialNotFound
from storage.vocabulary import OfficialStatus, Role

ROLES: frozenset[Role] = frozenset(Role)
# What a dept_admin may grant, in its own department only; the rest needs an admin.
DEPT_ADMIN_GRANTABLE: frozenset[Role] = frozenset(
    {Role.CLERK, Role.LEADER, Role.SEAL_KEEPER, Role.SYSTEM}
)
# Roles only an admin grants.
ADMIN_GRANTED_ROLES = ROLES - DEPT_ADMIN_GRANTABLE


@dataclass(frozen=True)
class Official:
    id: str
    name: str
    department: str
    roles: tuple[Role, ...]
    status: OfficialStatus
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.status == OfficialStatus.ACTIVE


def official_from_row(row: asyncpg.Record) -> Official:
    return Official(
        id=row["id"],
        name=row["name"],
        department=row["department"],
        roles=tuple(Role(role) for role in row["roles"]),
        status=OfficialStatus(row["status"]),
        created_at=row["created_at"],
    )


OFFICIAL_COLUMNS = "o.id, o.name, o.department, o.roles, o.status, o.created_at"


def normalize_roles(roles: Iterable[str]) -> tuple[Role, ...]:
    """Sorted, de-duplicated, every one a known role."""
    chosen = sorted(set(roles))
    unknown = [role for role in chosen if role not in ROLES]
    if unknown:
        raise InvalidRoles(f"unknown role(s): {', '.join(unknown)}")
    return tuple(Role(role) for role in chosen)


async def department_exists(connection: DbConnection, code: str) -> bool:
    found = await connection.fetchval("SELECT 1 FROM departments WHERE code = $1", code)
    return found is not None


async def get_official(
    connection: DbConnection, official_id: str, *, for_update: bool = False
) -> Official:
    try:
        uuid.UUID(official_id)
    except ValueError:
        raise OfficialNotFound("no such official") from None
    lock = " FOR UPDATE" if for_update else ""
    row = await connection.fetchrow(
        f"SELECT {OFFICIAL_COLUMNS} FROM officials o WHERE o.id = $1{lock}",  # noqa: S608
        official_id.lower(),
    )
    if row is None:
        raise OfficialNotFound("no such official")
    return official_from_row(row)


async def insert_official(
    connection: DbConnection,
    *,
    official_id: str,
    name: str,
    department: str,
    roles: Sequence[str],
    now: datetime,
) -> Official:
    row = await connection.fetchrow(
        "INSERT INTO officials AS o (id, name, department, roles, created_at, updated_at)"  # noqa: S608 (constant column lists)
        f" VALUES ($1, $2, $3, $4, $5, $5) RETURNING {OFFICIAL_COLUMNS}",
        official_id,
        name,
        department,
        list(roles),
        now,
    )
    assert row is not None
    return official_from_row(row)


async def set_disabled(connection: DbConnection, official_id: str, *, now: datetime) -> Official:
    row = await connection.fetchrow(
        "UPDATE officials o SET status = 'disabled', updated_at = $2 WHERE o.id = $1"  # noqa: S608 (constant column lists)
        f" RETURNING {OFFICIAL_COLUMNS}",
        official_id,
        now,
    )
    if row is None:
        raise OfficialNotFound("no such official")
    return official_from_row(row)


async def move(
    connection: DbConnection,
    official_id: str,
    *,
    department: str,
    roles: Sequence[str],
    now: datetime,
) -> Official:
    """Put the official in *department* with exactly *roles*."""
    row = await connection.fetchrow(
        "UPDATE officials o SET department = $2, roles = $3, updated_at = $4 WHERE o.id = $1"  # noqa: S608 (constant column lists)
        f" RETURNING {OFFICIAL_COLUMNS}",
        official_id,
        department,
        list(roles),
        now,
    )
    if row is None:
        raise OfficialNotFound("no such official")
    return official_from_row(row)


@dataclass(frozen=True)
class ListedOfficial:
    """An official as a department's list shows it: whether it has a key that works."""

    official: Official
    has_key: bool


async def list_officials(
    connection: DbConnection,
    department: str,
    *,
    text: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[ListedOfficial]:
    """One page of *department*'s officials in (name, id) order (keyset: stable under
    inserts). *text* is found literally (no LIKE wildcards) in the name or the id."""
    rows = await connection.fetch(
        f"SELECT {OFFICIAL_COLUMNS},"  # noqa: S608 (constant column lists)
        " EXISTS (SELECT 1 FROM official_keys k"
        "  WHERE k.official_id = o.id AND k.revoked_at IS NULL) AS has_key"
        " FROM officials o WHERE o.department = $1"
        " AND ($2::text IS NULL OR strpos(lower(o.name), lower($2)) > 0"
        "  OR strpos(o.id, lower($2)) > 0)"
        " AND ($3::text IS NULL OR (o.name, o.id) > ($3, $4))"
        " ORDER BY o.name, o.id LIMIT $5",
        department,
        text,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [ListedOfficial(official_from_row(row), bool(row["has_key"])) for row in rows]
