"""Officials and their keys: creation, enrollment, revocation, disable, transfer.

Who may do what (API.md): an ``admin`` anything anywhere; a ``dept_admin`` only inside its
own department and only for officials whose roles it could have granted itself
(``clerk``, ``leader``, ``seal_keeper``, ``system``); every official its own keys.
Officials of another department are 404, a missing right inside one's department is 403.
"""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web

from gateway.auth import (
    Forbidden,
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
from gateway.errors import ApiError
from gateway.http import json_response, read_json_object
from gateway.openapi import json_content
from gateway.ratelimit import RATE_LIMITS, pace_source
from gateway.ratelimit import check as rate_limit
from gateway.routes_table import routes
from gateway.routing import path_param
from gateway.runtime import RUNTIME
from gateway.text import unsafe_character
from keys.jws import JwsError, verify_enrollment_proof
from storage import identity
from storage.identity import DEPT_ADMIN_GRANTABLE, Official

MANAGERS = frozenset({"admin", "dept_admin"})
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
    summary="Create an official (dept_admin of the department, or admin); one enrollment code.",
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
    responses={"201": {"content": OBJECT}},
)
async def create_official(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    name = _string(body, "name")
    department = _string(body, "department", 63)
    roles = list(identity.normalize_roles(_string_list(body, "roles")))
    await _check_grant(request, department, roles)
    async with request.app[RUNTIME].pool.acquire() as connection:
        created = await identity.create_official(
            connection,
            name=name,
            department=department,
            roles=roles,
            now=now_of(request),
            audit=audit_of(request),
            actor=principal_of(request).official_id,
        )
    return json_response(
        {
            **created.official.as_json(),
            "enrollment_code": created.enrollment_code,
            "enrollment_code_expires_at": created.code_expires_at.isoformat().replace(
                "+00:00", "Z"
            ),
        },
        status=201,
    )


@routes.add(
    "POST",
    "/v1/officials/{id}/enrollment-code",
    summary="A new enrollment code for another device (replaces a pending one).",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(OFFICIAL_ID,),
    responses={"201": {"content": OBJECT}},
)
async def new_enrollment_code(request: web.Request) -> web.Response:
    official = await _load_official(request)
    await _require_manager(request, official)
    async with request.app[RUNTIME].pool.acquire() as connection:
        code, expires_at = await identity.new_enrollment_code(
            connection, official.id, now=now_of(request)
        )
    return json_response(
        {
            "id": official.id,
            "enrollment_code": code,
            "enrollment_code_expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        },
        status=201,
    )


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


@routes.add(
    "POST",
    "/v1/officials/{id}/transfer",
    summary="Move an official to another department; privileged roles do not travel.",
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
    responses={"200": {"content": OBJECT}},
)
async def transfer_official(request: web.Request) -> web.Response:
    """Roles are re-checked: by default only the dept_admin-grantable ones are kept; an
    admin may name the new roles; a dept_admin may only keep (never add) roles."""
    official = await _load_official(request)
    principal = await _require_manager(request, official)
    body = await read_json_object(request)
    department = _string(body, "department", 63)
    kept = sorted(set(official.roles) & DEPT_ADMIN_GRANTABLE)
    roles = list(identity.normalize_roles(_string_list(body, "roles"))) if "roles" in body else kept
    if "admin" not in principal.roles and not set(roles) <= set(kept):
        await _forbid(request, "a dept_admin may only keep roles the official already holds")
    async with request.app[RUNTIME].pool.acquire() as connection:
        updated = await identity.transfer_official(
            connection,
            official.id,
            department=department,
            roles=roles,
            now=now_of(request),
            audit=audit_of(request),
            actor=principal.official_id,
        )
    return json_response(updated.as_json())
