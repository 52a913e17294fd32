"""HTTP for department seals: parse, call the sealing service, render (rules: service.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator, Field

from gateway.http.bodies import after_time_id, json_response, page_params, parse_body, query_text
from gateway.http.errors import ApiError
from gateway.http.models import Lines, RequestBody, Text, Time, rfc3339
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.identity.auth import NotFound, now_of, principal_of
from gateway.sealing import views
from gateway.sealing.sealer import DEFAULT_PURPOSE
from gateway.sealing.service import RevocationAsk, SealRequestQuery, SealService
from keys import crl
from storage.vocabulary import ADMIN_ONLY, SealRequestKind, SealRequestStatus

routes = RouteTable()

SEALS: web.AppKey[SealService] = web.AppKey("seals", SealService)
REQUEST_STATES = tuple(SealRequestStatus)


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound() from None


def _request_status(request: web.Request) -> SealRequestStatus | None:
    status = query_text(request, "status", max_length=20)
    if status is None:
        return None
    if status not in REQUEST_STATES:
        raise ApiError("invalid_request", "status must be one of " + ", ".join(REQUEST_STATES))
    return SealRequestStatus(status)


class SealAsk(RequestBody):
    """A new seal for the department: what it is for (the text around the stamp's star)."""

    purpose: Text = Field(default=DEFAULT_PURPOSE, max_length=40)


def _reason_code(value: str) -> str:
    if value not in crl.REASONS:
        raise ValueError("must be one of " + ", ".join(crl.REASONS))
    return value


class RevocationBody(RequestBody):
    reason: Lines = Field(min_length=1, max_length=500)
    reason_code: Annotated[
        str, Field(json_schema_extra={"enum": sorted(crl.REASONS)}), AfterValidator(_reason_code)
    ] = "unspecified"
    invalid_since: Time | None = Field(
        default=None,
        description="key_compromise only: since when the key is unsafe (CRL invalidityDate); "
        "seals timestamped after it verify as revoked",
    )

    def ask(self) -> RevocationAsk:
        since = None if self.invalid_since is None else rfc3339(self.invalid_since)
        return RevocationAsk(self.reason, self.reason_code, since)


@routes.add(
    "POST",
    "/v1/departments/{code}/seal-requests",
    summary="Ask for a new department seal (an admin; another admin approves).",
    access="authenticated",
    roles=ADMIN_ONLY,
    tag="seals",
    parameters=(path_param("code", "Department code."),),
    request_model=SealAsk,
    responses={"201": views.SealRequestJson},
)
async def request_seal(request: web.Request) -> web.Response:
    purpose = (await parse_body(request, SealAsk)).purpose
    made = await request.app[SEALS].request_seal(
        principal_of(request), request.match_info["code"], purpose, now_of(request)
    )
    return json_response(views.request_json(made), status=201)


@routes.add(
    "POST",
    "/v1/seals/{id}/revoke",
    summary="Ask to revoke a seal (another admin approves).",
    access="authenticated",
    roles=ADMIN_ONLY,
    tag="seals",
    parameters=(path_param("id", "Seal id."),),
    request_model=RevocationBody,
    responses={"201": views.SealRequestJson},
)
async def request_revocation(request: web.Request) -> web.Response:
    ask = (await parse_body(request, RevocationBody)).ask()
    made = await request.app[SEALS].request_revocation(
        principal_of(request), _uuid(request, "id"), ask, now_of(request)
    )
    return json_response(views.request_json(made), status=201)


@routes.add(
    "POST",
    "/v1/seal-requests/{id}/approve",
    summary="Approve another admin's seal issuance or revocation request.",
    access="authenticated",
    roles=ADMIN_ONLY,
    tag="seals",
    parameters=(path_param("id", "Seal request id."),),
    responses={"201": views.SealJson, "200": views.SealJson},
)
async def approve_seal_request(request: web.Request) -> web.Response:
    decided = await request.app[SEALS].approve(
        principal_of(request), _uuid(request, "id"), now_of(request)
    )
    status = 201 if decided.kind == SealRequestKind.ISSUE else 200
    return json_response(views.seal_json(decided.seal), status=status)


@routes.add(
    "GET",
    "/v1/seal-requests",
    summary="Seal issuance and revocation requests, newest first (what waits for a second admin).",
    access="authenticated",
    roles=ADMIN_ONLY,
    tag="seals",
    parameters=(
        query_param(
            "status",
            "pending, approved, declined or cancelled (default: all).",
            schema={"type": "string", "enum": list(REQUEST_STATES)},
        ),
        query_param("department", "Department code: only its requests."),
        *PAGE_PARAMS,
    ),
    responses={"200": views.SealRequestPage},
)
async def list_seal_requests(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    query = SealRequestQuery(
        status=_request_status(request),
        department=query_text(request, "department", max_length=63),
        before=after_time_id(cursor),
        limit=limit,
    )
    page = await request.app[SEALS].requests(query)
    return json_response(views.request_page(page))


@routes.add(
    "POST",
    "/v1/seal-requests/{id}/decline",
    summary="End a pending seal request without a seal: its requester withdraws it, or another"
    " admin declines it.",
    access="authenticated",
    roles=ADMIN_ONLY,
    tag="seals",
    parameters=(path_param("id", "Seal request id."),),
    responses={"200": views.SealRequestJson},
)
async def decline_seal_request(request: web.Request) -> web.Response:
    closed = await request.app[SEALS].decline(
        principal_of(request), _uuid(request, "id"), now_of(request)
    )
    return json_response(views.request_json(closed))


@routes.add(
    "GET",
    "/v1/departments/{code}/seals",
    summary="The seals of a department.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("code", "Department code."),),
    responses={"200": views.SealList},
)
async def department_seals(request: web.Request) -> web.Response:
    seals = await request.app[SEALS].department_seals(request.match_info["code"])
    return json_response(views.seal_list_json(seals))


@routes.add(
    "GET",
    "/v1/seals/{id}",
    summary="A seal: certificate, status, validity.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("id", "Seal id."),),
    responses={"200": views.SealJson},
)
async def get_seal(request: web.Request) -> web.Response:
    seal = await request.app[SEALS].seal(_uuid(request, "id"))
    return json_response(views.seal_json(seal))


@routes.add(
    "GET",
    "/v1/seals/{id}/image.png",
    summary="The seal's red stamp image.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("id", "Seal id."),),
    responses={"200": {"content": {"image/png": {"schema": {"type": "string"}}}}},
)
async def seal_image(request: web.Request) -> web.Response:
    png = await request.app[SEALS].seal_image(_uuid(request, "id"))
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
