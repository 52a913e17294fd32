"""The approval chain over HTTP: signed decisions, the draft, new versions, the seal."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from gateway.exchange import service as exchange
from gateway.exchange.errors import DocumentLocked, DraftingNotAllowed, SealRevokedMeanwhile
from gateway.exchange.handlers import idempotency_scope, parse_range
from gateway.http.bodies import json_response, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param, query_param
from gateway.identity.auth import NotFound, deny_access, hidden, now_of, principal_of
from gateway.runtime import RUNTIME
from gateway.sealing.sealer import SEALER
from gateway.spool import file_chunks, save_chunks, spool_files
from gateway.workflow import rules as workflow
from gateway.workflow import service as workflow_service
from keys.jws import parse_public_jwk
from seals.pdfcheck import check_header
from storage import documents, idempotency, identity
from storage import workflow as workflow_rows
from storage.audit_outbox import AuditEvent, record_event
from storage.objects import PutResult

routes = RouteTable()

READ_CHUNK = 256 * 1024
SEAL_ROLES = frozenset({"seal_keeper"})
AWAITING_SEAL = "awaiting_seal"
SEAL_REQUEST_HASH = hashlib.sha256(b"seal").hexdigest()  # the request has no body to compare

SIGNATURE_BODY = {
    "required": True,
    "content": json_content(
        {
            "type": "object",
            "required": ["signature"],
            "properties": {
                "signature": {
                    "type": "string",
                    "maxLength": 65536,
                    "description": "sealhub-approval+jwt: document, draft_sha256, step "
                    "(index or name), decision (approve|reject), opinion, iat, jti",
                }
            },
        }
    ),
}
APPROVAL_RESULT = json_content(
    {
        "type": "object",
        "required": ["id", "step", "decision", "outcome", "status"],
        "properties": {
            "id": {"type": "string"},
            "step": {"type": "integer"},
            "decision": {"type": "string", "enum": ["approve", "reject"]},
            "outcome": {
                "type": "string",
                "enum": ["recorded", "step_completed", "signed_off", "returned"],
            },
            "status": {"type": "string"},
        },
    }
)
VERSION_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


async def _document_id(request: web.Request) -> uuid.UUID:
    """The path's document id; one that is no id at all counts as a probe (audited 404)."""
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise await hidden(request, "unknown_id") from None


async def _own_department_document(request: web.Request) -> dict[str, Any]:
    """Workflow actions belong to the sending department; anyone else gets 404."""
    principal = principal_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        try:
            document = await documents.get_document(connection, await _document_id(request))
        except documents.DocumentNotFound:
            raise await hidden(request, "unknown_id") from None
    if document["sender"] != principal.department:
        raise await hidden(request, "other_department", document=str(document["id"]))
    return document


async def _spool_object(request: web.Request, key: str, path: Path) -> None:
    """The stored draft into a spool file, for the sealing worker to read."""
    await save_chunks(request.app[RUNTIME].objects.open(key), path)


