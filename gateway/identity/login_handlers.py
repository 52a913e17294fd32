"""Login endpoints: challenge nonces, the token endpoint (RFC 7523 + RFC 9449), JWKS, /v1/me.

The login rules live in :class:`~gateway.identity.service.LoginService`; the DPoP proof of a
token request is checked here (it is HTTP: the method, the URL, the server nonce header),
when the service asks for it.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from gateway.http.bodies import json_response, parse_json_bytes
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable
from gateway.identity import views
from gateway.identity.auth import (
    TOKEN_PATH,
    checked_dpop_proof,
    principal_of,
    public_url,
    source_of,
)
from gateway.identity.service import LoginService, is_official_id
from gateway.runtime import RUNTIME
from keys.dpop import DpopProof
from keys.jws import InvalidDpopError

routes = RouteTable()

LOGIN: web.AppKey[LoginService] = web.AppKey("login_service", LoginService)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH = "refresh_token"

TOKEN_RESPONSE = json_content(
    {
        "type": "object",
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "DPoP"},
            "expires_in": {"type": "integer"},
            "refresh_token": {"type": "string"},
            "notices": {"type": "array", "items": {"type": "object"}},
        },
    }
)


@routes.add(
    "POST",
    "/v1/auth/challenge",
    summary="A single-use login nonce for an official (stateless HMAC, at most 120 s).",
    access="public",
    tag="auth",
    request_body=json_content(
        {"type": "object", "required": ["subject"], "properties": {"subject": {"type": "string"}}}
    ),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def challenge(request: web.Request) -> web.Response:
    body = parse_json_bytes(await request.read())
    subject = body.get("subject") if isinstance(body, dict) else None
    if not is_official_id(subject):
        raise ApiError("invalid_request", "subject must be the official id")
    issued = await request.app[LOGIN].challenge(subject, source_of(request))
    return json_response({"nonce": issued.nonce, "expires_in": issued.expires_in})


async def _token_form(request: web.Request) -> dict[str, str]:
    """The token request as form fields (RFC 6749) or a JSON object of strings."""
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            form = await request.post()
        except UnicodeDecodeError:
            raise ApiError("invalid_request", "the form is not valid UTF-8") from None
        fields: dict[str, Any] = {}
        for name in form:
            values = form.getall(name)
            if len(values) != 1:
                raise ApiError("invalid_request", f"{name} given more than once")
            fields[name] = values[0]
    elif request.content_type in ("application/json", ""):
        parsed = parse_json_bytes(await request.read())
        if not isinstance(parsed, dict):
            raise ApiError("invalid_json", "the body must be a JSON object")
        fields = parsed
    else:
        raise ApiError("unsupported_media_type", "send a form or JSON", status=415)
    if not all(isinstance(value, str) for value in fields.values()):
        raise ApiError("invalid_request", "every field must be a string")
    return fields


async def _dpop_for_token(request: web.Request) -> DpopProof:
    proofs = request.headers.getall("DPoP", [])
    if len(proofs) != 1:
        raise InvalidDpopError("missing", "send exactly one DPoP proof header")
    url = public_url(request.app[RUNTIME], TOKEN_PATH)
    return await checked_dpop_proof(request, proofs[0], url=url)


def _field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if not value:
        raise ApiError("invalid_request", f"{name} is required")
    return value


@routes.add(
    "POST",
    TOKEN_PATH,
    summary="Exchange a login assertion or a refresh token for a DPoP-bound access token.",
    access="public",
    tag="auth",
    request_body={
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        }
    },
    responses={"200": {"content": TOKEN_RESPONSE}},
)
async def token(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    source = source_of(request)
    await login.pace("token", source)
    fields = await _token_form(request)
    grant = fields.get("grant_type")
    prove = functools.partial(_dpop_for_token, request)
    if grant == JWT_BEARER:
        issued = await login.log_in(_field(fields, "assertion"), prove, source=source)
    elif grant == REFRESH:
        issued = await login.refresh(_field(fields, "refresh_token"), prove, source=source)
    else:
        raise ApiError("invalid_request", "grant_type must be jwt-bearer or refresh_token")
    return views.token(issued)


@routes.add(
    "GET",
    "/.well-known/jwks.json",
    summary="The gateway's public keys (token and receipt signing).",
    access="public",
    tag="auth",
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def jwks(request: web.Request) -> web.Response:
    published = request.app[LOGIN].jwks()
    return json_response(published, headers={"Cache-Control": "public, max-age=60"})


@routes.add(
    "GET",
    "/v1/me",
    summary="The authenticated official: id, name, department, roles, key id.",
    access="authenticated",
    tag="auth",
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def me(request: web.Request) -> web.Response:
    return json_response(views.me(principal_of(request)))
