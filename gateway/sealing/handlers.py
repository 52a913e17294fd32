"""HTTP for department seals: parse, call the sealing service, render (rules: service.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.http.bodies import json_response, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import NotFound, now_of, principal_of
from gateway.sealing import views
from gateway.sealing.sealer import DEFAULT_PURPOSE
from gateway.sealing.service import RevocationAsk, SealService
from gateway.sealing.views import SEAL, SEAL_REQUEST
from keys import crl
from storage.vocabulary import ADMIN_ONLY, SealRequestKind

routes = RouteTable()

SEALS: web.AppKey[SealService] = web.AppKey("seals", SealService)


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound() from None


def _purpose(body: dict[str, Any]) -> str:
    purpose = body.get("purpose", DEFAULT_PURPOSE)
    if not isinstance(purpose, str) or not 1 <= len(purpose.strip()) <= 40:
        raise ApiError("invalid_request", "purpose must be 1 to 40 characters")
    if (unsafe := unsafe_character(purpose)) is not None:
        raise ApiError("invalid_request", f"purpose must not contain {unsafe}")
    return purpose


def _revocation_ask(body: dict[str, Any]) -> RevocationAsk:
    reason = body.get("reason")
    if not isinstance(reason, str) or not 1 <= len(reason) <= 500:
        raise ApiError("invalid_request", "reason must be 1 to 500 characters")
    if (unsafe := unsafe_character(reason, multiline=True)) is not None:
        raise ApiError("invalid_request", f"reason must not contain {unsafe}")
    reason_code = body.get("reason_code", "unspecified")
    if reason_code not in crl.REASONS:
        raise ApiError("invalid_request", "reason_code must be one of " + ", ".join(crl.REASONS))
    return RevocationAsk(reason, reason_code, _rfc3339(body.get("invalid_since")))


def _rfc3339(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ApiError("invalid_request", "invalid_since must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("invalid_request", "invalid_since must be an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ApiError("invalid_request", "invalid_since needs a time zone (e.g. Z)")
    return parsed


@routes.add(
    "POST",
    "/v1/departments/{code}/seal-requests",
    summary="Ask for a new department seal (an admin; another admin approves).",
    access="authenticated",
    roles=ADMIN_ONLY,
    tag="seals",
    parameters=(path_param("code", "Department code."),),
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "properties": {"purpose": {"type": "string", "maxLength": 40}},
            }
        ),
    },
    responses={"201": {"content": SEAL_REQUEST}},
)
async def request_seal(request: web.Request) -> web.Response:
    purpose = _purpose(await read_json_object(request))
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
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "reason": {"type": "string", "maxLength": 500},
                    "reason_code": {"type": "string", "enum": sorted(crl.REASONS)},
                    "invalid_since": {
                        "type": "string",
                        "format": "date-time",
                        "description": "key_compromise only: since when the key is unsafe"
                        " (CRL invalidityDate); seals timestamped after it verify as revoked",
                    },
                },
            }
        ),
    },
    responses={"201": {"content": SEAL_REQUEST}},
)
async def request_revocation(request: web.Request) -> web.Response:
    ask = _revocation_ask(await read_json_object(request))
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
    responses={"201": {"content": SEAL}, "200": {"content": SEAL}},
)
async def approve_seal_request(request: web.Request) -> web.Response:
    decided = await request.app[SEALS].approve(
        principal_of(request), _uuid(request, "id"), now_of(request)
    )
    status = 201 if decided.kind == SealRequestKind.ISSUE else 200
    return json_response(views.seal_json(decided.seal), status=status)


@routes.add(
    "GET",
    "/v1/departments/{code}/seals",
    summary="The seals of a department.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("code", "Department code."),),
    responses={"200": {"content": json_content({"type": "object"})}},
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
    responses={"200": {"content": SEAL}},
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
