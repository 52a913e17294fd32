"""Officials, their enrolled keys and the login state kept in PostgreSQL.

Every write that changes who may do what (an official created, a key enrolled or revoked,
an official disabled or transferred, a refresh family revoked for reuse) takes its audit
event through the caller's :class:`~storage.audit_outbox.AuditSink` in the same
transaction. Times always come from the caller (the gateway's clock), never from
``now()`` in SQL, so a test clock and the database agree.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from keys.challenge import enrollment_code_matches, generate_enrollment_code, hash_enrollment_code
from keys.master import MasterKey, MasterKeyError
from storage import supervision
from storage.audit_outbox import AuditEvent, AuditSink
from storage.db import DbConnection

ROLES = frozenset({"admin", "dept_admin", "clerk", "leader", "seal_keeper", "inspector", "system"})
# What a dept_admin may grant, in its own department only; the rest needs an admin.
DEPT_ADMIN_GRANTABLE = frozenset({"clerk", "leader", "seal_keeper", "system"})

ENROLLMENT_CODE_LIFETIME = timedelta(hours=72)
ENROLLMENT_MAX_ATTEMPTS = 5
REFRESH_TOKEN_LIFETIME = timedelta(hours=12)
REFRESH_FAMILY_LIFETIME = timedelta(days=7)
REFRESH_TOKEN_PREFIX = "shrt_"  # noqa: S105 (a recognisable prefix, not a secret)

ReplayKind = Literal["nonce", "assertion", "dpop", "enroll"]
FailureKind = Literal["login", "enroll", "token", "refresh"]


# --- errors -------------------------------------------------------------------------------


class IdentityError(Exception):
    """A refused identity operation; ``code`` is the stable machine code."""

    code = "identity_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OfficialNotFound(IdentityError):
    code = "not_found"


class KeyNotFound(IdentityError):
    code = "not_found"


class DepartmentUnknown(IdentityError):
    code = "department_unknown"


class InvalidRoles(IdentityError):
    code = "invalid_request"


class OfficialDisabled(IdentityError):
    code = "official_disabled"


class EnrollmentCodeInvalid(IdentityError):
    code = "enrollment_code_invalid"


class EnrollmentCodeUsed(IdentityError):
    code = "enrollment_code_used"


class EnrollmentCodeExpired(IdentityError):
    code = "enrollment_code_expired"


class EnrollmentCodeLocked(IdentityError):
    code = "enrollment_code_locked"


class KeyAlreadyEnrolled(IdentityError):
    code = "key_already_enrolled"


class RequestNotFound(IdentityError):
    code = "not_found"


class RequestDecided(IdentityError):
    code = "request_decided"


class SamePerson(IdentityError):
    """The second person of a four-eyes act is the first one (or may hold its key)."""

    code = "same_person"


class RefreshTokenInvalid(IdentityError):
    code = "invalid_grant"


class RefreshTokenReused(IdentityError):
    code = "refresh_token_reused"


class Replayed(IdentityError):
    """A single-use value was presented a second time."""

    code = "replayed"


class ReplayedNonce(Replayed):
    code = "replayed_nonce"


class ReplayedAssertion(Replayed):
    code = "replayed_assertion"


class ReplayedDpop(Replayed):
    code = "replayed_dpop"


class ReplayedEnrollmentProof(Replayed):
    code = "replayed_enrollment_proof"


_REPLAY_ERRORS: dict[str, type[Replayed]] = {
    "nonce": ReplayedNonce,
    "assertion": ReplayedAssertion,
    "dpop": ReplayedDpop,
    "enroll": ReplayedEnrollmentProof,
}


# --- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Official:
    id: str
    name: str
    department: str
    roles: tuple[str, ...]
    status: str
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "department": self.department,
            "roles": list(self.roles),
            "status": self.status,
            "created_at": _rfc3339(self.created_at),
        }


@dataclass(frozen=True)
class OfficialKey:
    kid: str
    official_id: str
    public_jwk: dict[str, str]
    created_at: datetime
    revoked_at: datetime | None
    # Who handed out the enrollment code this key came from, and who cosigned it.
    code_issued_by: str | None = None
    code_cosigned_by: str | None = None
    added_by_other: bool = False

    @property
    def code_handlers(self) -> frozenset[str]:
        """Every official through whose hands this key's enrollment code went."""
        return frozenset(
            who for who in (self.code_issued_by, self.code_cosigned_by) if who is not None
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "jwk": self.public_jwk,
            "created_at": _rfc3339(self.created_at),
            "revoked_at": None if self.revoked_at is None else _rfc3339(self.revoked_at),
            "status": "active" if self.revoked_at is None else "revoked",
            "code_issued_by": self.code_issued_by,
            "code_cosigned_by": self.code_cosigned_by,
            "added_by_other": self.added_by_other,
        }


@dataclass(frozen=True)
class KeyOwner:
    """An enrolled key with its official: what every authenticated request is checked against."""

    key: OfficialKey
    official: Official


