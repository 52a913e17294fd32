"""Login endpoints: challenge nonces, the token endpoint (RFC 7523 + RFC 9449), JWKS, /v1/me.

The login rules live in :class:`~gateway.identity.service.LoginService`; the DPoP proof of a
token request is checked here (it is HTTP: the method, the URL, the server nonce header),
when the service asks for it.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, Field, model_validator

from gateway.http.bodies import json_response, parse_json_bytes
from gateway.http.errors import ApiError
from gateway.http.models import RequestBody, validate
from gateway.http.openapi import schema_ref
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


def _official_id(value: str) -> str:
    if not is_official_id(value):
        raise ValueError("must be the official id")
    return value


class ChallengeBody(RequestBody):
    subject: Annotated[str, AfterValidator(_official_id)]


def _all_strings(raw: Any) -> Any:
    if isinstance(raw, dict) and not all(isinstance(value, str) for value in raw.values()):
        raise ValueError("every field must be a string")
    return raw


class TokenRequest(RequestBody):
    """RFC 6749 token request fields, as a form or a JSON object of strings."""

    grant_type: str | None = Field(default=None, description=f"{JWT_BEARER} or {REFRESH}")
    assertion: str | None = Field(default=None, description="jwt-bearer: the login assertion")
    refresh_token: str | None = Field(default=None, description="refresh_token: the token")
    passkey: str | None = Field(
        default=None,
        max_length=16384,
        description="jwt-bearer from a console key: the AuthenticationResponseJSON (as JSON"
        " text) whose challenge is b64url(SHA-256(assertion))",
    )

    _strings = model_validator(mode="before")(_all_strings)


@routes.add(
    "POST",
    "/v1/auth/challenge",
    summary="A single-use login nonce for an official (stateless HMAC, at most 120 s).",
    access="public",
    tag="auth",
    request_model=ChallengeBody,
    responses={"200": views.ChallengeJson},
)
async def challenge(request: web.Request) -> web.Response:
    # Any media type, as before: the body is read as JSON whatever it is labelled.
    subject = validate(ChallengeBody, parse_json_bytes(await request.read())).subject
    issued = await request.app[LOGIN].challenge(subject, source_of(request))
    return json_response(views.challenge(issued.nonce, issued.expires_in))


async def _token_form(request: web.Request) -> TokenRequest:
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
    return validate(TokenRequest, fields)


async def _dpop_for_token(request: web.Request) -> DpopProof:
    proofs = request.headers.getall("DPoP", [])
    if len(proofs) != 1:
        raise InvalidDpopError("missing", "send exactly one DPoP proof header")
    url = public_url(request.app[RUNTIME], TOKEN_PATH)
    return await checked_dpop_proof(request, proofs[0], url=url)


def _field(value: str | None, name: str) -> str:
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
            "application/x-www-form-urlencoded": {"schema": schema_ref(TokenRequest)},
            "application/json": {"schema": schema_ref(TokenRequest)},
        }
    },
    responses={"200": views.TokenJson},
)
async def token(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    source = source_of(request)
    await login.pace("token", source)
    fields = await _token_form(request)
    grant = fields.grant_type
    prove = functools.partial(_dpop_for_token, request)
    if grant == JWT_BEARER:
        assertion = _field(fields.assertion, "assertion")
        issued = await login.log_in(assertion, prove, source=source, passkey=fields.passkey)
    elif grant == REFRESH:
        refresh = _field(fields.refresh_token, "refresh_token")
        issued = await login.refresh(refresh, prove, source=source)
    else:
        raise ApiError("invalid_request", "grant_type must be jwt-bearer or refresh_token")
    return views.token(issued)


@routes.add(
    "GET",
    "/.well-known/jwks.json",
    summary="The gateway's public keys (token and receipt signing).",
    access="public",
    tag="auth",
    responses={"200": views.Jwks},
)
async def jwks(request: web.Request) -> web.Response:
    published = request.app[LOGIN].jwks()
    return json_response(published, headers={"Cache-Control": "public, max-age=60"})


@routes.add(
    "GET",
    "/v1/me",
    summary="The authenticated official: id, name, department, roles, key id, passkey state.",
    access="authenticated",
    tag="auth",
    responses={"200": views.MeJson},
)
async def me(request: web.Request) -> web.Response:
    return json_response(views.me(principal_of(request)))
