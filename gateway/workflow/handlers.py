"""The approval chain over HTTP: signed decisions, the draft, new versions, the seal.

Each handler parses the request, calls the workflow service and renders its answer.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web

from gateway.exchange.handlers import idempotency_scope, parse_range
from gateway.http.bodies import json_response, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param, query_param
from gateway.identity.auth import deny_access, hidden, now_of, principal_of
from gateway.workflow import views
from gateway.workflow.service import SEAL_ROLES, DocumentHidden, WorkflowService

routes = RouteTable()
WORKFLOW: web.AppKey[WorkflowService] = web.AppKey("workflow", WorkflowService)

READ_CHUNK = 256 * 1024
MAX_SIGNATURE = 65536

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


@contextlib.asynccontextmanager
async def _refusals_audited(request: web.Request) -> AsyncIterator[None]:
    """The service's refusals of who the caller is, recorded as ``access.denied`` for
    e-supervision: hidden documents as counted probes (404), others with their reason."""
    try:
        yield
    except DocumentHidden as exc:
        raise await hidden(request, exc.reason, **exc.details) from None
    except Exception as exc:
        reason = getattr(exc, "denied_as", None)
        if isinstance(reason, str):
            document = str(uuid.UUID(request.match_info["id"]))
            await deny_access(request, reason, document=document)
        raise


def _signature(body: dict[str, Any]) -> str:
    signature = body.get("signature")
    if not isinstance(signature, str) or not 1 <= len(signature) <= MAX_SIGNATURE:
        raise ApiError("invalid_request", "signature must be the compact approval JWS you signed")
    return signature


async def _file_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The body's one ``file`` part, as it arrives."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError("unsupported_media_type", "send multipart/form-data with a 'file' part")
    part = await (await request.multipart()).next()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError("invalid_request", "the part must be 'file'")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await part.read_chunk(READ_CHUNK):
            yield bytes(chunk)

    return chunks()


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
    principal = principal_of(request)
    service = request.app[WORKFLOW]
    async with _refusals_audited(request):
        document = await service.own_document(principal, await _document_id(request))
        signature = _signature(await read_json_object(request))
        scope = idempotency_scope(request, principal.official_id)
        answer = await service.approve(
            principal, document, signature, scope=scope, now=now_of(request)
        )
    return json_response(answer.body, status=answer.status)


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
    range_header = request.headers.get("Range")
    async with _refusals_audited(request):
        download = await request.app[WORKFLOW].draft(
            principal_of(request),
            await _document_id(request),
            request.query.get("version"),
            lambda size: parse_range(range_header, size),
            now=now_of(request),
        )
    return await views.stream_draft(request, download)


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
    principal = principal_of(request)
    service = request.app[WORKFLOW]
    async with _refusals_audited(request):
        document = await service.revisable_document(principal, await _document_id(request))
        chunks = await _file_chunks(request)
        scope = idempotency_scope(request, principal.official_id)
        answer = await service.submit_version(
            principal, document, chunks, scope=scope, now=now_of(request)
        )
    return json_response(answer.body, status=answer.status)


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
    principal = principal_of(request)
    service = request.app[WORKFLOW]
    async with _refusals_audited(request):
        document = await service.own_document(principal, await _document_id(request))
        scope = idempotency_scope(request, principal.official_id)
        answer = await service.seal(principal, document, scope=scope, now=now_of(request))
    return json_response(answer.body, status=answer.status)