@dataclass(frozen=True)
class NewOfficial:
    official: Official
    enrollment_code: str = field(repr=False)
    code_expires_at: datetime


@dataclass(frozen=True)
class IssuedRefreshToken:
    token: str = field(repr=False)
    family_id: str
    expires_at: datetime


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _official(row: asyncpg.Record, prefix: str = "") -> Official:
    return Official(
        id=row[prefix + "id"],
        name=row[prefix + "name"],
        department=row[prefix + "department"],
        roles=tuple(row[prefix + "roles"]),
        status=row[prefix + "status"],
        created_at=row[prefix + "created_at"],
    )


def _key(row: asyncpg.Record) -> OfficialKey:
    return OfficialKey(
        kid=row["kid"],
        official_id=row["official_id"],
        public_jwk=dict(row["public_jwk"]),
        created_at=row["key_created_at"],
        revoked_at=row["revoked_at"],
        code_issued_by=row["code_issued_by"],
        code_cosigned_by=row["code_cosigned_by"],
        added_by_other=row["added_by_other"],
    )


def normalize_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Sorted, de-duplicated, every one a known role."""
    chosen = sorted(set(roles))
    unknown = [role for role in chosen if role not in ROLES]
    if unknown:
        raise InvalidRoles(f"unknown role(s): {', '.join(unknown)}")
    return tuple(chosen)


_OFFICIAL_COLUMNS = "o.id, o.name, o.department, o.roles, o.status, o.created_at"
_KEY_COLUMNS = (
    "k.kid, k.official_id, k.public_jwk, k.created_at AS key_created_at, k.revoked_at,"
    " k.code_issued_by, k.code_cosigned_by, k.added_by_other"
)


# --- officials ----------------------------------------------------------------------------


async def _department_exists(connection: DbConnection, code: str) -> bool:
    found = await connection.fetchval("SELECT 1 FROM departments WHERE code = $1", code)
    return found is not None


async def _store_code(
    connection: DbConnection,
    official_id: str,
    now: datetime,
    *,
    issued_by: str | None,
    cosigned_by: str | None = None,
    inherited_handlers: Iterable[str] = (),
) -> tuple[str, datetime]:
    code = generate_enrollment_code()
    expires_at = now + ENROLLMENT_CODE_LIFETIME
    await connection.execute(
        "INSERT INTO enrollment_codes (official_id, code_hash, created_at, expires_at,"
        " issued_by, cosigned_by, inherited_handlers) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (official_id) DO UPDATE SET code_hash = EXCLUDED.code_hash,"
        " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,"
        " failed_attempts = 0, used_at = NULL, issued_by = EXCLUDED.issued_by,"
        " cosigned_by = EXCLUDED.cosigned_by, inherited_handlers = EXCLUDED.inherited_handlers",
        official_id,
        hash_enrollment_code(code, official_id=official_id),
        now,
        expires_at,
        issued_by,
        cosigned_by,
        sorted(inherited_handlers),
    )
    return code, expires_at


async def create_official(
    connection: DbConnection,
    *,
    name: str,
    department: str,
    roles: Sequence[str],
    now: datetime,
    audit: AuditSink,
    actor: str | None,
    via: str = "api",
    cosigned_by: str | None = None,
) -> NewOfficial:
    """A new official with a one-time enrollment code (only its hash is stored).

    *actor* receives the code (it is recorded as the code's issuer); *cosigned_by* is the
    other admin who agreed, for an official created through a four-eyes request.
    """
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRoles("name must have 1 to 200 characters")
    chosen = normalize_roles(roles)
    official_id = str(uuid.uuid4())
    async with connection.transaction():
        if not await _department_exists(connection, department):
            raise DepartmentUnknown(f"no department {department!r}")
        row = await connection.fetchrow(
            "INSERT INTO officials AS o (id, name, department, roles, created_at, updated_at)"  # noqa: S608 (constant column lists)
            f" VALUES ($1, $2, $3, $4, $5, $5) RETURNING {_OFFICIAL_COLUMNS}",
            official_id,
            name,
            department,
            list(chosen),
            now,
        )
        assert row is not None
        code, expires_at = await _store_code(
            connection, official_id, now, issued_by=actor, cosigned_by=cosigned_by
        )
        details: dict[str, Any] = {"official": official_id, "roles": list(chosen), "via": via}
        if cosigned_by is not None:
            details["cosigned_by"] = cosigned_by
        await audit.record(
            connection,
            AuditEvent(
                "official.created",
                now,
                actor_official=actor,
                department=department,
                details=details,
            ),
        )
    return NewOfficial(_official(row), code, expires_at)


async def new_enrollment_code(
    connection: DbConnection,
    official_id: str,
    *,
    now: datetime,
    audit: AuditSink,
    issued_by: str,
    issued_with_kid: str | None,
    cosigned_by: str | None = None,
) -> tuple[str, datetime]:
    """Replace the official's pending code (a second device, a lost code), audited with the
    official who receives the code as actor and the cosigning manager, if any."""
    async with connection.transaction():
        official = await get_official(connection, official_id, for_update=True)
        if not official.active:
            raise OfficialDisabled("the official is disabled")
        # Asked with its own key: the new code carries whoever could hold that key, so a
        # borrowed key cannot be re-keyed into a "fresh" identity of nobody's but its own.
        inherited = (
            await code_handlers_of_key(connection, issued_with_kid) - {official.id}
            if issued_by == official.id
            else frozenset()
        )
        code, expires_at = await _store_code(
            connection,
            official_id,
            now,
            issued_by=issued_by,
            cosigned_by=cosigned_by,
            inherited_handlers=inherited,
        )
        if issued_by == official.id:
            via = "self"
        elif cosigned_by is None:
            via = "manager"
        else:
            via = "four_eyes"
        await audit.record(
            connection,
            AuditEvent(
                "enrollment_code.issued",
                now,
                actor_official=issued_by,
                actor_jkt=issued_with_kid,
                department=official.department,
                details={
                    "official": official.id,
                    "issued_by": issued_by,
                    "cosigned_by": cosigned_by,
                    "inherited_handlers": sorted(inherited),
                    "via": via,
                    "expires_at": _rfc3339(expires_at),
                },
            ),
        )
        return code, expires_at


async def has_active_key(connection: DbConnection, official_id: str) -> bool:
    found = await connection.fetchval(
        "SELECT 1 FROM official_keys WHERE official_id = $1 AND revoked_at IS NULL LIMIT 1",
        official_id,
    )
    return found is not None


async def code_handlers_of_key(connection: DbConnection, kid: str | None) -> frozenset[str]:
    """Who handled the enrollment code of key *kid*, or of the keys it was asked with (nobody
    for an unknown key)."""
    if kid is None:
        return frozenset()
    row = await connection.fetchrow(
        "SELECT code_issued_by, code_cosigned_by, code_inherited_handlers"
        " FROM official_keys WHERE kid = $1",
        kid,
    )
    if row is None:
        return frozenset()
    direct = {who for who in (row["code_issued_by"], row["code_cosigned_by"]) if who}
    return frozenset(direct | set(row["code_inherited_handlers"]))


def independent_people(
    first: str, first_key_handlers: frozenset[str], second: str, second_key_handlers: frozenset[str]
) -> bool:
    """Two ids count as two people only when neither could hold the other's key: neither
    handled the enrollment code of the key the other one acts with."""
    return first != second and first not in second_key_handlers and second not in first_key_handlers


async def get_official(
    connection: DbConnection, official_id: str, *, for_update: bool = False
) -> Official:
    try:
        uuid.UUID(official_id)
    except ValueError:
        raise OfficialNotFound("no such official") from None
    lock = " FOR UPDATE" if for_update else ""
    row = await connection.fetchrow(
        f"SELECT {_OFFICIAL_COLUMNS} FROM officials o WHERE o.id = $1{lock}",  # noqa: S608
        official_id.lower(),
    )
    if row is None:
        raise OfficialNotFound("no such official")
    return _official(row)


SESSIONS_CHANNEL = "sealhub_sessions"


async def _revoke_families(
    connection: DbConnection,
    now: datetime,
    reason: str,
    *,
    official_id: str | None = None,
    kid: str | None = None,
) -> int:
    result = await connection.execute(
        "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2"
        " WHERE revoked_at IS NULL AND (official_id = $3 OR kid = $4)",
        now,
        reason,
        official_id,
        kid,
    )
    # At commit, every gateway process wakes its long-polls and event streams, which then
    # re-check their key: a revoked key, disabled or moved official loses them at once.
    await connection.execute("SELECT pg_notify($1, $2)", SESSIONS_CHANNEL, reason)
    return int(result.split()[-1])


async def disable_official(
    connection: DbConnection, official_id: str, *, now: datetime, audit: AuditSink, actor: str
) -> Official:
    async with connection.transaction():
        official = await get_official(connection, official_id, for_update=True)
        row = await connection.fetchrow(
            "UPDATE officials o SET status = 'disabled', updated_at = $2 WHERE o.id = $1"  # noqa: S608 (constant column lists)
            f" RETURNING {_OFFICIAL_COLUMNS}",
            official.id,
            now,
        )
        assert row is not None
        families = await _revoke_families(connection, now, "disabled", official_id=official.id)
        await audit.record(
            connection,
            AuditEvent(
                "official.disabled",
                now,
                actor_official=actor,
                department=official.department,
                details={"official": official.id, "refresh_families_revoked": families},
            ),
        )
    return _official(row)


# Roles an official keeps when it moves; anything else the receiving side must grant again.
TRAVELLING_ROLES = frozenset({"clerk"})


async def transfer_official(
    connection: DbConnection,
    official_id: str,
    *,
    department: str,
    granted: Sequence[str],
    now: datetime,
    audit: AuditSink,
    actor: str,
    actor_jkt: str | None = None,
    proposed_by: str | None = None,
    request_id: str | None = None,
) -> Official:
    """Move an official: it keeps only ``clerk`` plus the roles *granted* by the receiving
    side; every key, refresh family and pending enrollment code ends (it enrolls anew in its
    new department). Recorded in both departments' audit views."""
    extra = normalize_roles(granted)
    async with connection.transaction():
        official = await get_official(connection, official_id, for_update=True)
        if not official.active:
            raise OfficialDisabled("the official is disabled")
        if department == official.department:
            raise InvalidRoles("the official is already in that department")
        if not await _department_exists(connection, department):
            raise DepartmentUnknown(f"no department {department!r}")
        chosen = tuple(sorted((set(official.roles) & TRAVELLING_ROLES) | set(extra)))
        row = await connection.fetchrow(
            "UPDATE officials o SET department = $2, roles = $3, updated_at = $4 WHERE o.id = $1"  # noqa: S608 (constant column lists)
            f" RETURNING {_OFFICIAL_COLUMNS}",
            official.id,
            department,
            list(chosen),
            now,
        )
        assert row is not None
        revoked = await connection.fetch(
            "UPDATE official_keys SET revoked_at = $2 WHERE official_id = $1"
            " AND revoked_at IS NULL RETURNING kid",
            official.id,
            now,
        )
        families = await _revoke_families(connection, now, "transferred", official_id=official.id)
        await connection.execute("DELETE FROM enrollment_codes WHERE official_id = $1", official.id)
        await connection.execute(
            "UPDATE official_requests SET status = 'cancelled', decided_at = $2"
            " WHERE official = $1 AND status = 'pending' AND id IS DISTINCT FROM $3::uuid",
            official.id,
            now,
            request_id,
        )
        details = {
            "official": official.id,
            "from": official.department,
            "to": department,
            "roles_before": list(official.roles),
            "roles_after": list(chosen),
            "keys_revoked": [r["kid"] for r in revoked],
            "refresh_families_revoked": families,
            "proposed_by": proposed_by,
            "request": request_id,
        }
        for side, concerned in (("out", official.department), ("in", department)):
            await audit.record(
                connection,
                AuditEvent(
                    "official.transferred",
                    now,
                    actor_official=actor,
                    actor_jkt=actor_jkt,
                    department=concerned,
                    details={**details, "side": side},
                ),
            )
    return _official(row)


# --- requests that wait for a second person -------------------------------------------------

RequestKind = Literal["enrollment_code", "create_official", "transfer"]


@dataclass(frozen=True)
class OfficialRequest:
    """A four-eyes act waiting for its second person."""

    id: str
    kind: str
    official: str | None
    department: str
    target_department: str | None
    payload: dict[str, Any]
    status: str
    requested_by: str
    requested_with_kid: str | None
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "official": self.official,
            "department": self.department,
            "target_department": self.target_department,
            "payload": self.payload,
            "status": self.status,
            "requested_by": self.requested_by,
            "requested_at": _rfc3339(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else _rfc3339(self.decided_at),
        }


_REQUEST_COLUMNS = (
    "id::text AS id, kind, official, department, target_department, payload, status,"
    " requested_by, requested_with_kid, requested_at, decided_by, decided_at"
)


def _request(row: asyncpg.Record) -> OfficialRequest:
    fields = {name: value for name, value in row.items() if name != "official_roles"}
    return OfficialRequest(**{**fields, "payload": dict(row["payload"])})


def _request_event(
    kind: str, request: OfficialRequest, now: datetime, actor: str | None, jkt: str | None
) -> list[AuditEvent]:
    """One event per department concerned (a transfer: both)."""
    departments = [request.department]
    if request.target_department is not None:
        departments.append(request.target_department)
    return [
        AuditEvent(
            kind,
            now,
            actor_official=actor,
            actor_jkt=jkt,
            department=department,
            details={
                "request": request.id,
                "kind": request.kind,
                "official": request.official,
                "target_department": request.target_department,
                "requested_by": request.requested_by,
                "status": request.status,
            },
        )
        for department in departments
    ]


async def open_request(
    connection: DbConnection,
    *,
    kind: RequestKind,
    official: str | None,
    department: str,
    target_department: str | None = None,
    payload: dict[str, Any] | None = None,
    requested_by: str,
    requested_with_kid: str | None,
    now: datetime,
    audit: AuditSink,
) -> tuple[OfficialRequest, bool]:
    """A pending request (True), or the one already pending for this official (False)."""
    async with connection.transaction():
        if official is not None:
            await get_official(connection, official, for_update=True)
            existing = await connection.fetchrow(
                f"SELECT {_REQUEST_COLUMNS} FROM official_requests"  # noqa: S608 (constant column lists)
                " WHERE kind = $1 AND official = $2 AND status = 'pending'",
                kind,
                official,
            )
            if existing is not None:
                return _request(existing), False
        for code in (department, target_department):
            if code is not None and not await _department_exists(connection, code):
                raise DepartmentUnknown(f"no department {code!r}")
        row = await connection.fetchrow(
            "INSERT INTO official_requests (id, kind, official, department, target_department,"  # noqa: S608 (constant column lists)
            " payload, requested_by, requested_with_kid, requested_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            f" RETURNING {_REQUEST_COLUMNS}",
            uuid.uuid4(),
            kind,
            official,
            department,
            target_department,
            payload or {},
            requested_by,
            requested_with_kid,
            now,
        )
        assert row is not None
        opened = _request(row)
        for event in _request_event(
            "official_request.opened", opened, now, requested_by, requested_with_kid
        ):
            await audit.record(connection, event)
    return opened, True


async def get_request(
    connection: DbConnection, request_id: str, *, for_update: bool = False
) -> OfficialRequest:
    try:
        parsed = uuid.UUID(request_id)
    except ValueError:
        raise RequestNotFound("no such request") from None
    lock = " FOR UPDATE" if for_update else ""
    row = await connection.fetchrow(
        f"SELECT {_REQUEST_COLUMNS} FROM official_requests WHERE id = $1{lock}",  # noqa: S608
        parsed,
    )
    if row is None:
        raise RequestNotFound("no such request")
    return _request(row)


# Roles only an admin grants: requests to create such officials, or for a code of an
# official holding one, are for admins' eyes only (a dept_admin could not decide them).
ADMIN_GRANTED_ROLES = ROLES - DEPT_ADMIN_GRANTABLE


def admins_only(request: OfficialRequest, official_roles: Iterable[str] = ()) -> bool:
    """*official_roles*: the current roles of the official an enrollment-code request is for."""
    if request.kind == "create_official":
        roles: Iterable[str] = request.payload.get("roles", [])
    elif request.kind == "enrollment_code":
        roles = official_roles
    else:
        return False
    return bool(set(roles) & ADMIN_GRANTED_ROLES)


async def list_requests(
    connection: DbConnection, *, department: str | None, status: str | None, limit: int = 200
) -> list[OfficialRequest]:
    """Newest first; *department*: only requests concerning it (either side of a transfer),
    without those only an admin may decide."""
    rows = await connection.fetch(
        f"SELECT {_REQUEST_COLUMNS}, (SELECT o.roles FROM officials o"  # noqa: S608 (constant column lists)
        " WHERE o.id = official_requests.official) AS official_roles FROM official_requests"
        " WHERE ($1::text IS NULL OR department = $1 OR target_department = $1)"
        " AND ($2::text IS NULL OR status = $2)"
        " ORDER BY requested_at DESC, id DESC LIMIT $3",
        department,
        status,
        limit,
    )
    found = [(_request(row), row["official_roles"] or ()) for row in rows]
    return [item for item, roles in found if department is None or not admins_only(item, roles)]


async def decide_request(
    connection: DbConnection,
    request_id: str,
    *,
    status: Literal["approved", "declined", "cancelled"],
    decided_by: str,
    decided_with_kid: str | None,
    now: datetime,
    audit: AuditSink,
) -> OfficialRequest:
    """Close a pending request (in the caller's transaction, which then performs the act)."""
    current = await get_request(connection, request_id, for_update=True)
    if current.status != "pending":
        raise RequestDecided("this request was already decided")
    if status == "approved" and decided_by == current.requested_by:
        raise SamePerson("a second, different official must approve this request")
    row = await connection.fetchrow(
        "UPDATE official_requests SET status = $2, decided_by = $3, decided_at = $4"  # noqa: S608 (constant column lists)
        f" WHERE id = $1 RETURNING {_REQUEST_COLUMNS}",
        uuid.UUID(current.id),
        status,
        None if status == "cancelled" else decided_by,
        now,
    )
    assert row is not None
    decided = _request(row)
    for event in _request_event(
        f"official_request.{status}", decided, now, decided_by, decided_with_kid
    ):
        await audit.record(connection, event)
    return decided


async def login_notices(
    connection: DbConnection, official_id: str, kid: str, *, now: datetime
) -> list[dict[str, Any]]:
    """Keys someone else added to this official that it has not been told about, told now
    (only to a login with another key: the added key's holder may be the intruder)."""
    rows = await connection.fetch(
        "UPDATE official_keys SET owner_notified_at = $3"
        " WHERE official_id = $1 AND kid <> $2 AND added_by_other AND owner_notified_at IS NULL"
        " RETURNING kid, created_at, code_issued_by, code_cosigned_by",
        official_id,
        kid,
        now,
    )
    return [
        {
            "type": "key_added_by_other",
            "kid": row["kid"],
            "added_at": _rfc3339(row["created_at"]),
            "code_issued_by": row["code_issued_by"],
            "code_cosigned_by": row["code_cosigned_by"],
        }
        for row in sorted(rows, key=lambda r: (r["created_at"], r["kid"]))
    ]


# --- keys ---------------------------------------------------------------------------------


async def enroll_key(
    connection: DbConnection,
    *,
    official_id: str,
    enrollment_code: str,
    kid: str,
    public_jwk: dict[str, str],
    proof_jti: str,
    proof_replay_until: datetime,
    now: datetime,
    audit: AuditSink,
) -> OfficialKey:
    """Consume the enrollment code and register the key; a wrong code costs one attempt.

    The attempt counter is committed even though the call fails, hence the outcome is
    decided inside the transaction and raised after it.
    """
    outcome: OfficialKey | IdentityError
    async with connection.transaction():
        outcome = await _enroll(
            connection, official_id, enrollment_code, kid, public_jwk, now, audit
        )
        if isinstance(outcome, OfficialKey) and not await use_once(
            connection, "enroll", kid, proof_jti, proof_replay_until
        ):
            raise ReplayedEnrollmentProof("this enrollment proof was already used")
    if isinstance(outcome, IdentityError):
        raise outcome
    return outcome


async def _enroll(
    connection: DbConnection,
    official_id: str,
    enrollment_code: str,
    kid: str,
    public_jwk: dict[str, str],
    now: datetime,
    audit: AuditSink,
) -> OfficialKey | IdentityError:
    try:
        official = await get_official(connection, official_id, for_update=True)
    except OfficialNotFound:
        # Unauthenticated callers learn nothing about which ids exist.
        return EnrollmentCodeInvalid("the enrollment code is not valid")
    code = await connection.fetchrow(
        "SELECT code_hash, expires_at, failed_attempts, used_at, issued_by, cosigned_by,"
        " inherited_handlers FROM enrollment_codes WHERE official_id = $1",
        official.id,
    )
    if code is None:
        return EnrollmentCodeInvalid("the enrollment code is not valid")
    if code["used_at"] is not None:
        return EnrollmentCodeUsed("the enrollment code was already used")
    if code["failed_attempts"] >= ENROLLMENT_MAX_ATTEMPTS:
        return EnrollmentCodeLocked("too many wrong attempts: ask for a new enrollment code")
    if now >= code["expires_at"]:
        return EnrollmentCodeExpired("the enrollment code has expired")
    if not enrollment_code_matches(enrollment_code, code["code_hash"], official_id=official.id):
        await connection.execute(
            "UPDATE enrollment_codes SET failed_attempts = failed_attempts + 1"
            " WHERE official_id = $1",
            official.id,
        )
        return EnrollmentCodeInvalid("the enrollment code is not valid")
    if not official.active:
        return OfficialDisabled("the official is disabled")
    issued_by: str | None = code["issued_by"]
    cosigned_by: str | None = code["cosigned_by"]
    had_keys = await connection.fetchval(
        "SELECT count(*) FROM official_keys WHERE official_id = $1", official.id
    )
    # Someone else's code on an identity that already existed: the department and the
    # official must hear of it (a first key from the creator's code is the normal path).
    added_by_other = issued_by != official.id and had_keys > 0
    row = await connection.fetchrow(
        "INSERT INTO official_keys AS k (kid, official_id, public_jwk, created_at,"  # noqa: S608 (constant column lists)
        " code_issued_by, code_cosigned_by, added_by_other, code_inherited_handlers)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kid) DO NOTHING"
        f" RETURNING {_KEY_COLUMNS}",
        kid,
        official.id,
        public_jwk,
        now,
        issued_by,
        cosigned_by,
        added_by_other,
        code["inherited_handlers"],
    )
    if row is None:
        return KeyAlreadyEnrolled("this key is already enrolled")
    await connection.execute(
        "UPDATE enrollment_codes SET used_at = $2 WHERE official_id = $1", official.id, now
    )
    details = {
        "official": official.id,
        "kid": kid,
        "code_issued_by": issued_by,
        "code_cosigned_by": cosigned_by,
        "added_by_other": added_by_other,
    }
    await audit.record(
        connection,
        AuditEvent(
            "key.enrolled",
            now,
            # The real actor is whoever handed out the code; the key is only its instrument.
            actor_official=issued_by if issued_by is not None else official.id,
            actor_jkt=kid,
            department=official.department,
            details=details,
        ),
    )
    if added_by_other:
        alert = await supervision.open_alert(
            connection,
            rule=supervision.KEY_ADDED_BY_OTHER,
            subject=f"key:{kid}",
            department=official.department,
            details=details,
            now=now,
        )
        if alert is not None:
            await audit.record(
                connection,
                AuditEvent(
                    "supervision.alert_opened",
                    now,
                    department=official.department,
                    details={
                        **details,
                        "alert": str(alert.id),
                        "rule": alert.rule,
                        "subject": alert.subject,
                    },
                ),
            )
    return _key(row)


async def list_keys(connection: DbConnection, official_id: str) -> list[OfficialKey]:
    rows = await connection.fetch(
        f"SELECT {_KEY_COLUMNS} FROM official_keys k WHERE k.official_id = $1"  # noqa: S608 (constant column lists)
        " ORDER BY k.created_at, k.kid",
        official_id,
    )
    return [_key(row) for row in rows]


async def revoke_key(
    connection: DbConnection,
    official_id: str,
    kid: str,
    *,
    now: datetime,
    audit: AuditSink,
    actor: str,
) -> OfficialKey:
    """Revoke at once: the next request with a token bound to it fails the key check."""
    async with connection.transaction():
        official = await get_official(connection, official_id, for_update=True)
        row = await connection.fetchrow(
            "UPDATE official_keys k SET revoked_at = coalesce(revoked_at, $3)"  # noqa: S608 (constant column lists)
            f" WHERE k.official_id = $1 AND k.kid = $2 RETURNING {_KEY_COLUMNS}",
            official.id,
            kid,
            now,
        )
        if row is None:
            raise KeyNotFound("no such key")
        families = await _revoke_families(connection, now, "key_revoked", kid=kid)
        await audit.record(
            connection,
            AuditEvent(
                "key.revoked",
                now,
                actor_official=actor,
                department=official.department,
                details={"official": official.id, "kid": kid, "refresh_families_revoked": families},
            ),
        )
    return _key(row)


async def key_owner(connection: DbConnection, kid: str) -> KeyOwner | None:
    row = await connection.fetchrow(
        f"SELECT {_KEY_COLUMNS}, {_OFFICIAL_COLUMNS} FROM official_keys k"  # noqa: S608 (constant column lists)
        " JOIN officials o ON o.id = k.official_id WHERE k.kid = $1",
        kid,
    )
    return None if row is None else KeyOwner(_key(row), _official(row))


async def authenticate_request(
    connection: DbConnection, *, kid: str, dpop_jti: str, replay_until: datetime
) -> tuple[bool, KeyOwner | None]:
    """One round trip per authenticated request: spend the DPoP ``jti`` and read the key's
    and the official's current status. Returns (jti was fresh, owner or None)."""
    row = await connection.fetchrow(
        "WITH spent AS ("  # noqa: S608 (constant column lists)
        "  INSERT INTO used_once (kind, scope, value, expires_at) VALUES ('dpop', $1, $2, $3)"
        "  ON CONFLICT DO NOTHING RETURNING 1)"
        f" SELECT (SELECT count(*) FROM spent) AS fresh, {_KEY_COLUMNS}, {_OFFICIAL_COLUMNS}"
        " FROM (SELECT 1) AS one"
        " LEFT JOIN official_keys k ON k.kid = $1"
        " LEFT JOIN officials o ON o.id = k.official_id",
        kid,
        dpop_jti,
        replay_until,
    )
    assert row is not None
    fresh = row["fresh"] == 1
    if row["kid"] is None:
        return fresh, None
    return fresh, KeyOwner(_key(row), _official(row))


# --- single use, refresh tokens -----------------------------------------------------------


async def use_once(
    connection: DbConnection, kind: ReplayKind, scope: str, value: str, expires_at: datetime
) -> bool:
    """Record a single-use value; False when it was already used."""
    spent = await connection.fetchval(
        "INSERT INTO used_once (kind, scope, value, expires_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        kind,
        scope,
        value,
        expires_at,
    )
    return spent is not None


async def spend_all(
    connection: DbConnection, values: Sequence[tuple[ReplayKind, str, str, datetime]]
) -> None:
    """Spend several single-use values (in the caller's transaction); the first one already
    used raises its kind's Replayed error."""
    for kind, scope, value, expires_at in values:
        if not await use_once(connection, kind, scope, value, expires_at):
            raise _REPLAY_ERRORS[kind](f"this {kind} was already used")


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def _new_refresh_token(
    connection: DbConnection, family_id: str, family_expires: datetime, now: datetime
) -> IssuedRefreshToken:
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = min(now + REFRESH_TOKEN_LIFETIME, family_expires)
    await connection.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        refresh_token_hash(token),
        family_id,
        now,
        expires_at,
    )
    return IssuedRefreshToken(token, family_id, expires_at)


