"""Webhooks of a department (its dept_admin), dead letters, and the admins' allow-list."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.http.bodies import encode_cursor, json_response, page_params, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param, query_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import NotFound, now_of, principal_of, require_department
from gateway.runtime import RUNTIME
from gateway.webhooks.worker import (
    TargetNotAllowed,
    normalize_host,
    parse_target,
    pin_address,
    system_resolver,
    wrap_secret,
)
from storage import webhooks as rows
from storage.audit_outbox import AuditEvent, record_event
from storage.vocabulary import ADMIN_ONLY, DEPT_ADMIN_ONLY

routes = RouteTable()

DEPT_ADMIN = DEPT_ADMIN_ONLY
MAX_WEBHOOKS_PER_DEPARTMENT = 10
ADMIN = ADMIN_ONLY
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)

WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["id", "department", "url", "description", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "department": {"type": "string"},
        "url": {"type": "string"},
        "description": {"type": "string"},
        "created_at": {"type": "string"},
        "secret": {
            "type": "string",
            "description": "HMAC-SHA256 key (its UTF-8 bytes); returned once, at creation",
        },
    },
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound() from None


def _webhook_json(webhook: rows.Webhook) -> dict[str, Any]:
    return {
        "id": str(webhook.id),
        "department": webhook.department,
        "url": webhook.url,
        "description": webhook.description,
        "created_at": _iso(webhook.created_at),
    }


async def _department(request: web.Request) -> str:
    """The path's department, managed only by its own dept_admin (others: 404)."""
    code = request.match_info["code"]
    await require_department(request, code, cross_department_roles=())
    return code


def _text(body: dict[str, Any], name: str, max_length: int) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > max_length:
        raise ApiError("invalid_request", f"{name} must be a string of at most {max_length}")
    if (unsafe := unsafe_character(value)) is not None:
        raise ApiError("invalid_request", f"{name} must not contain {unsafe}")
    return value


