"""POST /v1/verify: check every seal of an uploaded PDF, with nothing fetched from the network."""

from __future__ import annotations

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from gateway.crls import CRLS
from gateway.errors import ApiError
from gateway.http import json_response
from gateway.openapi import json_content
from gateway.routes_table import routes
from gateway.runtime import RUNTIME
from gateway.sealing import SEAL_POOL, registered_seals, seal_issuer
from keys import pki

READ_CHUNK = 256 * 1024
REPORT = {
    "type": "object",
    "required": ["valid", "seals"],
    "properties": {
        "valid": {"type": "boolean"},
        "seals": {"type": "array", "items": {"type": "object"}},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
}


async def _body(request: web.Request, limit: int) -> bytes:
    """The upload, refused as soon as it passes the limit (never buffered beyond it)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("payload_too_large", f"documents may have at most {limit} bytes")
    data = bytearray()
    while chunk := await request.content.read(READ_CHUNK):
        data += chunk
        if len(data) > limit:
            raise ApiError("payload_too_large", f"documents may have at most {limit} bytes")
    return bytes(data)


async def known_seals(request: web.Request) -> dict[str, str]:
    """Certificate SHA-256 → seal id, so the report names our seals."""
    async with request.app[RUNTIME].pool.acquire() as connection:
        return await registered_seals(connection)


@routes.add(
    "POST",
    "/v1/verify",
    summary="Verify the seals of a PDF (body: the PDF).",
    access="authenticated",
    tag="seals",
    request_body={
        "required": True,
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    },
    responses={"200": {"content": json_content(REPORT)}},
)
async def verify_document(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    data = await _body(request, runtime.settings.max_document_bytes)
    root = runtime.pki.root_cert.public_bytes(serialization.Encoding.DER)
    crls = request.app[CRLS]
    report = await request.app[SEAL_POOL].averify(
        data,
        trust_roots=(root,),
        crls=(await crls.get(pki.ROOT_CA_NAME), await crls.get(pki.SEAL_CA_NAME)),
        known_seals=await known_seals(request),
        max_bytes=runtime.settings.max_document_bytes,
        seal_issuer=seal_issuer(runtime.pki),
    )
    return json_response(report.to_dict())