async def start_refresh_family(
    connection: DbConnection, *, official_id: str, kid: str, now: datetime
) -> IssuedRefreshToken:
    family_id = str(uuid.uuid4())
    family_expires = now + REFRESH_FAMILY_LIFETIME
    await connection.execute(
        "INSERT INTO refresh_families (id, official_id, kid, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        family_id,
        official_id,
        kid,
        now,
        family_expires,
    )
    return await _new_refresh_token(connection, family_id, family_expires, now)


async def rotate_refresh_token(
    connection: DbConnection,
    token: str,
    *,
    jkt: str,
    now: datetime,
    audit: AuditSink,
    source: str,
) -> tuple[KeyOwner, IssuedRefreshToken]:
    """Spend a refresh token for the next one of its family.

    A token presented a second time means two parties hold it: the whole family is revoked
    (committed, and audited) before the refusal is raised.
    """
    outcome: tuple[KeyOwner, IssuedRefreshToken] | IdentityError
    async with connection.transaction():
        outcome = await _rotate(connection, token, jkt, now, audit, source)
    if isinstance(outcome, IdentityError):
        raise outcome
    return outcome


async def _rotate(
    connection: DbConnection,
    token: str,
    jkt: str,
    now: datetime,
    audit: AuditSink,
    source: str,
) -> tuple[KeyOwner, IssuedRefreshToken] | IdentityError:
    invalid = RefreshTokenInvalid("the refresh token is not valid")
    if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > 100:
        return invalid
    row = await connection.fetchrow(
        "SELECT t.token_hash, t.expires_at AS token_expires, t.used_at, f.id AS family_id,"
        " f.kid AS family_kid, f.official_id AS family_official, f.expires_at AS family_expires,"
        " f.revoked_at AS family_revoked"
        " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        " WHERE t.token_hash = $1 FOR UPDATE OF t, f",
        refresh_token_hash(token),
    )
    if row is None or row["family_revoked"] is not None:
        return invalid
    if row["family_kid"] != jkt:
        # Not reuse by a second holder of the token: the proof key is simply wrong.
        return RefreshTokenInvalid("the refresh token is bound to another key")
    if row["used_at"] is not None:
        await connection.execute(
            "UPDATE refresh_families SET revoked_at = $2, revoke_reason = 'reused' WHERE id = $1",
            row["family_id"],
            now,
        )
        await audit.record(
            connection,
            AuditEvent(
                "login.failed",
                now,
                actor_official=row["family_official"],
                actor_jkt=jkt,
                details={
                    "kind": "refresh",
                    "reason": "refresh_token_reused",
                    "family": row["family_id"],
                    "source": source,
                },
            ),
        )
        return RefreshTokenReused("the refresh token was already used: its family is revoked")
    if now >= row["token_expires"] or now >= row["family_expires"]:
        return RefreshTokenInvalid("the refresh token has expired")
    owner = await key_owner(connection, row["family_kid"])
    if owner is None or owner.key.revoked_at is not None:
        return RefreshTokenInvalid("the key of this refresh token is revoked")
    if not owner.official.active:
        return OfficialDisabled("the official is disabled")
    await connection.execute(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", row["token_hash"], now
    )
    issued = await _new_refresh_token(connection, row["family_id"], row["family_expires"], now)
    return owner, issued


