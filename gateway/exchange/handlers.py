"""Document endpoints: send (meta, then file), read, download with Range."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import BodyPartReader, web

from gateway.exchange import service as exchange
from gateway.exchange.errors import SealRevokedMeanwhile
from gateway.exchange.meta import DocumentMeta, parse_meta
from gateway.http.bodies import json_response, parse_json_bytes
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param
from gateway.identity.auth import NotFound, hidden, now_of, principal_of
from gateway.runtime import RUNTIME
from gateway.sealing.sealer import SEALER
from gateway.spool import file_chunks, read_head, spool_files, tee_to_file
from gateway.workflow import rules as workflow
from gateway.workflow import service as workflow_service
from seals.pdfcheck import check_header
from storage import documents, idempotency
from storage import workflow as workflow_rows
from storage.audit_outbox import AuditEvent, record_event
from storage.objects import PutResult

routes = RouteTable()

READ_CHUNK = 256 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"

SEND_RESULT = {
    "type": "object",
    "required": ["id", "status", "draft_sha256", "sha256", "deliveries"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string"},
        "draft_sha256": {"type": "string"},
        "sha256": {"type": ["string", "null"]},
        "deliveries": {"type": "integer"},
    },
}
SEND_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["meta", "file"],
                "properties": {
                    "meta": {"type": "string", "description": "JSON document metadata"},
                    "file": {"type": "string", "format": "binary"},
                },
            },
            "encoding": {"meta": {"contentType": "application/json"}},
        }
    },
}


async def _probed_document_id(request: web.Request) -> uuid.UUID:
    """The path's document id; one that is no id at all counts as a probe (audited 404)."""
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise await hidden(request, "unknown_id") from None


async def _read_meta_part(part: BodyPartReader, limit: int) -> bytes:
    raw = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        raw += chunk
        if len(raw) > limit:
            raise ApiError("payload_too_large", "the meta part is too large")
    return bytes(raw)


async def _file_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """The file part as it arrives."""
    while chunk := await part.read_chunk(READ_CHUNK):
        yield bytes(chunk)


