"""Audit log endpoints: entries (with visibility), checkpoints, the log key, proofs, cosigning.

Checkpoints, the log key and proofs are public: they reveal tree sizes and hashes only (each
leaf embeds a random salted ``details_hash``, so leaf hashes cannot be guessed), and any
witness or relying party must be able to fetch them. Entries are for authenticated
officials: inspectors see every entry, everyone else the entries of their own department.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.audit.sequencer import log_verifier
from gateway.http.bodies import (
    encode_cursor,
    json_response,
    page_params,
    query_text,
    read_json_object,
)
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.identity.auth import PRINCIPAL, hidden
from gateway.runtime import RUNTIME
from storage import audit_log

routes = RouteTable()

INSPECTOR = "inspector"

_OBJECT = {"type": "object"}
_ENTRY = {
    "type": "object",
    "required": ["index", "type", "at", "actor", "department", "document", "details", "leaf"],
    "properties": {
        "index": {"type": "integer"},
        "type": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "object"},
        "department": {"type": ["string", "null"]},
        "document": {"type": ["string", "null"]},
        "details": {"type": ["object", "null"]},
        "salt": {"type": ["string", "null"], "description": "base64; null once erased"},
        "erased": {"type": "boolean"},
        "leaf": {"type": "string", "description": "base64 of the exact RFC 8785 leaf bytes"},
    },
}


@dataclass(frozen=True)
class AuditCaller:
    official: str
    department: str
    roles: frozenset[str]
    jkt: str | None = None

    @property
    def is_inspector(self) -> bool:
        return INSPECTOR in self.roles


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


def caller_of(request: web.Request) -> AuditCaller:
    """The authenticated official, as the auth middleware attached it (the one coupling)."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise ApiError("unauthenticated", "this endpoint needs an access token", status=401)
    return AuditCaller(
        official=principal.official_id,
        department=principal.department,
        roles=principal.roles,
        jkt=principal.kid,
    )


def _int_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        raise ApiError("invalid_request", f"{name} is required")
    if not raw.isdigit() or len(raw) > 19:
        raise ApiError("invalid_request", f"{name} must be a non-negative integer")
    return int(raw)


def _time_param(request: web.Request, name: str) -> datetime | None:
    raw = query_text(request, name, max_length=40)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError("invalid_request", f"{name} must be an RFC 3339 time") from None
    if value.tzinfo is None:
        raise ApiError("invalid_request", f"{name} must carry a time zone")
    return value.astimezone(UTC)