# --- counters -----------------------------------------------------------------------------


async def bump_counter(connection: DbConnection, bucket: str, window_start: datetime) -> int:
    """Count one hit in a fixed window; returns the count including this one."""
    count = await connection.fetchval(
        "INSERT INTO rate_counters (bucket, window_start, count) VALUES ($1, $2, 1)"
        " ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counters.count + 1"
        " RETURNING count",
        bucket,
        window_start,
    )
    return int(count)


async def count_failure(
    connection: DbConnection,
    *,
    minute: datetime,
    source: str,
    kind: FailureKind,
    subject: str,
    reason: str,
) -> bool:
    """Count a failed attempt; True when it is the first of its (minute, source, kind,
    subject) row, i.e. when the caller should write the one audit event for the row."""
    inserted = await connection.fetchval(
        "INSERT INTO auth_failures (minute, source, kind, subject, count, last_reason)"
        " VALUES ($1, $2, $3, $4, 1, $5)"
        " ON CONFLICT (minute, source, kind, subject) DO UPDATE"
        " SET count = auth_failures.count + 1, last_reason = EXCLUDED.last_reason"
        " RETURNING (xmax = 0)",
        minute,
        source[:64],
        kind,
        subject[:64],
        reason[:100],
    )
    return bool(inserted)