@routes.add(
    "POST",
    "/v1/documents/{id}/approvals",
    summary="核稿 / 会签 / 签发: a signed decision on the open workflow step.",
    access="authenticated",
    tag="workflow",
    parameters=(path_param("id", "Document id."),),
    request_body=SIGNATURE_BODY,
    responses={"200": {"content": APPROVAL_RESULT}},
)
async def approve_document(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    document = await _own_department_document(request)
    body = await read_json_object(request)
    signature = body.get("signature")
    if not isinstance(signature, str) or not 1 <= len(signature) <= 65536:
        raise ApiError("invalid_request", "signature must be the compact approval JWS you signed")
    now = now_of(request)
    scope = idempotency_scope(request, principal.official_id)
    body_hash = hashlib.sha256(signature.encode()).hexdigest()
    async with runtime.pool.acquire() as connection:
        if scope is not None:
            earlier = await idempotency.find(connection, scope, body_hash)
            if earlier is not None:
                return json_response(earlier.body, status=earlier.status)
        owner = await identity.key_owner(connection, principal.kid)
        if owner is None or owner.key.revoked_at is not None:
            raise NotFound()
        try:
            async with connection.transaction():
                result = await workflow_service.record_approval(
                    connection,
                    principal=principal,
                    document_id=document["id"],
                    signature=signature,
                    key=parse_public_jwk(owner.key.public_jwk),
                    now=now,
                )
                if scope is not None:
                    await idempotency.remember(
                        connection,
                        scope,
                        body_hash,
                        idempotency.StoredResponse(200, result.as_json()),
                        now,
                    )
        except workflow.NotAnAssignee:
            await deny_access(request, "not_an_assignee", document=str(document["id"]))
            raise
    return json_response(result.as_json())


@routes.add(
    "GET",
    "/v1/documents/{id}/draft",
    summary="The draft (newest version, or ?version=N), to its drafter and approvers; "
    "to seal keepers the newest, while it awaits the seal.",
    access="authenticated",
    tag="workflow",
    parameters=(
        path_param("id", "Document id."),
        query_param("version", "Draft version (default: the newest).", schema={"type": "integer"}),
    ),
    responses={
        "200": {"content": {"application/pdf": {"schema": {"type": "string"}}}},
        "206": {"content": {"application/pdf": {"schema": {"type": "string"}}}},
    },
)
async def document_draft(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    document = await _own_department_document(request)
    async with runtime.pool.acquire() as connection:
        steps = await workflow_rows.steps_of(connection, document["id"])
        versions = await workflow_rows.versions_of(connection, document["id"])
    assignees = {official for step in steps for official in step.assignees}
    wanted = request.query.get("version")
    newest = str(versions[-1].version) if versions else "1"
    # A seal keeper reads what it is about to seal, and only then: not drafts still in
    # approval, not earlier versions, not drafts of documents already sent.
    sealing = (
        principal.has_any(SEAL_ROLES)
        and document["status"] == AWAITING_SEAL
        and wanted in (None, newest)
    )
    allowed = (
        principal.official_id == document["created_by"]
        or principal.official_id in assignees
        or sealing
    )
    if not allowed:
        await deny_access(request, "not_an_approver", document=str(document["id"]))
        raise ApiError(
            "forbidden",
            "drafts are for the drafter and the approvers, and for seal keepers while the "
            "document awaits its seal",
        )
    if wanted is None:
        key, sha256, size, number = (
            document["draft_object"],
            document["draft_sha256"],
            int(document["draft_size"]),
            versions[-1].version if versions else 1,
        )
    else:
        try:
            chosen = next(v for v in versions if v.version == int(wanted))
        except (ValueError, StopIteration):
            raise NotFound("no such draft version") from None
        key, sha256, size, number = (
            chosen.draft_object,
            chosen.draft_sha256,
            chosen.draft_size,
            chosen.version,
        )
    byte_range = parse_range(request.headers.get("Range"), size)
    now = now_of(request)
    async with runtime.pool.acquire() as connection, connection.transaction():
        await record_event(
            connection,
            AuditEvent(
                "draft.downloaded",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=principal.department,
                document=str(document["id"]),
                details={"version": number, "draft_sha256": sha256},
            ),
        )
    start, end = byte_range or (0, size)
    response = web.StreamResponse(status=206 if byte_range else 200)
    response.content_type = "application/pdf"
    response.content_length = end - start
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = f'"{sha256}"'
    response.headers["Sealhub-Draft-Version"] = str(number)
    if byte_range:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    await response.prepare(request)
    async for chunk in runtime.objects.open(key, start=start, end=end):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _file_part(request: web.Request) -> BodyPartReader:
    if not request.content_type.startswith("multipart/"):
        raise ApiError("unsupported_media_type", "send multipart/form-data with a 'file' part")
    reader = await request.multipart()
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError("invalid_request", "the part must be 'file'")
    return part


@routes.add(
    "POST",
    "/v1/documents/{id}/versions",
    summary="A new draft version from the drafter (after a return, or before sign-off).",
    access="authenticated",
    tag="workflow",
    parameters=(path_param("id", "Document id."),),
    request_body=VERSION_BODY,
    responses={"201": {"content": json_content({"type": "object"})}},
)
async def submit_version(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    document = await _own_department_document(request)
    if document["status"] in ("awaiting_seal", "dispatched", "withdrawn"):
        raise DocumentLocked(
            f"the document is {document['status']}: it was signed off and cannot change"
        )
    if document["created_by"] != principal.official_id:
        await deny_access(request, "not_the_drafter", document=str(document["id"]))
        raise DraftingNotAllowed("only the drafter may submit a new version")
    part = await _file_part(request)
    head = bytearray()

    async def chunks() -> Any:
        while chunk := await part.read_chunk(READ_CHUNK):
            if len(head) < 1024:
                head.extend(chunk[:1024])
            yield bytes(chunk)

    draft: PutResult = await runtime.objects.put(
        chunks(), max_bytes=runtime.settings.max_document_bytes
    )
    scope = idempotency_scope(request, principal.official_id)
    now = now_of(request)
    try:
        check_header(bytes(head))
        async with runtime.pool.acquire() as connection, connection.transaction():
            await documents.lock_document(connection, document["id"])
            # Under the document lock a retried twin sees the first one's stored answer.
            earlier = await idempotency.find(connection, scope, draft.sha256_hex) if scope else None
            if earlier is None:
                revised = await workflow_service.record_revision(
                    connection,
                    principal=principal,
                    document_id=document["id"],
                    draft=draft,
                    now=now,
                )
                if scope is not None:
                    stored = idempotency.StoredResponse(201, revised)
                    await idempotency.remember(connection, scope, draft.sha256_hex, stored, now)
    except BaseException:
        await exchange.delete_quietly(runtime.objects, [draft.key])
        raise
    if earlier is not None:
        await exchange.delete_quietly(runtime.objects, [draft.key])
        return json_response(earlier.body, status=earlier.status)
    return json_response(revised, status=201)


@routes.add(
    "POST",
    "/v1/documents/{id}/seal",
    summary="用印: seal a signed-off document and dispatch it (seal keepers).",
    access="authenticated",
    roles=SEAL_ROLES,
    tag="workflow",
    parameters=(path_param("id", "Document id."),),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def seal_document(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    document_id = (await _own_department_document(request))["id"]
    now = now_of(request)
    scope = idempotency_scope(request, principal.official_id)
    async with runtime.pool.acquire() as connection:
        if scope is not None:
            earlier = await idempotency.find(connection, scope, SEAL_REQUEST_HASH)
            if earlier is not None:
                return json_response(earlier.body, status=earlier.status)
        document = await workflow_service.draft_to_seal(connection, document_id)
    with spool_files(runtime.settings, 2) as (draft_file, sealed_file):
        await _spool_object(request, document["draft_object"], draft_file)
        outcome = await request.app[SEALER].seal(
            principal.department, draft_file, sealed_file, reason=document["doc_number"]
        )
        sealed: PutResult = await runtime.objects.put(
            file_chunks(outcome.pdf), max_bytes=outcome.pdf.stat().st_size + 1
        )
    try:
        async with runtime.pool.acquire() as connection, connection.transaction():
            sent = await workflow_service.record_sealed_after_approval(
                connection,
                principal=principal,
                document=document,
                sealed=sealed,
                seal_id=outcome.seal_id,
                now=now,
                sign_for_within=runtime.settings.supervision.sign_for_within(),
            )
            if scope is not None:
                await idempotency.remember(
                    connection,
                    scope,
                    SEAL_REQUEST_HASH,
                    idempotency.StoredResponse(200, sent.as_json()),
                    now,
                )
    except SealRevokedMeanwhile as revoked:
        await exchange.delete_quietly(runtime.objects, [sealed.key])
        await request.app[SEALER].record_refusal(principal.department, revoked.seal_id)
        raise
    except BaseException:
        await exchange.delete_quietly(runtime.objects, [sealed.key])
        raise
    return json_response(sent.as_json())
