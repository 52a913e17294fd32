"""Officials and their keys over HTTP: creation, enrollment, revocation, disable, transfer,
and the four-eyes requests on them.

The rules (who may manage whom, when an act takes a second person) live in
:class:`~gateway.identity.service.OfficialsService`; these handlers parse the request, call
it and render its result. Where a resource must be visible or manageable before its body is
read (a caller who may not see it learns nothing from a 400), the handler asks the service
for the resource first, then for the act.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from gateway.http.bodies import json_response, page_params, parse_body, query_text
from gateway.http.errors import ApiError
from gateway.http.models import RequestBody, SingleLine
from gateway.http.openapi import json_content, schema_ref
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.identity import views
from gateway.identity.auth import caller_of, source_of
from gateway.identity.service import MANAGERS, DeviceInfo, OfficialQuery, OfficialsService
from storage.identity.official_requests import REQUEST_STATES
from storage.identity.officials import normalize_roles

routes = RouteTable()

OFFICIALS: web.AppKey[OfficialsService] = web.AppKey("officials_service", OfficialsService)

REQUEST_ID = path_param("id", "Official request id.")
OFFICIAL_ID = path_param("id", "Official id.")


class NewOfficialBody(RequestBody):
    name: SingleLine = Field(min_length=1, max_length=200)
    department: SingleLine = Field(min_length=1, max_length=63)
    roles: list[str]


class DeviceBody(RequestBody):
    kind: Literal["browser", "file"] = Field(
        description="browser: a console (WebCrypto) key, where passkeys apply; file: SDK, CLI"
    )
    label: SingleLine | None = Field(default=None, min_length=1, max_length=100)


class EnrollmentBody(RequestBody):
    proof: SingleLine = Field(
        min_length=1, max_length=16384, description="sealhub-enroll+jwt signed by the new key"
    )
    device: DeviceBody | None = Field(default=None, description="what the key is (default: file)")


class TransferBody(RequestBody):
    department: SingleLine = Field(min_length=1, max_length=63)
    roles: list[str] = Field(default_factory=list, description="roles in the new department")


class ApprovalBody(RequestBody):
    roles: list[str] = Field(default_factory=list, description="roles to grant (a transfer)")


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
    request_model=NewOfficialBody,
    responses={"201": views.NewOfficialJson, "202": views.PendingJson},
)
async def create_official(request: web.Request) -> web.Response:
    body = await parse_body(request, NewOfficialBody)
    created = await request.app[OFFICIALS].create_official(
        caller_of(request),
        name=body.name,
        department=body.department,
        roles=list(normalize_roles(body.roles)),
    )
    return views.outcome(created)


@routes.add(
    "GET",
    "/v1/officials",
    summary=(
        "A department's officials (the caller's own; admin and inspector may name any),"
        " with whether each has a working key."
    ),
    access="authenticated",
    tag="officials",
    parameters=(
        query_param("department", "Department code (default: the caller's)."),
        query_param("q", "Text found in the name or id (literally, no wildcards)."),
        *PAGE_PARAMS,
    ),
    responses={"200": views.OfficialListPage},
)
async def list_officials(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    query = OfficialQuery(
        department=query_text(request, "department", max_length=63),
        text=query_text(request, "q", max_length=100),
    )
    page = await request.app[OFFICIALS].list_officials(
        caller_of(request), query, after=views.after_official(cursor), limit=limit
    )
    return json_response(views.official_list_page(page))


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
    responses={"201": views.IssuedCodeJson, "202": views.PendingJson},
)
async def new_enrollment_code(request: web.Request) -> web.Response:
    officials = request.app[OFFICIALS]
    issued = await officials.enrollment_code(caller_of(request), request.match_info["id"])
    return views.outcome(issued)


@routes.add(
    "POST",
    "/v1/officials/{id}/keys",
    summary="Enroll a public key with an enrollment proof JWS signed by that key.",
    access="public",
    tag="officials",
    parameters=(OFFICIAL_ID,),
    request_model=EnrollmentBody,
    responses={"201": views.KeyJson},
)
async def enroll_key(request: web.Request) -> web.Response:
    officials = request.app[OFFICIALS]
    official_id = request.match_info["id"]
    # Paced and counted before the body is read: a flood costs the flooder, not the server.
    await officials.pace_enrollment(official_id, source_of(request))
    body = await parse_body(request, EnrollmentBody)
    device = DeviceInfo(body.device.kind, body.device.label) if body.device else None
    key = await officials.enroll_key(
        official_id, body.proof, source=source_of(request), device=device
    )
    return json_response(views.key(key), status=201)


@routes.add(
    "GET",
    "/v1/officials/{id}/keys",
    summary="An official's keys (the official, its dept_admin, or an admin).",
    access="authenticated",
    tag="officials",
    parameters=(OFFICIAL_ID,),
    responses={"200": views.KeyPage},
)
async def list_keys(request: web.Request) -> web.Response:
    found = await request.app[OFFICIALS].list_keys(caller_of(request), request.match_info["id"])
    return views.key_page(found)


@routes.add(
    "DELETE",
    "/v1/officials/{id}/keys/{kid}",
    summary="Revoke a key at once: its tokens and refresh families stop working.",
    access="authenticated",
    tag="officials",
    parameters=(OFFICIAL_ID, path_param("kid", "Key id (RFC 7638 thumbprint).")),
    responses={"200": views.KeyJson},
)
async def revoke_key(request: web.Request) -> web.Response:
    key = await request.app[OFFICIALS].revoke_key(
        caller_of(request), request.match_info["id"], request.match_info["kid"]
    )
    return json_response(views.key(key))


@routes.add(
    "POST",
    "/v1/officials/{id}/disable",
    summary="Disable an official: no more logins, tokens refused at once.",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(OFFICIAL_ID,),
    responses={"200": views.OfficialJson},
)
async def disable_official(request: web.Request) -> web.Response:
    disabled = await request.app[OFFICIALS].disable(caller_of(request), request.match_info["id"])
    return views.outcome(disabled)


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
    request_model=TransferBody,
    responses={"200": views.OfficialJson, "202": views.PendingJson},
)
async def transfer_official(request: web.Request) -> web.Response:
    officials = request.app[OFFICIALS]
    caller = caller_of(request)
    official = await officials.managed_official(caller, request.match_info["id"])
    body = await parse_body(request, TransferBody)
    moved = await officials.transfer(
        caller, official, department=body.department, granted=list(normalize_roles(body.roles))
    )
    return views.outcome(moved)


@routes.add(
    "GET",
    "/v1/official-requests",
    summary="Requests waiting for a second person (admin: all; dept_admin: its department's).",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(query_param("status", "pending, approved, declined or cancelled."),),
    responses={"200": views.OfficialRequestPage},
)
async def list_official_requests(request: web.Request) -> web.Response:
    status = query_text(request, "status", max_length=20)
    if status is not None and status not in REQUEST_STATES:
        raise ApiError("invalid_request", "status must be one of " + ", ".join(REQUEST_STATES))
    found = await request.app[OFFICIALS].list_requests(caller_of(request), status)
    return views.request_page(found)


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
    request_body={"required": False, "content": json_content(schema_ref(ApprovalBody))},
    responses={"200": views.OfficialJson, "201": views.NewOfficialJson | views.IssuedCodeJson},
)
async def approve_official_request(request: web.Request) -> web.Response:
    officials = request.app[OFFICIALS]
    caller = caller_of(request)
    pending = await officials.visible_request(caller, request.match_info["id"])
    body = await parse_body(request, ApprovalBody) if request.can_read_body else ApprovalBody()
    done = await officials.approve_request(caller, pending, list(normalize_roles(body.roles)))
    return views.outcome(done)


@routes.add(
    "POST",
    "/v1/official-requests/{id}/decline",
    summary="Decline a pending request (its requester withdraws it, or a would-be approver).",
    access="authenticated",
    roles=MANAGERS,
    tag="officials",
    parameters=(REQUEST_ID,),
    responses={"200": views.OfficialRequestJson},
)
async def decline_official_request(request: web.Request) -> web.Response:
    officials = request.app[OFFICIALS]
    decided = await officials.decline_request(caller_of(request), request.match_info["id"])
    return json_response(views.official_request(decided))
