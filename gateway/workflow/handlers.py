"""The approval chain over HTTP: signed decisions, the draft, new versions, the seal.

Each handler parses the request, calls one WorkflowService method and renders its answer.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web
from pydantic import Field

from gateway.exchange import views as exchange_views
from gateway.exchange.handlers import exchange_refusals, idempotency_key, path_id
from gateway.http.bodies import after_time_id, json_response, page_params, parse_body
from gateway.http.errors import ApiError
from gateway.http.models import RequestBody
from gateway.http.openapi import json_content, schema_ref
from gateway.http.routing import PAGE_PARAMS, Handler, RouteTable, path_param, query_param
from gateway.identity.auth import deny_access, principal_of
from gateway.passkeys.stepup import Signed
from gateway.workflow import views
from gateway.workflow.rules import DeniedAccess
from gateway.workflow.service import SEAL_ROLES, WorkflowService

routes = RouteTable()
WORKFLOW: web.AppKey[WorkflowService] = web.AppKey("workflow", WorkflowService)

READ_CHUNK = 256 * 1024
MAX_SIGNATURE = 65536

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


class ApprovalSignature(RequestBody):
    signature: str = Field(
        min_length=1,
        max_length=MAX_SIGNATURE,
        description="sealhub-approval+jwt: document, draft_sha256, step (index or name), "
        "decision (approve|reject), opinion, iat, jti",
    )
    passkey: dict[str, Any] | None = Field(
        default=None,
        description="passkey step-up (签发 from a console key): AuthenticationResponseJSON whose"
        " challenge is b64url(SHA-256(ASCII of signature))",
    )


class SealBody(RequestBody):
    """用印's optional body: the seal keeper's signed request and its passkey step-up."""

    signature: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SIGNATURE,
        description="sealhub-seal+jwt: document, draft_sha256, iat, jti",
    )
    passkey: dict[str, Any] | None = Field(
        default=None,
        description="AuthenticationResponseJSON whose challenge is"
        " b64url(SHA-256(ASCII of signature)); needs signature",
    )


def workflow_refusals(handler: Handler) -> Handler:
    """The exchange's audited 404/403 (hidden documents, missing roles), and the workflow's
    refusals of who the caller is, recorded as ``access.denied`` with their reason."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DeniedAccess as refused:
            await deny_access(request, refused.reason, document=str(path_id(request)))
            raise

    return exchange_refusals(answer)


async def _signature(request: web.Request) -> Signed:
    body = await parse_body(request, ApprovalSignature)
    return Signed(body.signature, body.passkey)


async def _seal_request(request: web.Request) -> Signed | None:
    """The optional body of 用印 (the SDK sends none)."""
    if not request.can_read_body:
        return None
    body = await parse_body(request, SealBody)
    if body.signature is None:
        if body.passkey is not None:
            raise ApiError("invalid_request", "a passkey step-up confirms a signature: send both")
        return None
    return Signed(body.signature, body.passkey)


async def _file_part(request: web.Request) -> AsyncIterator[bytes]:
    """The body's one ``file`` part, as it arrives."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError("unsupported_media_type", "send multipart/form-data with a 'file' part")
    part = await (await request.multipart()).next()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError("invalid_request", "the part must be 'file'")
    return _chunks(part)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_CHUNK):
        yield bytes(chunk)


@routes.add(
    "GET",
    "/v1/approvals",
    summary="待办: approval steps waiting for my decision, oldest first.",
    access="authenticated",
    tag="workflow",
    parameters=PAGE_PARAMS,
    responses={"200": views.WaitingPage},
)
async def waiting_approvals(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    page = await request.app[WORKFLOW].waiting(
        principal_of(request), after=after_time_id(cursor), limit=limit
    )
    return json_response(views.waiting_page(page))


@routes.add(
    "POST",
    "/v1/documents/{id}/approvals",
    summary="核稿 / 会签 / 签发: a signed decision on the open workflow step.",
    access="authenticated",
    tag="workflow",
    parameters=(path_param("id", "Document id."),),
    request_model=ApprovalSignature,
    responses={"200": views.Approved},
)
@workflow_refusals
async def approve_document(request: web.Request) -> web.Response:
    result = await request.app[WORKFLOW].approve(
        principal_of(request),
        path_id(request),
        lambda: _signature(request),
        idempotency_key=idempotency_key(request),
    )
    return json_response(views.approved(result))


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
@workflow_refusals
async def document_draft(request: web.Request) -> web.StreamResponse:
    download = await request.app[WORKFLOW].draft(
        principal_of(request),
        path_id(request),
        request.query.get("version"),
        request.headers.get("Range"),
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
    responses={"201": views.Submitted},
)
@workflow_refusals
async def submit_version(request: web.Request) -> web.Response:
    revision = await request.app[WORKFLOW].submit_version(
        principal_of(request),
        path_id(request),
        lambda: _file_part(request),
        idempotency_key=idempotency_key(request),
    )
    return json_response(views.submitted(revision), status=201)


@routes.add(
    "POST",
    "/v1/documents/{id}/seal",
    summary="用印: seal a signed-off document and dispatch it (seal keepers).",
    access="authenticated",
    roles=SEAL_ROLES,
    tag="workflow",
    parameters=(path_param("id", "Document id."),),
    request_body={"required": False, "content": json_content(schema_ref(SealBody))},
    responses={"200": exchange_views.SentDocument},
)
@workflow_refusals
async def seal_document(request: web.Request) -> web.Response:
    sent = await request.app[WORKFLOW].seal(
        principal_of(request),
        path_id(request),
        lambda: _seal_request(request),
        idempotency_key=idempotency_key(request),
    )
    return json_response(exchange_views.sent(sent))