def _b64_list(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


@routes.add(
    "GET",
    "/v1/audit/entries",
    summary="Audit entries in log order; inspectors see all, others their department's.",
    access="authenticated",
    tag="audit",
    parameters=(
        query_param("document", "Only entries about this document."),
        query_param("department", "Only entries of this department."),
        query_param("actor", "Only entries by this official."),
        query_param("type", "Only entries of this type."),
        query_param("from", "Entries at or after this RFC 3339 time."),
        query_param("to", "Entries before this RFC 3339 time."),
        *PAGE_PARAMS,
    ),
    responses={"200": {"content": json_content(_page(_ENTRY))}},
)
async def list_audit_entries(request: web.Request) -> web.Response:
    caller = caller_of(request)
    limit, cursor = page_params(request)
    after: int | None = None
    if cursor is not None:
        after = cursor.get("after")
        if not isinstance(after, int) or isinstance(after, bool):
            raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    query = audit_log.EntryFilter(
        document=query_text(request, "document", max_length=100),
        department=query_text(request, "department", max_length=63),
        actor=query_text(request, "actor", max_length=100),
        type=query_text(request, "type", max_length=64),
        since=_time_param(request, "from"),
        until=_time_param(request, "to"),
        visible_department=None if caller.is_inspector else caller.department,
    )
    async with request.app[RUNTIME].pool.acquire() as connection:
        page = await audit_log.list_entries(connection, query, after=after, limit=limit + 1)
    items = page[:limit]
    more = len(page) > limit
    return json_response(
        {
            "items": [entry.as_json() for entry in items],
            "next_cursor": encode_cursor({"after": items[-1].index}) if more else None,
        }
    )


@routes.add(
    "GET",
    "/v1/audit/entries/{index}",
    summary="One audit entry (same visibility as the list).",
    access="authenticated",
    tag="audit",
    parameters=(path_param("index", "Log index, from 0."),),
    responses={"200": {"content": json_content(_ENTRY)}},
)
async def get_audit_entry(request: web.Request) -> web.Response:
    caller = caller_of(request)
    raw = request.match_info["index"]
    if not raw.isdigit() or len(raw) > 19:
        raise ApiError("not_found", "no such audit entry")
    async with request.app[RUNTIME].pool.acquire() as connection:
        entry = await audit_log.get_entry(connection, int(raw))
    if entry is None:
        raise ApiError("not_found", "no such audit entry")
    if not (caller.is_inspector or entry.department == caller.department):
        raise await hidden(request, "other_department", entry=raw)
    return json_response(entry.as_json())


@routes.add(
    "GET",
    "/v1/audit/checkpoint",
    summary="The latest signed checkpoint, its RFC 3161 token and witness cosignatures.",
    access="public",
    tag="audit",
    responses={"200": {"content": json_content(_OBJECT)}},
)
async def get_audit_checkpoint(request: web.Request) -> web.Response:
    async with request.app[RUNTIME].pool.acquire() as connection:
        checkpoint = await audit_log.latest_checkpoint(connection)
    if checkpoint is None:
        raise ApiError("not_found", "no checkpoint has been signed yet")
    return json_response(checkpoint.as_json())


@routes.add(
    "GET",
    "/v1/audit/checkpoints",
    summary="Every kept checkpoint, smallest tree first (for full audits).",
    access="public",
    tag="audit",
    parameters=PAGE_PARAMS,
    responses={"200": {"content": json_content(_page(_OBJECT))}},
)
async def list_audit_checkpoints(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    start = 0
    if cursor is not None:
        start = cursor.get("offset", -1)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    async with request.app[RUNTIME].pool.acquire() as connection:
        everything = await audit_log.list_checkpoints(connection)
    items = everything[start : start + limit]
    more = start + limit < len(everything)
    return json_response(
        {
            "items": [c.as_json() for c in items],
            "next_cursor": encode_cursor({"offset": start + limit}) if more else None,
        }
    )


@routes.add(
    "GET",
    "/v1/audit/log-key",
    summary="The log's note verifier key (C2SP form, readable by Go's sumdb/note).",
    access="public",
    tag="audit",
    responses={"200": {"content": json_content(_OBJECT)}},
)
async def get_audit_log_key(request: web.Request) -> web.Response:
    verifier = log_verifier(request.app[RUNTIME])
    return json_response({"verifier_key": verifier.verifier_key, "origin": verifier.name})


@routes.add(
    "GET",
    "/v1/audit/proof/inclusion",
    summary="RFC 9162 inclusion proof of a leaf in a tree of the given size.",
    access="public",
    tag="audit",
    parameters=(
        query_param("index", "Leaf index.", schema={"type": "integer"}),
        query_param("tree_size", "Tree size (of a checkpoint).", schema={"type": "integer"}),
    ),
    responses={"200": {"content": json_content(_OBJECT)}},
)
async def get_inclusion_proof(request: web.Request) -> web.Response:
    index = _int_param(request, "index")
    tree_size = _int_param(request, "tree_size")
    async with request.app[RUNTIME].pool.acquire() as connection:
        hashes = await audit_log.inclusion_proof(connection, index, tree_size)
    return json_response({"leaf_index": index, "tree_size": tree_size, "hashes": _b64_list(hashes)})


@routes.add(
    "GET",
    "/v1/audit/proof/consistency",
    summary="RFC 9162 consistency proof between two tree sizes.",
    access="public",
    tag="audit",
    parameters=(
        query_param("from", "Older tree size (> 0).", schema={"type": "integer"}),
        query_param("to", "Newer tree size.", schema={"type": "integer"}),
    ),
    responses={"200": {"content": json_content(_OBJECT)}},
)
async def get_consistency_proof(request: web.Request) -> web.Response:
    old = _int_param(request, "from")
    new = _int_param(request, "to")
    async with request.app[RUNTIME].pool.acquire() as connection:
        hashes = await audit_log.consistency_proof(connection, old, new)
    return json_response({"from": old, "to": new, "hashes": _b64_list(hashes)})


@routes.add(
    "POST",
    "/v1/audit/cosign",
    summary="An inspector's own Ed25519 key cosigns a checkpoint it verified (witness).",
    access="authenticated",
    roles={INSPECTOR},
    tag="audit",
    request_body=json_content(
        {
            "type": "object",
            "required": ["note", "verifier_key"],
            "properties": {
                "note": {"type": "string", "description": "the checkpoint note, cosigned"},
                "verifier_key": {"type": "string", "description": "the witness's key"},
            },
        }
    ),
    responses={"200": {"content": json_content(_OBJECT)}},
)
async def cosign_checkpoint(request: web.Request) -> web.Response:
    caller = caller_of(request)
    if not caller.is_inspector:
        raise ApiError("forbidden", "only inspectors witness the audit log")
    body: dict[str, Any] = await read_json_object(request)
    note, key = body.get("note"), body.get("verifier_key")
    if not isinstance(note, str) or not isinstance(key, str) or len(note) > 16384:
        raise ApiError("invalid_request", "note and verifier_key must be strings")
    async with request.app[RUNTIME].pool.acquire() as connection:
        cosignature = await audit_log.add_cosignature(
            connection, note, key, official=caller.official, now=datetime.now(UTC)
        )
    return json_response(cosignature.as_json())
