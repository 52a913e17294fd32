"""Officials and their keys: creation, enrollment, revocation, disable, transfer.

Who may do what (docs/api.md): an ``admin`` anything anywhere; a ``dept_admin`` only inside
its own department and only for officials whose roles it could have granted itself
(``clerk``, ``leader``, ``seal_keeper``, ``system``); every official its own keys.
Officials of another department are 404, a missing right inside one's department is 403.

Acts on someone else's identity take two people (issue 16): a manager-issued enrollment code
for an official that has a key or holds admin, inspector, leader or seal_keeper (the code of a
new official with one of those roles included), and a move from one
department to another (proposed by the releasing side, accepted by the receiving one, or
done by a platform admin). The first person opens an ``official_requests`` row, the second
approves it at ``/v1/official-requests/{id}/approve``; two ids only count as two people when
neither handled the enrollment code of the key the other acts with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from aiohttp import web

from gateway.http.bodies import json_response, query_text, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.ratelimit import RATE_LIMITS, pace_source
from gateway.http.ratelimit import check as rate_limit
from gateway.http.routing import RouteTable, path_param, query_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import (
    Forbidden,
    NotFound,
    Principal,
    audit_of,
    deny_access,
    now_of,
    principal_of,
    reason_of,
    record_failure,
    require_department,
    source_of,
)
from gateway.runtime import RUNTIME
from keys.jws import JwsError, verify_enrollment_proof
from storage import identity
from storage.db import DbConnection
from storage.identity import DEPT_ADMIN_GRANTABLE, Official

routes = RouteTable()

MANAGERS = frozenset({"admin", "dept_admin"})
# A manager-issued enrollment code for an official holding one of these always takes two
# managers, whether or not the official still has a working key.
FOUR_EYES_ROLES = frozenset({"admin", "inspector", "leader", "seal_keeper"})
REQUEST_ID = path_param("id", "Official request id.")
GRANTABLE = sorted(DEPT_ADMIN_GRANTABLE)
OFFICIAL_ID = path_param("id", "Official id.")
OBJECT = json_content({"type": "object"})


def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError("invalid_request", f"{name} must be a list of strings")
    return value


def _string(body: dict[str, Any], name: str, max_length: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ApiError("invalid_request", f"{name} must be a string of 1 to {max_length}")
    if (unsafe := unsafe_character(value)) is not None:
        raise ApiError("invalid_request", f"{name} must not contain {unsafe}")
    return value


async def _forbid(request: web.Request, detail: str) -> NoReturn:
    await deny_access(request, "role_missing")
    raise Forbidden(detail)


async def _load_official(request: web.Request) -> Official:
    """The official named in the path, 404 when absent or in another department."""
    async with request.app[RUNTIME].pool.acquire() as connection:
        official = await identity.get_official(connection, request.match_info["id"])
    principal = principal_of(request)
    if official.id != principal.official_id:
        await require_department(request, official.department)
    return official


async def _require_manager(request: web.Request, official: Official) -> Principal:
    """An admin, or a dept_admin of the official's department managing an ordinary official."""
    principal = principal_of(request)
    if "admin" in principal.roles:
        return principal
    if "dept_admin" in principal.roles and principal.department == official.department:
        if set(official.roles) <= DEPT_ADMIN_GRANTABLE:
            return principal
        await _forbid(request, "only an admin may manage an official with these roles")
    await _forbid(request, "you may not manage this official")


async def _check_grant(request: web.Request, department: str, roles: list[str]) -> None:
    principal = principal_of(request)
    if "admin" in principal.roles:
        return
    await require_department(request, department)
    if not set(roles) <= DEPT_ADMIN_GRANTABLE:
        await _forbid(request, "a dept_admin may grant only clerk, leader, seal_keeper, system")


