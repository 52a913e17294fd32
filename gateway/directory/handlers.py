"""Directory endpoints: organisation units and distribution groups."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.http.bodies import (
    encode_cursor,
    json_response,
    page_params,
    query_text,
    read_json_object,
)
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content, page_of
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import now_of, principal_of
from gateway.runtime import RUNTIME
from storage import directory
from storage.audit_outbox import AuditEvent, record_event
from storage.vocabulary import ADMIN_ONLY

routes = RouteTable()

DEPARTMENT = {"$ref": "#/components/schemas/Department"}
GROUP = {"$ref": "#/components/schemas/Group"}


def _after(cursor: dict[str, Any] | None) -> str | None:
    if cursor is None:
        return None
    after = cursor.get("after")
    if not isinstance(after, str):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return after


@routes.add(
    "GET",
    "/v1/departments",
    summary="List organisation units.",
    access="authenticated",
    tag="directory",
    parameters=(
        query_param("parent", "Only the direct children of this unit."),
        query_param("q", "Text to find in the code, Chinese or English name."),
        query_param("kind", "city, county, department, ..."),
        *PAGE_PARAMS,
    ),
    responses={"200": {"content": json_content(page_of(DEPARTMENT["$ref"]))}},
)
async def list_departments(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    parent = query_text(request, "parent", max_length=63)
    kind = query_text(request, "kind", max_length=32)
    async with request.app[RUNTIME].pool.acquire() as connection:
        page = await directory.list_departments(
            connection,
            parent=parent,
            kind=kind,
            query=query_text(request, "q"),
            after=_after(cursor),
            limit=limit + 1,
        )
    more = len(page) > limit
    items = page[:limit]
    next_cursor = encode_cursor({"after": items[-1].code}) if more else None
    return json_response({"items": [d.as_json() for d in items], "next_cursor": next_cursor})


@routes.add(
    "GET",
    "/v1/departments/{code}",
    summary="One organisation unit.",
    access="authenticated",
    tag="directory",
    parameters=(path_param("code", "Unit code."),),
    responses={"200": {"content": json_content(DEPARTMENT)}},
)
async def get_department(request: web.Request) -> web.Response:
    async with request.app[RUNTIME].pool.acquire() as connection:
        department = await directory.get_department(connection, request.match_info["code"])
    return json_response(department.as_json())


@routes.add(
    "GET",
    "/v1/groups",
    summary="List distribution groups.",
    access="authenticated",
    tag="directory",
    parameters=PAGE_PARAMS,
    responses={"200": {"content": json_content(page_of(GROUP["$ref"]))}},
)
async def list_groups(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        page = await directory.list_groups(connection, after=_after(cursor), limit=limit + 1)
    more = len(page) > limit
    items = page[:limit]
    next_cursor = encode_cursor({"after": items[-1].code}) if more else None
    return json_response({"items": [g.as_json() for g in items], "next_cursor": next_cursor})


@routes.add(
    "GET",
    "/v1/groups/{code}",
    summary="One distribution group with its members.",
    access="authenticated",
    tag="directory",
    parameters=(path_param("code", "Group code."),),
    responses={"200": {"content": json_content(GROUP)}},
)
async def get_group(request: web.Request) -> web.Response:
    async with request.app[RUNTIME].pool.acquire() as connection:
        group = await directory.get_group(connection, request.match_info["code"])
    return json_response(group.as_json())


ADMIN = ADMIN_ONLY
MAX_GROUP_MEMBERS = 2000
_CODE = {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{0,62}$"}
NEW_DEPARTMENT = {
    "type": "object",
    "required": ["code", "name", "kind"],
    "additionalProperties": False,
    "properties": {
        "code": _CODE,
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "name_en": {"type": "string", "maxLength": 300},
        "parent": {"oneOf": [_CODE, {"type": "null"}]},
        "kind": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
    },
}
NEW_GROUP = {
    "type": "object",
    "required": ["code", "name", "members"],
    "additionalProperties": False,
    "properties": {
        "code": _CODE,
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "members": {"type": "array", "minItems": 1, "maxItems": MAX_GROUP_MEMBERS, "items": _CODE},
    },
}


def _code(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not directory.CODE_PATTERN.fullmatch(value):
        raise ApiError(
            "invalid_request", f"{key} must be a code: a-z, 0-9, '.', '-' (1 to 63 characters)"
        )
    return value


def _text(body: dict[str, Any], key: str, *, min_length: int, max_length: int) -> str:
    value = body.get(key, "" if min_length == 0 else None)
    if not isinstance(value, str) or not min_length <= len(value.strip()) <= max_length:
        raise ApiError("invalid_request", f"{key} must be {min_length} to {max_length} characters")
    if (unsafe := unsafe_character(value)) is not None:
        raise ApiError("invalid_request", f"{key} must not contain {unsafe}")
    return value.strip()


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError("invalid_request", "unknown field(s): " + ", ".join(unknown))


@routes.add(
    "POST",
    "/v1/departments",
    summary="Add an organisation unit (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="directory",
    request_body={"required": True, "content": json_content(NEW_DEPARTMENT)},
    responses={"201": {"content": json_content(DEPARTMENT)}},
)
async def create_department(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json_object(request)
    _only(body, {"code", "name", "name_en", "parent", "kind"})
    kind = body.get("kind")
    if not isinstance(kind, str) or not directory.KIND_PATTERN.fullmatch(kind):
        raise ApiError("invalid_request", "kind must be 1 to 32 of a-z and '_' (e.g. department)")
    department = directory.Department(
        code=str(_code(body, "code")),
        name=_text(body, "name", min_length=1, max_length=200),
        name_en=_text(body, "name_en", min_length=0, max_length=300),
        parent=_code(body, "parent", required=False),
        kind=kind,
    )
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        await directory.create_department(connection, department)
        await record_event(
            connection,
            AuditEvent(
                "department.created",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=department.code,
                details=department.as_json(),
            ),
        )
    return json_response(department.as_json(), status=201)


@routes.add(
    "POST",
    "/v1/groups",
    summary="Add a distribution group (admin); its code may then stand for its members.",
    access="authenticated",
    roles=ADMIN,
    tag="directory",
    request_body={"required": True, "content": json_content(NEW_GROUP)},
    responses={"201": {"content": json_content(GROUP)}},
)
async def create_group(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json_object(request)
    _only(body, {"code", "name", "members"})
    code = str(_code(body, "code"))
    name = _text(body, "name", min_length=1, max_length=200)
    members = body.get("members")
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_GROUP_MEMBERS:
        raise ApiError(
            "invalid_request", f"members must be a list of 1 to {MAX_GROUP_MEMBERS} unit codes"
        )
    member_codes = [str(_code({"member": m}, "member")) for m in members]
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        group = await directory.create_group(connection, code, name, member_codes)
        await record_event(
            connection,
            AuditEvent(
                "group.created",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                details=group.as_json(),
            ),
        )
    return json_response(group.as_json(), status=201)
