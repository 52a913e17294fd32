"""Directory endpoints: organisation units and distribution groups (rules in service.py)."""

from __future__ import annotations

from aiohttp import web

from gateway.directory import views
from gateway.directory.service import DepartmentQuery, DirectoryService
from gateway.directory.views import NewDepartment, NewGroup
from gateway.http.bodies import json_response, page_params, parse_body, query_text
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
    responses={"200": views.DepartmentPage},
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
    return json_response(views.departments_json(page))


@routes.add(
    "GET",
    "/v1/departments/{code}",
    summary="One organisation unit.",
    access="authenticated",
    tag="directory",
    parameters=(path_param("code", "Unit code."),),
    responses={"200": views.Department},
)
async def get_department(request: web.Request) -> web.Response:
    department = await request.app[DIRECTORY].department(request.match_info["code"])
    return json_response(views.department_json(department))


@routes.add(
    "GET",
    "/v1/groups",
    summary="List distribution groups.",
    access="authenticated",
    tag="directory",
    parameters=PAGE_PARAMS,
    responses={"200": views.GroupPage},
)
async def list_groups(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    page = await request.app[DIRECTORY].groups(after=views.after_code(cursor), limit=limit)
    return json_response(views.groups_json(page))


@routes.add(
    "GET",
    "/v1/groups/{code}",
    summary="One distribution group with its members.",
    access="authenticated",
    tag="directory",
    parameters=(path_param("code", "Group code."),),
    responses={"200": views.Group},
)
async def get_group(request: web.Request) -> web.Response:
    group = await request.app[DIRECTORY].group(request.match_info["code"])
    return json_response(views.group_json(group))


@routes.add(
    "POST",
    "/v1/departments",
    summary="Add an organisation unit (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="directory",
    request_model=NewDepartment,
    responses={"201": views.Department},
)
async def create_department(request: web.Request) -> web.Response:
    department = (await parse_body(request, NewDepartment)).department()
    created = await request.app[DIRECTORY].create_department(principal_of(request), department)
    return json_response(views.department_json(created), status=201)


@routes.add(
    "POST",
    "/v1/groups",
    summary="Add a distribution group (admin); its code may then stand for its members.",
    access="authenticated",
    roles=ADMIN,
    tag="directory",
    request_model=NewGroup,
    responses={"201": views.Group},
)
async def create_group(request: web.Request) -> web.Response:
    new = await parse_body(request, NewGroup)
    group = await request.app[DIRECTORY].create_group(
        principal_of(request), new.code, new.name, list(new.members)
    )
    return json_response(views.group_json(group), status=201)