def idempotency_scope(request: web.Request, official: str) -> idempotency.Scope | None:
    """The ``Idempotency-Key`` scope of a state-changing POST (None without the header)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise ApiError("invalid_request", "Idempotency-Key must be 1 to 200 printable characters")
    return idempotency.Scope(official, request.method, request.path, key)


@routes.add(
    "POST",
    "/v1/documents",
    summary="Seal and send a document, or start its approval workflow (multipart: meta, file).",
    access="authenticated",
    tag="documents",
    request_body=SEND_BODY,
    responses={"201": {"content": json_content(SEND_RESULT)}},
)
async def send_document(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    now = now_of(request)
    if not request.content_type.startswith("multipart/"):
        raise ApiError("unsupported_media_type", "send multipart/form-data: meta, then file")
    reader = await request.multipart()
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "meta":
        raise ApiError("invalid_request", "the first part must be 'meta' (before 'file')")
    meta = parse_meta(
        parse_json_bytes(await _read_meta_part(part, runtime.settings.max_json_bytes)), now=now
    )
    exchange.authorize_send(principal, with_workflow=meta.workflow is not None)
    scope = idempotency_scope(request, principal.official_id)
    async with runtime.pool.acquire() as connection:
        fanout = await exchange.expand_fanout(connection, meta, principal.department)
        if meta.workflow is not None:
            await workflow_service.check_workflow(
                connection, meta.workflow, principal.department, principal.official_id
            )
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError("invalid_request", "the second part must be 'file'")
    with spool_files(runtime.settings, 2) as (draft_file, sealed_file):
        return await _store_and_send(
            request, meta, fanout, scope, part, draft_file=draft_file, sealed_file=sealed_file
        )


async def _store_and_send(
    request: web.Request,
    meta: DocumentMeta,
    fanout: exchange.Fanout,
    scope: idempotency.Scope | None,
    part: BodyPartReader,
    *,
    draft_file: Path,
    sealed_file: Path,
) -> web.Response:
    """The file part goes to the store and to a spool file at once; the worker seals from
    that file into *sealed_file*, which is streamed to the store. Memory stays flat."""
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    now = now_of(request)
    draft = await runtime.objects.put(
        tee_to_file(_file_chunks(part), draft_file),
        max_bytes=runtime.settings.max_document_bytes,
    )
    created: list[str] = [draft.key]
    try:
        body_hash = exchange.request_hash(meta, draft.sha256_hex)
        if scope is not None:
            async with runtime.pool.acquire() as connection:
                earlier = await idempotency.find(connection, scope, body_hash)
            if earlier is not None:
                await exchange.delete_quietly(runtime.objects, created)
                return json_response(earlier.body, status=earlier.status)
        if meta.workflow is not None:
            head = read_head(draft_file)
            sent = await _submit_for_approval(request, meta, draft, head, scope, body_hash)
            return json_response(sent.as_json(), status=201)
        outcome = await request.app[SEALER].seal(
            principal.department, draft_file, sealed_file, reason=meta.doc_number
        )
        sealed: PutResult = await runtime.objects.put(
            file_chunks(outcome.pdf), max_bytes=outcome.pdf.stat().st_size + 1
        )
        created.append(sealed.key)
        async with runtime.pool.acquire() as connection, connection.transaction():
            sent = await exchange.record_dispatch(
                connection,
                principal=principal,
                meta=meta,
                fanout=fanout,
                draft=draft,
                sealed=sealed,
                seal_id=outcome.seal_id,
                now=now,
                sign_for_within=runtime.settings.supervision.sign_for_within(),
            )
            if scope is not None:
                await idempotency.remember(
                    connection,
                    scope,
                    body_hash,
                    idempotency.StoredResponse(201, sent.as_json()),
                    now,
                )
    except asyncpg.UniqueViolationError:
        # A concurrent request with the same Idempotency-Key committed first.
        await exchange.delete_quietly(runtime.objects, created)
        if scope is None:
            raise
        async with runtime.pool.acquire() as connection:
            earlier = await idempotency.find(connection, scope, body_hash)
        if earlier is None:
            raise
        return json_response(earlier.body, status=earlier.status)
    except SealRevokedMeanwhile as revoked:
        await exchange.delete_quietly(runtime.objects, created)
        await request.app[SEALER].record_refusal(principal.department, revoked.seal_id)
        raise
    except BaseException:
        await exchange.delete_quietly(runtime.objects, created)
        raise
    return json_response(sent.as_json(), status=201)


async def _submit_for_approval(
    request: web.Request,
    meta: DocumentMeta,
    draft: PutResult,
    head: bytes,
    scope: idempotency.Scope | None,
    body_hash: str,
) -> exchange.SentDocument:
    """拟稿 with a workflow: stored as draft version 1, sealed only after sign-off."""
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    now = now_of(request)
    check_header(head)
    async with runtime.pool.acquire() as connection, connection.transaction():
        sent = await workflow_service.record_submission(
            connection, principal=principal, meta=meta, draft=draft, now=now
        )
        if scope is not None:
            await idempotency.remember(
                connection, scope, body_hash, idempotency.StoredResponse(201, sent.as_json()), now
            )
    return sent


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


async def _visible_document(request: web.Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The document and the caller's delivery; 404 for anyone not sender or recipient."""
    principal = principal_of(request)
    document_id = await _probed_document_id(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        try:
            document = await documents.get_document(connection, document_id)
        except documents.DocumentNotFound:
            raise await hidden(request, "unknown_id") from None
        delivery = await documents.recipient_delivery(connection, document_id, principal.department)
    if document["sender"] != principal.department and (
        delivery is None or delivery["state"] == "withdrawn"
    ):
        raise await hidden(request, "other_department", document=str(document_id))
    return document, delivery


@routes.add(
    "GET",
    "/v1/documents/{id}",
    summary="A document: metadata, status, deliveries.",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def get_document(request: web.Request) -> web.Response:
    document, _ = await _visible_document(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        deliveries = await documents.document_deliveries(connection, document["id"])
        steps = await workflow_rows.steps_of(connection, document["id"])
        versions = await workflow_rows.versions_of(connection, document["id"])
        trail = await workflow_rows.trail_of(connection, document["id"])
    if document["sender"] != principal_of(request).department and versions:
        # Recipients see the sign-off of what they received; earlier drafts, their
        # rejections and opinions stay inside the sending department.
        final = versions[-1].version
        versions = [v for v in versions if v.version == final]
        trail = [row for row in trail if row["version"] == final]
    return json_response(
        {
            "id": str(document["id"]),
            "title": document["title"],
            "doc_number": document["doc_number"],
            "urgency": document["urgency"],
            "classification": document["classification"],
            "sender": document["sender"],
            "status": document["status"],
            "deadline": _iso(document["deadline"]),
            "draft_sha256": document["draft_sha256"],
            "sha256": document["sealed_sha256"],
            "size": document["sealed_size"],
            "seal_id": str(document["seal_id"]) if document["seal_id"] else None,
            "created_at": _iso(document["created_at"]),
            "dispatched_at": _iso(document["dispatched_at"]),
            "withdrawn_at": _iso(document["withdrawn_at"]),
            "deliveries": [
                {
                    "id": str(d["id"]),
                    "recipient": d["recipient"],
                    "copy": d["copy"],
                    "state": d["state"],
                    "created_at": _iso(d["created_at"]),
                    "due_at": _iso(d["due_at"]),
                    "fetched_at": _iso(d["fetched_at"]),
                    "decided_at": _iso(d["decided_at"]),
                    "decided_by": d["decided_by"],
                    "reason": d["reason"],
                }
                for d in deliveries
            ],
            "sealed_by": document["sealed_by"],
            "created_by": document["created_by"],
            "workflow": _workflow_view(document, steps, versions, trail),
            "approvals": [
                {
                    "id": str(row["id"]),
                    "version": row["version"],
                    "step": row["step"],
                    "step_name": row["step_name"],
                    "official": row["official"],
                    "official_name": row["official_name"],
                    "decision": row["decision"],
                    "opinion": row["opinion"],
                    "at": _iso(row["decided_at"]),
                    "signed_at": _iso(row["signed_at"]),
                    "kid": row["kid"],
                    "signature": row["signature"],
                }
                for row in trail
            ],
        }
    )


def _workflow_view(
    document: dict[str, Any],
    steps: list[workflow_rows.StepRow],
    versions: list[workflow_rows.VersionRow],
    trail: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Each step of the newest draft version: who may act, who did, whether it is done."""
    if not steps:
        return None
    latest = versions[-1].version if versions else 1
    spec = workflow.WorkflowSpec(
        tuple(workflow.StepSpec(row.name, row.mode, row.assignees) for row in steps)
    )
    decisions = [
        workflow.Decision(row["step"], row["official"], row["decision"])
        for row in trail
        if row["version"] == latest
    ]
    state = workflow.progress(spec, decisions)
    current = state.current if document["status"] == "in_approval" else None
    return {
        "version": latest,
        "current_step": current,
        "steps": [
            {
                "step": row.step,
                "name": row.name,
                "mode": row.mode,
                "assignees": list(row.assignees),
                "state": (
                    "done"
                    if row.step in state.completed
                    else "open"
                    if row.step == current
                    else "rejected"
                    if any(d.step == row.step and d.decision == "reject" for d in decisions)
                    else "waiting"
                ),
            }
            for row in steps
        ],
        "versions": [
            {
                "version": v.version,
                "draft_sha256": v.draft_sha256,
                "size": v.draft_size,
                "submitted_by": v.submitted_by,
                "submitted_at": _iso(v.submitted_at),
            }
            for v in versions
        ],
    }


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range as [start, end); None for the whole body; 416 if unsatisfiable."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None  # unsupported forms: serve the whole document (RFC 9110 allows it)
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise ValueError
            start, end = max(0, size - suffix), size
        else:
            start = int(first)
            end = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        raise ApiError("range_not_satisfiable", "invalid Range header", status=416) from None
    if start >= size or start >= end or start < 0:
        raise ApiError("range_not_satisfiable", f"the document has {size} bytes", status=416)
    return start, end


@routes.add(
    "GET",
    "/v1/documents/{id}/content",
    summary="The sealed PDF (Range supported).",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    responses={
        "200": {"content": {"application/pdf": {"schema": {"type": "string"}}}},
        "206": {"content": {"application/pdf": {"schema": {"type": "string"}}}},
    },
)
async def document_content(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    document, delivery = await _visible_document(request)
    if document["sealed_object"] is None:
        raise NotFound("the document has not been sealed yet")
    size = int(document["sealed_size"])
    byte_range = parse_range(request.headers.get("Range"), size)
    now = now_of(request)
    async with runtime.pool.acquire() as connection, connection.transaction():
        if delivery is not None and await documents.mark_fetched(connection, delivery["id"], now):
            await record_event(
                connection,
                AuditEvent(
                    "delivery.fetched",
                    now,
                    actor_official=principal.official_id,
                    actor_jkt=principal.kid,
                    department=principal.department,
                    document=str(document["id"]),
                    details={"delivery": str(delivery["id"])},
                ),
            )
        await record_event(
            connection,
            AuditEvent(
                "document.downloaded",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=principal.department,
                document=str(document["id"]),
                details={"range": f"{byte_range[0]}-{byte_range[1] - 1}" if byte_range else None},
            ),
        )
    start, end = byte_range or (0, size)
    response = web.StreamResponse(status=206 if byte_range else 200)
    response.content_type = "application/pdf"
    response.content_length = end - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{document["sealed_sha256"]}"'
    response.headers["Content-Disposition"] = f'attachment; filename="{document["id"]}.pdf"'
    if byte_range:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    await response.prepare(request)
    async for chunk in runtime.objects.open(document["sealed_object"], start=start, end=end):
        await response.write(chunk)
    await response.write_eof()
    return response
