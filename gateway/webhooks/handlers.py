"""Webhooks of a department (its dept_admin), dead letters, and the admins' allow-list.

The rules and units of work are :class:`~gateway.webhooks.service.WebhookService`'s; these
handlers check the path's department, parse, and render (views.py).
"""

from __future__ import annotations

import uuid

from aiohttp import web

from gateway.http.bodies import json_response, page_params, read_json_object
from gateway.http.models import M, validate
from gateway.http.routing import RouteTable, path_param, query_param
from gateway.identity.auth import NotFound, principal_of, require_department
from gateway.webhooks import views
from gateway.webhooks.service import WebhookService
from gateway.webhooks.views import NewAllowEntryBody, NewWebhookBody, PolicyBody
from gateway.webhooks.worker import parse_target
from storage.vocabulary import ADMIN_ONLY, DEPT_ADMIN_ONLY

routes = RouteTable()

WEBHOOKS: web.AppKey[WebhookService] = web.AppKey("webhooks", WebhookService)
DEPT_ADMIN = DEPT_ADMIN_ONLY
ADMIN = ADMIN_ONLY


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound() from None


async def _parse(request: web.Request, model: type[M]) -> M:
    """*model* from the JSON body, refused with the codes the webhook fields always had."""
    return validate(model, await read_json_object(request), refuse=views.refusal)


async def _department(request: web.Request) -> str:
    """The path's department, managed only by its own dept_admin (others: 404)."""
    code = request.match_info["code"]
    await require_department(request, code, cross_department_roles=())
    return code


@routes.add(
    "POST",
    "/v1/departments/{code}/webhooks",
    summary="Register a webhook (target on the allow-list; the secret is shown once).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."),),
    request_model=NewWebhookBody,
    responses={"201": views.NewWebhookJson},
)
async def create_webhook(request: web.Request) -> web.Response:
    department = await _department(request)
    body = await _parse(request, NewWebhookBody)
    created = await request.app[WEBHOOKS].create(
        principal_of(request), department, parse_target(body.url), body.description
    )
    return json_response(views.new_webhook_json(created), status=201)


@routes.add(
    "GET",
    "/v1/departments/{code}/webhooks",
    summary="The department's webhooks (never their secrets).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."),),
    responses={"200": views.WebhookList},
)
async def list_webhooks(request: web.Request) -> web.Response:
    found = await request.app[WEBHOOKS].webhooks(await _department(request))
    return json_response(views.webhooks_json(found))


@routes.add(
    "DELETE",
    "/v1/departments/{code}/webhooks/{id}",
    summary="Stop a webhook (its pending jobs are not attempted any more).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."), path_param("id", "Webhook id.")),
    responses={"204": {"description": "Deleted."}},
)
async def delete_webhook(request: web.Request) -> web.Response:
    department = await _department(request)
    webhook_id = _uuid(request, "id")
    await request.app[WEBHOOKS].delete(principal_of(request), department, webhook_id)
    return web.Response(status=204)


@routes.add(
    "GET",
    "/v1/departments/{code}/webhooks/dead",
    summary="Dead letters: deliveries a webhook gave up on after the policy's attempts.",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(
        path_param("code", "Department code."),
        query_param("limit", "Page size, 1 to 500.", schema={"type": "integer"}),
        query_param("cursor", "next_cursor of the previous page."),
        query_param("before", "Only dead letters that died before this RFC 3339 time."),
    ),
    responses={"200": views.DeadLetterPage},
)
async def dead_letters(request: web.Request) -> web.Response:
    department = await _department(request)
    limit, cursor = page_params(request)
    before, after_id = views.dead_letter_position(cursor, request.query.get("before"))
    page = await request.app[WEBHOOKS].dead_letters(
        department, before=before, after_id=after_id, limit=limit
    )
    return json_response(views.dead_letters_json(page))


@routes.add(
    "POST",
    "/v1/departments/{code}/webhooks/dead/{id}/replay",
    summary="Queue a dead letter again (same id, so the receiver can deduplicate).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."), path_param("id", "Dead letter id.")),
    responses={"200": views.Replayed},
)
async def replay_dead_letter(request: web.Request) -> web.Response:
    department = await _department(request)
    job_id = _uuid(request, "id")
    await request.app[WEBHOOKS].replay(principal_of(request), department, job_id)
    return json_response(views.replayed_json(job_id))


# --- the admins' allow-list and retry policy ------------------------------------------------


@routes.add(
    "GET",
    "/v1/webhooks/allowlist",
    summary="Hosts webhooks may target (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    responses={"200": views.AllowList},
)
async def list_allowlist(request: web.Request) -> web.Response:
    entries = await request.app[WEBHOOKS].allow_list()
    return json_response(views.allow_list_json(entries))


@routes.add(
    "POST",
    "/v1/webhooks/allowlist",
    summary="Allow a webhook target host and port (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    request_model=NewAllowEntryBody,
    responses={"201": views.AllowEntryJson},
)
async def add_allowlist_entry(request: web.Request) -> web.Response:
    new = (await _parse(request, NewAllowEntryBody)).entry()
    entry = await request.app[WEBHOOKS].allow(principal_of(request), new)
    return json_response(views.entry_json(entry), status=201)


@routes.add(
    "DELETE",
    "/v1/webhooks/allowlist/{id}",
    summary="Remove an allow-list entry; webhooks to it stop being attempted (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    parameters=(path_param("id", "Entry id."),),
    responses={"204": {"description": "Removed."}},
)
async def remove_allowlist_entry(request: web.Request) -> web.Response:
    entry_id = _uuid(request, "id")
    await request.app[WEBHOOKS].disallow(principal_of(request), entry_id)
    return web.Response(status=204)


@routes.add(
    "GET",
    "/v1/webhooks/policy",
    summary="Webhook retry policy: attempts before a dead letter, backoff (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    responses={"200": views.PolicyJson},
)
async def get_policy(request: web.Request) -> web.Response:
    return json_response(views.policy_json(await request.app[WEBHOOKS].policy()))


@routes.add(
    "PUT",
    "/v1/webhooks/policy",
    summary="Change the webhook retry policy for every gateway process (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    request_model=PolicyBody,
    responses={"200": views.PolicyJson},
)
async def put_policy(request: web.Request) -> web.Response:
    policy = (await _parse(request, PolicyBody)).policy()
    changed = await request.app[WEBHOOKS].set_policy(principal_of(request), policy)
    return json_response(views.policy_json(changed))
