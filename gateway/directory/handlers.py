"""Directory endpoints: organisation units and distribution groups (rules in service.py)."""

from __future__ import annotations

from aiohttp import web

from gateway.directory import views
from gateway.directory.service import DepartmentQuery, DirectoryService
from gateway.directory.views import DEPARTMENT, GROUP, NEW_DEPARTMENT, NEW_GROUP
from gateway.http.bodies import json_response, page_params, query_text, read_json_object
from gateway.http.openapi import json_content, page_of
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.identity.auth import principal_of
from storage.vocabulary import ADMIN_ONLY

routes = RouteTable()

DIRECTORY: web.AppKey[DirectoryService] = web.AppKey("directory", DirectoryService)
ADMIN = ADMIN_ONLY


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
    query = DepartmentQuery(
        parent=query_text(request, "parent", max_length=63),
        kind=query_text(request, "kind", max_length=32),
        text=query_text(request, "q"),
    )
    page = await request.app[DIRECTORY].departments(
        query, after=views.after_code(cursor), limit=limit
    )
    return json_response(views.page_json(page))


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
    department = await request.app[DIRECTORY].department(request.match_info["code"])
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
    page = await request.app[DIRECTORY].groups(after=views.after_code(cursor), limit=limit)
    return json_response(views.page_json(page))


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
    group = await request.app[DIRECTORY].group(request.match_info["code"])
    return json_response(group.as_json())


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
    department = views.new_department(await read_json_object(request))
    created = await request.app[DIRECTORY].create_department(principal_of(request), department)
    return json_response(created.as_json(), status=201)


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
    new = views.new_group(await read_json_object(request))
    group = await request.app[DIRECTORY].create_group(
        principal_of(request), new.code, new.name, new.members
    )
    return json_response(group.as_json(), status=201)