@routes.add(
    "POST",
    "/v1/officials",
    summary=(
        "Create an official (dept_admin of the department, or admin); one enrollment code."
        " admin, inspector, leader or seal_keeper take a second manager's approval (202)."
    ),
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    request_body=json_content(
        {
            "type": "object",
            "required": ["name", "department", "roles"],
            "properties": {
                "name": {"type": "string"},
                "department": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string"}},
            },
        }
    ),
    responses={"201": {"content": OBJECT}, "202": {"content": OBJECT}},
)
async def create_official(request: web.Request) -> web.Response:
    """A new official holding admin, inspector, leader or seal_keeper takes two managers:
    the first call opens a request (202); another manager who could grant those roles
    approves it and receives the enrollment code (so nobody alone holds a privileged key)."""
    body = await read_json_object(request)
    name = _string(body, "name")
    department = _string(body, "department", 63)
    roles = list(identity.normalize_roles(_string_list(body, "roles")))
    await _check_grant(request, department, roles)
    principal = principal_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        if set(roles) & FOUR_EYES_ROLES:
            pending, _ = await identity.open_request(
                connection,
                kind="create_official",
                official=None,
                department=department,
                payload={"name": name.strip(), "department": department, "roles": roles},
                requested_by=principal.official_id,
                requested_with_kid=principal.kid,
                now=now_of(request),
                audit=audit_of(request),
            )
            return _pending(pending)
        created = await identity.create_official(
            connection,
            name=name,
            department=department,
            roles=roles,
            now=now_of(request),
            audit=audit_of(request),
            actor=principal.official_id,
        )
    return _created_json(created)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _created_json(created: identity.NewOfficial) -> web.Response:
    return json_response(
        {
            **created.official.as_json(),
            "enrollment_code": created.enrollment_code,
            "enrollment_code_expires_at": _iso(created.code_expires_at),
        },
        status=201,
    )


def _pending(pending: identity.OfficialRequest) -> web.Response:
    """202: the act waits for a second person."""
    return json_response({"status": "pending_approval", "request": pending.as_json()}, status=202)


def _code_json(official_id: str, code: str, expires_at: datetime) -> web.Response:
    return json_response(
        {
            "id": official_id,
            "enrollment_code": code,
            "enrollment_code_expires_at": _iso(expires_at),
        },
        status=201,
    )


@routes.add(
    "POST",
    "/v1/officials/{id}/enrollment-code",
    summary=(
        "A new enrollment code: asked by the official itself (signed with its key), or by a"
        " manager; two managers when the official has a key or a privileged role."
    ),
    access="authenticated",
    tag="officials",
    parameters=(OFFICIAL_ID,),
    responses={"201": {"content": OBJECT}, "202": {"content": OBJECT}},
)
async def new_enrollment_code(request: web.Request) -> web.Response:
    official = await _load_official(request)
    principal = principal_of(request)
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        if official.id != principal.official_id:
            await _require_manager(request, official)
            if set(official.roles) & FOUR_EYES_ROLES or await identity.has_active_key(
                connection, official.id
            ):
                pending, _ = await identity.open_request(
                    connection,
                    kind="enrollment_code",
                    official=official.id,
                    department=official.department,
                    requested_by=principal.official_id,
                    requested_with_kid=principal.kid,
                    now=now,
                    audit=audit_of(request),
                )
                return _pending(pending)
        code, expires_at = await identity.new_enrollment_code(
            connection,
            official.id,
            now=now,
            audit=audit_of(request),
            issued_by=principal.official_id,
            issued_with_kid=principal.kid,
        )
    return _code_json(official.id, code, expires_at)


