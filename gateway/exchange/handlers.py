"""Document endpoints: send (meta, then file), read, download with Range."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, web

from gateway.exchange import views
from gateway.exchange.errors import Hidden, RoleMissing
from gateway.exchange.meta import DocumentMeta, SendMeta, parse_meta
from gateway.exchange.service import ExchangeService
from gateway.http.bodies import json_response, parse_json_bytes
from gateway.http.errors import ApiError
from gateway.http.openapi import schema_ref
from gateway.http.routing import Handler, RouteTable, path_param
from gateway.identity.auth import Forbidden, deny_access, hidden, now_of, principal_of
from gateway.runtime import RUNTIME
from storage import idempotency

routes = RouteTable()
EXCHANGE: web.AppKey[ExchangeService] = web.AppKey("exchange", ExchangeService)

READ_CHUNK = 256 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"

SEND_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["meta", "file"],
                "properties": {
                    "meta": {
                        "type": "string",
                        "description": "JSON document metadata",
                        "contentMediaType": "application/json",
                        "contentSchema": schema_ref(SendMeta),
                    },
                    "file": {"type": "string", "format": "binary"},
                },
            },
            "encoding": {"meta": {"contentType": "application/json"}},
        }
    },
}


def exchange_refusals(handler: Handler) -> Handler:
    """The service's refusals of who may see or do what, answered as the gateway's audited
    404 (``access.denied``, aggregated) and 403 (``role_missing``)."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Hidden as refused:
            raise await hidden(request, refused.reason, **refused.details) from None
        except RoleMissing as refused:
            await deny_access(request, "role_missing")
            raise Forbidden(refused.detail) from None

    return answer


def path_id(request: web.Request, name: str = "id") -> uuid.UUID:
    """The path's id; one that is no id at all counts as a probe (audited 404)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise Hidden("unknown_id") from None


def idempotency_key(request: web.Request) -> idempotency.Key | None:
    """The request's ``Idempotency-Key`` (checked by the unit of work that uses it)."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    return None if value is None else idempotency.Key(request.method, request.path, value)


async def _meta_part(request: web.Request, reader: MultipartReader) -> DocumentMeta:
    """The first part, ``meta``: parsed and bounded before any file byte is read."""
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "meta":
        raise ApiError("invalid_request", "the first part must be 'meta' (before 'file')")
    limit = request.app[RUNTIME].settings.max_json_bytes
    raw = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        raw += chunk
        if len(raw) > limit:
            raise ApiError("payload_too_large", "the meta part is too large")
    return parse_meta(parse_json_bytes(bytes(raw)), now=now_of(request))


async def _file_part(reader: MultipartReader) -> AsyncIterator[bytes]:
    """The second part, ``file``, as it arrives (asked for once the meta was accepted)."""
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError("invalid_request", "the second part must be 'file'")
    return _chunks(part)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_CHUNK):
        yield bytes(chunk)


@routes.add(
    "POST",
    "/v1/documents",
    summary="Seal and send a document, or start its approval workflow (multipart: meta, file).",
    access="authenticated",
    tag="documents",
    request_body=SEND_BODY,
    responses={"201": views.SentDocument},
)
@exchange_refusals
async def send_document(request: web.Request) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        raise ApiError("unsupported_media_type", "send multipart/form-data: meta, then file")
    reader = await request.multipart()
    meta = await _meta_part(request, reader)
    sent = await request.app[EXCHANGE].send(
        principal_of(request),
        meta,
        lambda: _file_part(reader),
        idempotency_key=idempotency_key(request),
    )
    return json_response(views.sent(sent), status=201)


@routes.add(
    "GET",
    "/v1/documents/{id}",
    summary="A document: metadata, status, deliveries.",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    responses={"200": views.Document},
)
@exchange_refusals
async def get_document(request: web.Request) -> web.Response:
    view = await request.app[EXCHANGE].document(principal_of(request), path_id(request))
    return json_response(views.document(view))


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
@exchange_refusals
async def document_content(request: web.Request) -> web.StreamResponse:
    content = await request.app[EXCHANGE].content(
        principal_of(request), path_id(request), request.headers.get("Range")
    )
    response = web.StreamResponse(status=206 if content.byte_range else 200)
    response.content_type = "application/pdf"
    response.content_length = content.end - content.start
    response.headers.update(views.content_headers(content))
    await response.prepare(request)
    async for chunk in content.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
