"""Departments and distribution groups: the directory every recipient code resolves against."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from keys.codes import Code, CodedError
from storage.db import DbConnection

CODE_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
KIND_PATTERN = re.compile(r"[a-z_]{1,32}")


class DirectoryError(CodedError):
    code: str = Code.DIRECTORY_ERROR


class UnknownOrg(DirectoryError):
    code = Code.NOT_FOUND


class OrgExists(DirectoryError):
    code = Code.ALREADY_EXISTS


class UnknownParent(DirectoryError):
    code = Code.PARENT_UNKNOWN


class UnknownRecipient(DirectoryError):
    code = Code.RECIPIENT_UNKNOWN


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_en: str
    parent: str | None
    kind: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Group:
    code: str
    name: str
    members: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "members": list(self.members)}


# Department and group codes share one namespace; migration 0001's trigger looks in the other
# table, which two concurrent inserts (a unit and a group of one code) would both pass. Adding
# codes therefore takes this one lock first: additions are rare admin acts, and a bulk import
# must not hold a lock per code.
_CODE_LOCK = 0x5EA1_D1C0


async def _lock_codes(connection: DbConnection) -> None:
    """Every writer below runs in its caller's transaction, which this lock lasts for."""
    if not connection.is_in_transaction():
        raise RuntimeError("directory writes run inside the caller's transaction")
    await connection.execute("SELECT pg_advisory_xact_lock($1)", _CODE_LOCK)


def _department(row: asyncpg.Record) -> Department:
    return Department(row["code"], row["name"], row["name_en"], row["parent"], row["kind"])


async def upsert_departments(
    connection: DbConnection, departments: Sequence[Department]
) -> tuple[int, int]:
    """Insert or update units; returns (inserted, updated).

    Parents may come after their children: the foreign key is deferred to the commit of the
    caller's transaction, so an import in batches inside one transaction accepts any order,
    and a dangling parent fails the whole import there.
    """
    await _lock_codes(connection)
    existing = {
        row["code"]
        for row in await connection.fetch(
            "SELECT code FROM departments WHERE code = ANY($1::text[])",
            [department.code for department in departments],
        )
    }
    try:
        await connection.executemany(
            "INSERT INTO departments (code, name, name_en, parent, kind)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
            " name_en = EXCLUDED.name_en, parent = EXCLUDED.parent, kind = EXCLUDED.kind",
            [(d.code, d.name, d.name_en, d.parent, d.kind) for d in departments],
        )
    except asyncpg.UniqueViolationError as exc:
        raise OrgExists(str(exc)) from None
    inserted = sum(1 for department in departments if department.code not in existing)
    return inserted, len(departments) - inserted


async def create_department(connection: DbConnection, department: Department) -> None:
    """Its parent is checked at once (not at commit), so an unknown one is a clear refusal."""
    await _lock_codes(connection)
    try:
        await connection.execute(
            "INSERT INTO departments (code, name, name_en, parent, kind)"
            " VALUES ($1, $2, $3, $4, $5)",
            department.code,
            department.name,
            department.name_en,
            department.parent,
            department.kind,
        )
        await connection.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except asyncpg.UniqueViolationError:
        raise OrgExists(f"code {department.code!r} is already used") from None
    except asyncpg.ForeignKeyViolationError:
        raise UnknownParent(f"parent {department.parent!r} is not in the directory") from None


async def get_department(connection: DbConnection, code: str) -> Department:
    row = await connection.fetchrow(
        "SELECT code, name, name_en, parent, kind FROM departments WHERE code = $1", code
    )
    if row is None:
        raise UnknownOrg(f"no department {code!r}")
    return _department(row)