async def purge_expired(connection: DbConnection, *, now: datetime) -> None:
    """Forget single-use values and counters that can no longer matter."""
    await connection.execute(
        "DELETE FROM used_once WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM used_once WHERE expires_at < $1 LIMIT 5000))",
        now,
    )
    await connection.execute(
        "DELETE FROM rate_counters WHERE window_start < $1", now - timedelta(hours=1)
    )


# --- gateway secrets ----------------------------------------------------------------------


async def gateway_secret(
    connection: DbConnection, name: str, master_key: MasterKey, *, now: datetime
) -> bytes:
    """A random 32-byte secret shared by every process using this database and master key.

    Stored wrapped under the master key; if the master key changed (the row no longer
    opens), a new secret replaces it, which only invalidates what it protected briefly.
    """
    context = f"sealhub gateway secret\x00{name}".encode()
    row = await connection.fetchrow("SELECT wrapped FROM gateway_secrets WHERE name = $1", name)
    if row is not None:
        try:
            return master_key.unwrap(bytes(row["wrapped"]), context)
        except MasterKeyError:
            pass
    secret = secrets.token_bytes(32)
    wrapped = master_key.wrap(secret, context)
    stored = await connection.fetchval(
        "INSERT INTO gateway_secrets (name, wrapped, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET wrapped = EXCLUDED.wrapped,"
        " created_at = EXCLUDED.created_at WHERE gateway_secrets.wrapped = $4"
        " RETURNING wrapped",
        name,
        wrapped,
        now,
        None if row is None else bytes(row["wrapped"]),
    )
    if stored is not None:
        return secret
    # Another process won the race: use its secret.
    winner = await connection.fetchval("SELECT wrapped FROM gateway_secrets WHERE name = $1", name)
    return master_key.unwrap(bytes(winner), context)
