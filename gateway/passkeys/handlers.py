"""Passkeys over HTTP: registration (options, then the authenticator's answer), the list and
removal of an official's passkeys, and the department setting that requires them.

The rules are in :class:`~gateway.passkeys.service.PasskeyService`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, StrictBool

from gateway.http.bodies import json_response, parse_body
from gateway.http.models import RequestBody, SingleLine
from gateway.http.openapi import json_content, schema_ref
from gateway.http.routing import RouteTable, path_param
from gateway.identity.auth import caller_of
from gateway.identity.service import MANAGERS
from gateway.passkeys import views
from gateway.passkeys.service import PasskeyService

routes = RouteTable()

PASSKEYS: web.AppKey[PasskeyService] = web.AppKey("passkey_service", PasskeyService)

OFFICIAL_ID = path_param("id", "Official id.")
DEPARTMENT = path_param("code", "Department code.")


class RegistrationBody(RequestBody):
    credential: dict[str, Any] = Field(
        description="RegistrationResponseJSON: id, rawId, type, response{clientDataJSON,"
        " attestationObject, transports}"
    )
    label: SingleLine = Field(default="passkey", min_length=1, max_length=100)
    passkey: dict[str, Any] | None = Field(
        default=None,
        description="step-up by a current passkey: AuthenticationResponseJSON whose challenge"
        " is b64url(SHA-256(ASCII of publicKey.challenge))",
    )


class RemovalBody(RequestBody):
    passkey: dict[str, Any] | None = Field(
        default=None,
        description="the official's own console: AuthenticationResponseJSON of a current"
        ' passkey whose challenge is b64url(SHA-256("remove-passkey:" + passkey id))',
    )


class SettingsBody(RequestBody):
    passkey_required: StrictBool = Field(
        description="console logins of admin, inspector, leader and seal_keeper need a passkey"
    )


@routes.add(
    "POST",
    "/v1/passkeys/registration-options",
    summary="WebAuthn creation options with a fresh challenge (console key sessions; 5 min).",
    access="authenticated",
    tag="passkeys",
    responses={"200": views.RegistrationOptionsJson},
)
async def registration_options(request: web.Request) -> web.Response:
    options = await request.app[PASSKEYS].registration_options(caller_of(request))
    return json_response(views.registration_options(options))


@routes.add(
    "POST",
    "/v1/passkeys",
    summary="Register the caller's passkey (no active passkey, a key enrolled after the newest"
    " one, or a step-up by a current passkey).",
    access="authenticated",
    tag="passkeys",
    request_model=RegistrationBody,
    responses={"201": views.PasskeyJson},
)
async def register_passkey(request: web.Request) -> web.Response:
    passkeys = request.app[PASSKEYS]
    caller = caller_of(request)
    passkeys.console_only(caller)
    body = await parse_body(request, RegistrationBody)
    added = await passkeys.register(caller, body.credential, body.label, body.passkey)
    return json_response(views.passkey(added), status=201)


@routes.add(
    "GET",
    "/v1/officials/{id}/passkeys",
    summary="An official's passkeys (the official, its dept_admin, or an admin).",
    access="authenticated",
    tag="passkeys",
    parameters=(OFFICIAL_ID,),
    responses={"200": views.PasskeyPage},
)
async def list_passkeys(request: web.Request) -> web.Response:
    found = await request.app[PASSKEYS].list(caller_of(request), request.match_info["id"])
    return json_response(views.passkey_page(found))


@routes.add(
    "DELETE",
    "/v1/officials/{id}/passkeys/{passkey}",
    summary="Remove a passkey (the official, its dept_admin, or an admin).",
    access="authenticated",
    tag="passkeys",
    parameters=(OFFICIAL_ID, path_param("passkey", "Passkey id.")),
    request_body={"required": False, "content": json_content(schema_ref(RemovalBody))},
    responses={"200": views.PasskeyJson},
)
async def remove_passkey(request: web.Request) -> web.Response:
    passkeys = request.app[PASSKEYS]
    caller, official = caller_of(request), request.match_info["id"]
    await passkeys.reachable(caller, official)  # who may, before the body is read
    body = await parse_body(request, RemovalBody) if request.can_read_body else RemovalBody()
    removed = await passkeys.remove(caller, official, request.match_info["passkey"], body.passkey)
    return json_response(views.passkey(removed))


@routes.add(
    "GET",
    "/v1/departments/{code}/settings",
    summary="A department's settings (its dept_admin, or an admin).",
    access="authenticated",
    roles=MANAGERS,
    tag="passkeys",
    parameters=(DEPARTMENT,),
    responses={"200": views.SettingsJson},
)
async def department_settings(request: web.Request) -> web.Response:
    found = await request.app[PASSKEYS].settings(caller_of(request), request.match_info["code"])
    return json_response(views.settings(found))


@routes.add(
    "PUT",
    "/v1/departments/{code}/settings",
    summary="Change a department's settings (its dept_admin, or an admin); audited.",
    access="authenticated",
    roles=MANAGERS,
    tag="passkeys",
    parameters=(DEPARTMENT,),
    request_model=SettingsBody,
    responses={"200": views.SettingsJson},
)
async def change_department_settings(request: web.Request) -> web.Response:
    passkeys = request.app[PASSKEYS]
    caller = caller_of(request)
    department = request.match_info["code"]
    await passkeys.settings(caller, department)  # who may, before the body is read
    body = await parse_body(request, SettingsBody)
    changed = await passkeys.change_settings(
        caller, department, passkey_required=body.passkey_required
    )
    return json_response(views.settings(changed))