async def list_departments(
    connection: DbConnection,
    *,
    parent: str | None = None,
    kind: str | None = None,
    query: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Department]:
    """One page in code order (keyset pagination: stable under inserts, O(limit) reads)."""
    pattern = None if not query else "%" + _escape_like(query) + "%"
    rows = await connection.fetch(
        "SELECT code, name, name_en, parent, kind FROM departments"
        " WHERE ($1::text IS NULL OR parent = $1)"
        " AND ($2::text IS NULL OR kind = $2)"
        " AND ($3::text IS NULL OR name ILIKE $3 OR name_en ILIKE $3 OR code ILIKE $3)"
        " AND ($4::text IS NULL OR code > $4)"
        " ORDER BY code LIMIT $5",
        parent,
        kind,
        pattern,
        after,
        limit,
    )
    return [_department(row) for row in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def create_group(
    connection: DbConnection, code: str, name: str, members: Iterable[str]
) -> Group:
    member_codes = tuple(sorted(set(members)))
    await _lock_codes(connection)
    try:
        await connection.execute("INSERT INTO groups (code, name) VALUES ($1, $2)", code, name)
    except asyncpg.UniqueViolationError:
        raise OrgExists(f"code {code!r} is already used") from None
    unknown = await _unknown_departments(connection, member_codes)
    if unknown:
        raise UnknownRecipient("unknown department code(s): " + ", ".join(unknown))
    await connection.executemany(
        "INSERT INTO group_members (group_code, department_code) VALUES ($1, $2)",
        [(code, member) for member in member_codes],
    )
    return Group(code, name, member_codes)


async def ensure_group(
    connection: DbConnection, code: str, name: str, members: Iterable[str]
) -> Group:
    """Create the group or reset its members: for demo data loaded at every start."""
    member_codes = tuple(sorted(set(members)))
    await _lock_codes(connection)
    await connection.execute(
        "INSERT INTO groups (code, name) VALUES ($1, $2)"
        " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
        code,
        name,
    )
    await connection.execute("DELETE FROM group_members WHERE group_code = $1", code)
    await connection.executemany(
        "INSERT INTO group_members (group_code, department_code) VALUES ($1, $2)",
        [(code, member) for member in member_codes],
    )
    return Group(code, name, member_codes)


async def _unknown_departments(connection: DbConnection, codes: Sequence[str]) -> list[str]:
    known = {
        row["code"]
        for row in await connection.fetch(
            "SELECT code FROM departments WHERE code = ANY($1::text[])", list(codes)
        )
    }
    return sorted(set(codes) - known)


async def get_group(connection: DbConnection, code: str) -> Group:
    row = await connection.fetchrow(
        "SELECT g.code, g.name,"
        " coalesce(array_agg(m.department_code ORDER BY m.department_code)"
        "   FILTER (WHERE m.department_code IS NOT NULL), '{}') AS members"
        " FROM groups g LEFT JOIN group_members m ON m.group_code = g.code"
        " WHERE g.code = $1 GROUP BY g.code",
        code,
    )
    if row is None:
        raise UnknownOrg(f"no group {code!r}")
    return Group(row["code"], row["name"], tuple(row["members"]))


async def list_groups(
    connection: DbConnection, *, after: str | None = None, limit: int = 50
) -> list[Group]:
    rows = await connection.fetch(
        "SELECT g.code, g.name,"
        " coalesce(array_agg(m.department_code ORDER BY m.department_code)"
        "   FILTER (WHERE m.department_code IS NOT NULL), '{}') AS members"
        " FROM groups g LEFT JOIN group_members m ON m.group_code = g.code"
        " WHERE $1::text IS NULL OR g.code > $1 GROUP BY g.code ORDER BY g.code LIMIT $2",
        after,
        limit,
    )
    return [Group(row["code"], row["name"], tuple(row["members"])) for row in rows]


async def expand_recipients(connection: DbConnection, codes: Sequence[str]) -> list[str]:
    """Department and group codes to the sorted, de-duplicated department codes they name."""
    rows = await connection.fetch(
        "SELECT code FROM departments WHERE code = ANY($1::text[])"
        " UNION SELECT department_code FROM group_members WHERE group_code = ANY($1::text[])",
        list(codes),
    )
    resolved = {row["code"] for row in rows}
    known_groups = {
        row["code"]
        for row in await connection.fetch(
            "SELECT code FROM groups WHERE code = ANY($1::text[])", list(codes)
        )
    }
    unknown = sorted(set(codes) - resolved - known_groups)
    if unknown:
        raise UnknownRecipient("unknown recipient code(s): " + ", ".join(unknown))
    return sorted(resolved)
