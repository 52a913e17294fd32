"""Audit log endpoints: entries (with visibility), checkpoints, the log key, proofs, cosigning.

Checkpoints, the log key and proofs are public: they reveal tree sizes and hashes only (each
leaf embeds a random salted ``details_hash``, so leaf hashes cannot be guessed), and any
witness or relying party must be able to fetch them. Entries are for authenticated
officials: inspectors see every entry, everyone else the entries of their own department.
The rules live in :class:`~gateway.audit.service.AuditLogService`; these handlers parse and
render.
"""

from __future__ import annotations

from aiohttp import web

from gateway.audit import views
from gateway.audit.service import INSPECTOR, AuditLogService
from gateway.audit.views import CosignBody
from gateway.http.bodies import json_response, page_params, parse_body, query_text, query_time
from gateway.http.errors import ApiError
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.identity.auth import caller_of
from storage.audit_log import EntryFilter

routes = RouteTable()

AUDIT_LOG: web.AppKey[AuditLogService] = web.AppKey("audit_log", AuditLogService)


def _int_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        raise ApiError("invalid_request", f"{name} is required")
    if not raw.isdigit() or len(raw) > 19:
        raise ApiError("invalid_request", f"{name} must be a non-negative integer")
    return int(raw)


def _cursor_int(cursor: dict[str, object], key: str, *, minimum: int | None = None) -> int:
    value = cursor.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    if minimum is not None and value < minimum:
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return value


def _entry_filter(request: web.Request) -> EntryFilter:
    return EntryFilter(
        document=query_text(request, "document", max_length=100),
        department=query_text(request, "department", max_length=63),
        actor=query_text(request, "actor", max_length=100),
        type=query_text(request, "type", max_length=64),
        since=query_time(request, "from"),
        until=query_time(request, "to"),
    )


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
    responses={"200": views.AuditEntryPage},
)
async def list_audit_entries(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    after = None if cursor is None else _cursor_int(cursor, "after")
    page = await request.app[AUDIT_LOG].entries(
        caller_of(request), _entry_filter(request), after=after, limit=limit
    )
    return json_response(views.entries_json(page))


@routes.add(
    "GET",
    "/v1/audit/entries/{index}",
    summary="One audit entry (same visibility as the list).",
    access="authenticated",
    tag="audit",
    parameters=(path_param("index", "Log index, from 0."),),
    responses={"200": views.AuditEntry},
)
async def get_audit_entry(request: web.Request) -> web.Response:
    raw = request.match_info["index"]
    if not raw.isdigit() or len(raw) > 19:
        raise ApiError("not_found", "no such audit entry")
    entry = await request.app[AUDIT_LOG].entry(caller_of(request), int(raw))
    return json_response(views.entry_json(entry))


@routes.add(
    "GET",
    "/v1/audit/checkpoint",
    summary="The latest signed checkpoint, its RFC 3161 token and witness cosignatures.",
    access="public",
    tag="audit",
    responses={"200": views.Checkpoint},
)
async def get_audit_checkpoint(request: web.Request) -> web.Response:
    checkpoint = await request.app[AUDIT_LOG].latest_checkpoint()
    return json_response(views.checkpoint_json(checkpoint))


@routes.add(
    "GET",
    "/v1/audit/checkpoints",
    summary="Every kept checkpoint, smallest tree first (for full audits).",
    access="public",
    tag="audit",
    parameters=PAGE_PARAMS,
    responses={"200": views.CheckpointPage},
)
async def list_audit_checkpoints(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    start = 0 if cursor is None else _cursor_int(cursor, "offset", minimum=0)
    page = await request.app[AUDIT_LOG].checkpoints(start=start, limit=limit)
    return json_response(views.checkpoints_json(page, start))


@routes.add(
    "GET",
    "/v1/audit/log-key",
    summary="The log's note verifier key (C2SP form, readable by Go's sumdb/note).",
    access="public",
    tag="audit",
    responses={"200": views.LogKey},
)
async def get_audit_log_key(request: web.Request) -> web.Response:
    return json_response(views.log_key_json(request.app[AUDIT_LOG].log_key))


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
    responses={"200": views.InclusionProof},
)
async def get_inclusion_proof(request: web.Request) -> web.Response:
    index = _int_param(request, "index")
    tree_size = _int_param(request, "tree_size")
    hashes = await request.app[AUDIT_LOG].inclusion_proof(index, tree_size)
    return json_response(views.inclusion_json(index, tree_size, hashes))


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
    responses={"200": views.ConsistencyProof},
)
async def get_consistency_proof(request: web.Request) -> web.Response:
    old = _int_param(request, "from")
    new = _int_param(request, "to")
    hashes = await request.app[AUDIT_LOG].consistency_proof(old, new)
    return json_response(views.consistency_json(old, new, hashes))


@routes.add(
    "POST",
    "/v1/audit/cosign",
    summary="An inspector's own Ed25519 key cosigns a checkpoint it verified (witness).",
    access="authenticated",
    roles={INSPECTOR},
    tag="audit",
    request_model=CosignBody,
    responses={"200": views.CosignatureJson},
)
async def cosign_checkpoint(request: web.Request) -> web.Response:
    body = await parse_body(request, CosignBody)
    cosigned = await request.app[AUDIT_LOG].cosign(caller_of(request), body.note, body.verifier_key)
    return json_response(views.cosignature_json(cosigned))