@routes.add(
    "POST",
    "/v1/departments/{code}/webhooks",
    summary="Register a webhook (target on the allow-list; the secret is shown once).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."),),
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "required": ["url"],
                "properties": {
                    "url": {"type": "string", "maxLength": 2000},
                    "description": {"type": "string", "maxLength": 200},
                },
            }
        ),
    },
    responses={"201": {"content": json_content(WEBHOOK_SCHEMA)}},
)
async def create_webhook(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    department = await _department(request)
    body = await read_json_object(request)
    target = parse_target(body.get("url"))
    description = _text(body, "description", 200)
    async with runtime.pool.acquire() as connection:
        entry = await rows.allowed_entry(connection, target.host, target.port)
    if entry is None:
        raise TargetNotAllowed(f"{target.host}:{target.port} is not on the admins' allow-list")
    # Fail early on a name that answers with a refused address (each delivery checks again).
    await pin_address(target, system_resolver, allow_private=entry.allow_private)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook_id = uuid.uuid4()
    now = now_of(request)
    async with runtime.pool.acquire() as connection, connection.transaction():
        # Every delivery to the department enqueues a job per webhook inside the sender's
        # transaction: a bounded, duplicate-free set keeps other departments' sends fast.
        active, same_url = await rows.active_webhooks(connection, department, target.url)
        if same_url:
            raise ApiError("already_exists", "this department already has a webhook for that url")
        if active >= MAX_WEBHOOKS_PER_DEPARTMENT:
            raise ApiError(
                "conflict", f"a department may have at most {MAX_WEBHOOKS_PER_DEPARTMENT} webhooks"
            )
        webhook = await rows.insert_webhook(
            connection,
            webhook_id=webhook_id,
            department=department,
            url=target.url,
            host=target.host,
            port=target.port,
            secret_wrapped=wrap_secret(runtime.master_key, webhook_id, secret),
            description=description,
            created_by=principal.official_id,
            now=now,
        )
        await record_event(
            connection,
            AuditEvent(
                "webhook.created",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=department,
                details={"webhook": str(webhook_id), "url": target.url},
            ),
        )
    return json_response({**_webhook_json(webhook), "secret": secret}, status=201)


@routes.add(
    "GET",
    "/v1/departments/{code}/webhooks",
    summary="The department's webhooks (never their secrets).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."),),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def list_webhooks(request: web.Request) -> web.Response:
    department = await _department(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        found = await rows.list_webhooks(connection, department)
    return json_response({"items": [_webhook_json(w) for w in found], "next_cursor": None})


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
    principal = principal_of(request)
    department = await _department(request)
    webhook_id = _uuid(request, "id")
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        if not await rows.delete_webhook(connection, webhook_id, department, now):
            raise NotFound()
        await record_event(
            connection,
            AuditEvent(
                "webhook.deleted",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=department,
                details={"webhook": str(webhook_id)},
            ),
        )
    return web.Response(status=204)


def _instant(text: str) -> datetime | None:
    """An RFC 3339 time with a zone, in UTC; None when it is not one (or out of range)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


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
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def dead_letters(request: web.Request) -> web.Response:
    department = await _department(request)
    limit, position = page_params(request)
    after_id: uuid.UUID | None = None
    if position is not None:
        try:
            before = _instant(str(position["dead_at"]))
            after_id = uuid.UUID(str(position["id"]))
        except (KeyError, ValueError):
            before = None
        if before is None or after_id is None:
            raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    else:
        before_text = request.query.get("before")
        before = _instant(before_text) if before_text else None
        if before_text and before is None:
            raise ApiError("invalid_request", "before must be an RFC 3339 time with a zone")
    async with request.app[RUNTIME].pool.acquire() as connection:
        found = await rows.dead_letters(
            connection, department, limit=limit + 1, before=before, after_id=after_id
        )
    items = [
        {
            "id": str(row["id"]),
            "webhook": str(row["webhook"]),
            "url": row["url"],
            "delivery": str(row["delivery"]),
            "attempts": row["attempts"],
            "last_status": row["last_status"],
            "last_error": row["last_error"],
            "created_at": _iso(row["created_at"]),
            "dead_at": _iso(row["dead_at"]),
        }
        for row in found[:limit]
    ]
    last = found[limit - 1] if len(found) > limit else None
    next_cursor = (
        encode_cursor({"dead_at": last["dead_at"].isoformat(), "id": str(last["id"])})
        if last is not None
        else None
    )
    return json_response({"items": items, "next_cursor": next_cursor})


@routes.add(
    "POST",
    "/v1/departments/{code}/webhooks/dead/{id}/replay",
    summary="Queue a dead letter again (same id, so the receiver can deduplicate).",
    access="authenticated",
    roles=DEPT_ADMIN,
    tag="webhooks",
    parameters=(path_param("code", "Department code."), path_param("id", "Dead letter id.")),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def replay_dead_letter(request: web.Request) -> web.Response:
    principal = principal_of(request)
    department = await _department(request)
    job_id = _uuid(request, "id")
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        replayed = await rows.replay(connection, job_id, department, now)
        if replayed is None:
            raise NotFound()
        await record_event(
            connection,
            AuditEvent(
                "webhook.replayed",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=department,
                details={
                    "job": str(job_id),
                    "webhook": str(replayed["webhook"]),
                    "delivery": str(replayed["delivery"]),
                },
            ),
        )
    return json_response({"id": str(job_id), "state": "pending"})


# --- the admins' allow-list and retry policy ------------------------------------------------


def _entry_json(entry: rows.AllowEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "host": entry.host,
        "port": entry.port,
        "allow_private": entry.allow_private,
        "note": entry.note,
        "added_by": entry.added_by,
        "added_at": _iso(entry.added_at),
    }


@routes.add(
    "GET",
    "/v1/webhooks/allowlist",
    summary="Hosts webhooks may target (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def list_allowlist(request: web.Request) -> web.Response:
    async with request.app[RUNTIME].pool.acquire() as connection:
        entries = await rows.list_allowed(connection)
    return json_response({"items": [_entry_json(e) for e in entries], "next_cursor": None})


@routes.add(
    "POST",
    "/v1/webhooks/allowlist",
    summary="Allow a webhook target host and port (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "required": ["host"],
                "properties": {
                    "host": {"type": "string"},
                    "port": {"type": "integer", "default": 443},
                    "allow_private": {
                        "type": "boolean",
                        "default": False,
                        "description": "let the host resolve to private or loopback addresses",
                    },
                    "note": {"type": "string", "maxLength": 200},
                },
            }
        ),
    },
    responses={"201": {"content": json_content({"type": "object"})}},
)
async def add_allowlist_entry(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json_object(request)
    host = normalize_host(body.get("host"))
    port = body.get("port", 443)
    allow_private = body.get("allow_private", False)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ApiError("invalid_request", "port must be an integer from 1 to 65535")
    if not isinstance(allow_private, bool):
        raise ApiError("invalid_request", "allow_private must be true or false")
    note = _text(body, "note", 200)
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        entry = await rows.add_allowed(
            connection,
            host=host,
            port=port,
            allow_private=allow_private,
            note=note,
            added_by=principal.official_id,
            now=now,
        )
        await record_event(
            connection,
            AuditEvent(
                "webhook.allowlist_added",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=principal.department,
                details={
                    "entry": str(entry.id),
                    "host": host,
                    "port": port,
                    "allow_private": allow_private,
                },
            ),
        )
    return json_response(_entry_json(entry), status=201)


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
    principal = principal_of(request)
    entry_id = _uuid(request, "id")
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        entry = await rows.remove_allowed(connection, entry_id)
        if entry is None:
            raise NotFound()
        await record_event(
            connection,
            AuditEvent(
                "webhook.allowlist_removed",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=principal.department,
                details={"entry": str(entry.id), "host": entry.host, "port": entry.port},
            ),
        )
    return web.Response(status=204)


POLICY_SCHEMA = {
    "type": "object",
    "required": ["max_attempts", "base_delay_seconds", "max_delay_seconds"],
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 30},
        "base_delay_seconds": {"type": "number", "minimum": 0.001, "maximum": 86400},
        "max_delay_seconds": {"type": "number", "minimum": 0.001, "maximum": 86400},
    },
}


def _policy_json(policy: rows.Policy) -> dict[str, Any]:
    return {
        "max_attempts": policy.max_attempts,
        "base_delay_seconds": policy.base_delay,
        "max_delay_seconds": policy.max_delay,
    }


@routes.add(
    "GET",
    "/v1/webhooks/policy",
    summary="Webhook retry policy: attempts before a dead letter, backoff (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    responses={"200": {"content": json_content(POLICY_SCHEMA)}},
)
async def get_policy(request: web.Request) -> web.Response:
    async with request.app[RUNTIME].pool.acquire() as connection:
        policy = await rows.get_policy(connection)
    return json_response(_policy_json(policy))


@routes.add(
    "PUT",
    "/v1/webhooks/policy",
    summary="Change the webhook retry policy for every gateway process (admin).",
    access="authenticated",
    roles=ADMIN,
    tag="webhooks",
    request_body={"required": True, "content": json_content(POLICY_SCHEMA)},
    responses={"200": {"content": json_content(POLICY_SCHEMA)}},
)
async def put_policy(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json_object(request)
    attempts = body.get("max_attempts")
    base = body.get("base_delay_seconds")
    cap = body.get("max_delay_seconds")
    if (
        not isinstance(attempts, int)
        or isinstance(attempts, bool)
        or not 1 <= attempts <= 30
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0.001 <= v <= 86400
            for v in (base, cap)
        )
    ):
        raise ApiError(
            "invalid_request",
            "max_attempts must be 1 to 30; delays from 0.001 to 86400 seconds",
        )
    assert isinstance(base, int | float)
    assert isinstance(cap, int | float)
    if cap < base:
        raise ApiError("invalid_request", "max_delay_seconds must not be below base_delay_seconds")
    policy = rows.Policy(attempts, float(base), float(cap))
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        await rows.set_policy(connection, policy, updated_by=principal.official_id, now=now)
        await record_event(
            connection,
            AuditEvent(
                "webhook.policy_changed",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=principal.department,
                details=_policy_json(policy),
            ),
        )
    return json_response(_policy_json(policy))