@routes.add(
    "POST",
    "/v1/officials/{id}/keys",
    summary="Enroll a public key with an enrollment proof JWS signed by that key.",
    access="public",
    tag="officials",
    parameters=(OFFICIAL_ID,),
    request_body=json_content(
        {"type": "object", "required": ["proof"], "properties": {"proof": {"type": "string"}}}
    ),
    responses={"201": {"content": OBJECT}},
)
async def enroll_key(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    now = now_of(request)
    official_id = request.match_info["id"]
    await pace_source(
        runtime.pool, "enroll", source_of(request), now=now, limits=request.app[RATE_LIMITS]
    )
    async with runtime.pool.acquire() as connection:
        await rate_limit(
            connection,
            "enroll",
            "subject",
            official_id[:64],
            now=now,
            limits=request.app[RATE_LIMITS],
        )
    body = await read_json_object(request)
    try:
        proof = verify_enrollment_proof(
            _string(body, "proof", 16384), official_id=official_id, now=now
        )
        async with runtime.pool.acquire() as connection:
            key = await identity.enroll_key(
                connection,
                official_id=official_id,
                enrollment_code=proof.enrollment_code,
                kid=proof.thumbprint,
                public_jwk=proof.public_jwk,
                proof_jti=proof.jti,
                proof_replay_until=proof.replay_until,
                now=now,
                audit=audit_of(request),
            )
    except (JwsError, identity.IdentityError) as exc:
        await record_failure(request, "enroll", reason_of(exc))
        raise
    return json_response({"kid": key.kid, **key.as_json()}, status=201)


@routes.add(
    "GET",
    "/v1/officials/{id}/keys",
    summary="An official's keys (the official, its dept_admin, or an admin).",
    access="authenticated",
    tag="officials",
    parameters=(OFFICIAL_ID,),
    responses={"200": {"content": OBJECT}},
)
async def list_keys(request: web.Request) -> web.Response:
    official = await _load_official(request)
    if official.id != principal_of(request).official_id:
        await _require_manager(request, official)
    async with request.app[RUNTIME].pool.acquire() as connection:
        keys = await identity.list_keys(connection, official.id)
    return json_response({"items": [key.as_json() for key in keys], "next_cursor": None})


@routes.add(
    "DELETE",
    "/v1/officials/{id}/keys/{kid}",
    summary="Revoke a key at once: its tokens and refresh families stop working.",
    access="authenticated",
    tag="officials",
    parameters=(OFFICIAL_ID, path_param("kid", "Key id (RFC 7638 thumbprint).")),
    responses={"200": {"content": OBJECT}},
)
async def revoke_key(request: web.Request) -> web.Response:
    official = await _load_official(request)
    principal = principal_of(request)
    if official.id != principal.official_id:
        await _require_manager(request, official)
    async with request.app[RUNTIME].pool.acquire() as connection:
        key = await identity.revoke_key(
            connection,
            official.id,
            request.match_info["kid"],
            now=now_of(request),
            audit=audit_of(request),
            actor=principal.official_id,
        )
    return json_response(key.as_json())


@routes.add(
    "POST",
    "/v1/officials/{id}/disable",
    summary="Disable an official: no more logins, tokens refused at once.",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(OFFICIAL_ID,),
    responses={"200": {"content": OBJECT}},
)
async def disable_official(request: web.Request) -> web.Response:
    official = await _load_official(request)
    principal = await _require_manager(request, official)
    async with request.app[RUNTIME].pool.acquire() as connection:
        updated = await identity.disable_official(
            connection,
            official.id,
            now=now_of(request),
            audit=audit_of(request),
            actor=principal.official_id,
        )
    return json_response(updated.as_json())


def _granted_roles(body: dict[str, Any]) -> list[str]:
    return list(identity.normalize_roles(_string_list(body, "roles"))) if "roles" in body else []


@routes.add(
    "POST",
    "/v1/officials/{id}/transfer",
    summary=(
        "Move an official to another department: at once by an admin, else proposed by the"
        " releasing dept_admin and accepted by the receiving one. Keys and roles do not travel."
    ),
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(OFFICIAL_ID,),
    request_body=json_content(
        {
            "type": "object",
            "required": ["department"],
            "properties": {
                "department": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string"}},
            },
        }
    ),
    responses={"200": {"content": OBJECT}, "202": {"content": OBJECT}},
)
async def transfer_official(request: web.Request) -> web.Response:
    """The official arrives with ``clerk`` (if it had it) plus the roles the receiving side
    grants: ``roles`` here from an admin, or in the acceptance from the receiving
    dept_admin. Its keys, refresh families and pending code all end."""
    official = await _load_official(request)
    principal = await _require_manager(request, official)
    body = await read_json_object(request)
    department = _string(body, "department", 63)
    granted = _granted_roles(body)
    if "admin" in granted:
        await _forbid(request, "an admin is made only by two admins (POST /v1/officials)")
    if department == official.department:
        raise ApiError("invalid_request", "the official is already in that department")
    async with request.app[RUNTIME].pool.acquire() as connection:
        if "admin" not in principal.roles:
            if granted:
                await _forbid(request, "roles in the new department are granted by its side")
            pending, _ = await identity.open_request(
                connection,
                kind="transfer",
                official=official.id,
                department=official.department,
                target_department=department,
                requested_by=principal.official_id,
                requested_with_kid=principal.kid,
                now=now_of(request),
                audit=audit_of(request),
            )
            return _pending(pending)
        updated = await identity.transfer_official(
            connection,
            official.id,
            department=department,
            granted=granted,
            now=now_of(request),
            audit=audit_of(request),
            actor=principal.official_id,
            actor_jkt=principal.kid,
        )
    return json_response(updated.as_json())


# --- the second person ------------------------------------------------------------------------


async def _visible_request(request: web.Request) -> identity.OfficialRequest:
    """The request in the path: an admin sees all, a dept_admin those concerning its
    department (either side of a transfer) that a dept_admin could decide (not a code for an
    admin, inspector or dept_admin); else 404, for approving and declining alike."""
    principal = principal_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        pending = await identity.get_request(connection, request.match_info["id"])
        if "admin" in principal.roles:
            return pending
        official_roles: tuple[str, ...] = ()
        if pending.official is not None:
            official_roles = (await identity.get_official(connection, pending.official)).roles
    concerned = principal.department in (pending.department, pending.target_department)
    if concerned and not identity.admins_only(pending, official_roles):
        return pending
    await deny_access(request, "other_department")
    raise NotFound()


async def _require_independent(
    request: web.Request, connection: DbConnection, pending: identity.OfficialRequest
) -> None:
    """The approver is another person: not the requester, and neither handled the
    enrollment code of the key the other acts with."""
    principal = principal_of(request)
    if not identity.independent_people(
        pending.requested_by,
        await identity.code_handlers_of_key(connection, pending.requested_with_kid),
        principal.official_id,
        await identity.code_handlers_of_key(connection, principal.kid),
    ):
        await deny_access(request, "same_person")
        raise identity.SamePerson("a second, different person must approve this request")


@routes.add(
    "GET",
    "/v1/official-requests",
    summary="Requests waiting for a second person (admin: all; dept_admin: its department's).",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(query_param("status", "pending, approved, declined or cancelled."),),
    responses={"200": {"content": OBJECT}},
)
async def list_official_requests(request: web.Request) -> web.Response:
    principal = principal_of(request)
    status = query_text(request, "status", max_length=20)
    if status is not None and status not in REQUEST_STATES:
        raise ApiError("invalid_request", "status must be one of " + ", ".join(REQUEST_STATES))
    async with request.app[RUNTIME].pool.acquire() as connection:
        found = await identity.list_requests(
            connection,
            department=None if "admin" in principal.roles else principal.department,
            status=status,
        )
    return json_response({"items": [item.as_json() for item in found], "next_cursor": None})


REQUEST_STATES = ("pending", "approved", "declined", "cancelled")


@routes.add(
    "POST",
    "/v1/official-requests/{id}/approve",
    summary=(
        "Approve another manager's request: a four-eyes enrollment code (the approver"
        " receives it), a new privileged official, or a transfer into the approver's department."
    ),
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(REQUEST_ID,),
    request_body={
        "required": False,
        "content": json_content(
            {
                "type": "object",
                "properties": {"roles": {"type": "array", "items": {"type": "string"}}},
            }
        ),
    },
    responses={"200": {"content": OBJECT}, "201": {"content": OBJECT}},
)
async def approve_official_request(request: web.Request) -> web.Response:
    pending = await _visible_request(request)
    principal = principal_of(request)
    body = await read_json_object(request) if request.can_read_body else {}
    granted = _granted_roles(body)
    if pending.kind != "transfer" and granted:
        raise ApiError("invalid_request", "roles are granted only when accepting a transfer")
    official: Official | None = None
    if pending.official is not None:
        async with request.app[RUNTIME].pool.acquire() as connection:
            official = await identity.get_official(connection, pending.official)
    if pending.kind == "enrollment_code":
        assert official is not None
        await _require_manager(request, official)
        if official.id == principal.official_id:
            raise identity.SamePerson("ask for your own code yourself, signed with your key")
    elif pending.kind == "create_official":
        await _check_grant(request, pending.department, list(pending.payload.get("roles", [])))
    else:
        if "admin" not in principal.roles:
            if principal.department != pending.target_department:
                await _forbid(request, "the receiving department accepts a transfer")
            if not set(granted) <= DEPT_ADMIN_GRANTABLE:
                await _forbid(
                    request, "a dept_admin may grant only clerk, leader, seal_keeper, system"
                )
        if "admin" in granted:
            await _forbid(request, "an admin is made only by two admins (POST /v1/officials)")
    now = now_of(request)
    audit = audit_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        if pending.official is not None:
            # The official's row before the request's, as a transfer takes them: else an
            # approval racing a transfer of the same official deadlocks (a 500).
            await identity.get_official(connection, pending.official, for_update=True)
        await _require_independent(request, connection, pending)
        decided = await identity.decide_request(
            connection,
            pending.id,
            status="approved",
            decided_by=principal.official_id,
            decided_with_kid=principal.kid,
            now=now,
            audit=audit,
        )
        if decided.kind == "enrollment_code":
            assert decided.official is not None
            code, expires_at = await identity.new_enrollment_code(
                connection,
                decided.official,
                now=now,
                audit=audit,
                issued_by=principal.official_id,
                issued_with_kid=principal.kid,
                cosigned_by=decided.requested_by,
            )
            return _code_json(decided.official, code, expires_at)
        if decided.kind == "create_official":
            created = await identity.create_official(
                connection,
                name=str(decided.payload["name"]),
                department=str(decided.payload["department"]),
                roles=[str(role) for role in decided.payload["roles"]],
                now=now,
                audit=audit,
                actor=principal.official_id,
                via="four_eyes",
                cosigned_by=decided.requested_by,
            )
            return _created_json(created)
        assert decided.official is not None
        assert decided.target_department is not None
        moved = await identity.transfer_official(
            connection,
            decided.official,
            department=decided.target_department,
            granted=granted,
            now=now,
            audit=audit,
            actor=principal.official_id,
            actor_jkt=principal.kid,
            proposed_by=decided.requested_by,
            request_id=decided.id,
        )
    return json_response(moved.as_json())


@routes.add(
    "POST",
    "/v1/official-requests/{id}/decline",
    summary="Decline a pending request (its requester withdraws it, or a would-be approver).",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(REQUEST_ID,),
    responses={"200": {"content": OBJECT}},
)
async def decline_official_request(request: web.Request) -> web.Response:
    pending = await _visible_request(request)
    principal = principal_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        decided = await identity.decide_request(
            connection,
            pending.id,
            status="cancelled" if pending.requested_by == principal.official_id else "declined",
            decided_by=principal.official_id,
            decided_with_kid=principal.kid,
            now=now_of(request),
            audit=audit_of(request),
        )
    return json_response(decided.as_json())
