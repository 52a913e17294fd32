"""Directory endpoints: organisation units and distribution groups."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import ApiError
from gateway.http import encode_cursor, json_response, page_params, query_text
from gateway.openapi import json_content, page_of
from gateway.routes_table import routes
from gateway.routing import PAGE_PARAMS, path_param, query_param
from gateway.runtime import RUNTIME
from storage import directory

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
