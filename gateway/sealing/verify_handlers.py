"""POST /v1/verify: check every seal of an uploaded PDF, with nothing fetched from the network."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from gateway.http.bodies import json_response
from gateway.http.errors import ApiError
from gateway.http.routing import RouteTable
from gateway.identity.auth import now_of, principal_of
from gateway.runtime import RUNTIME
from gateway.sealing.verifier import VERIFIER
from gateway.spool import spool_files
from seals.verify import VerificationReport

routes = RouteTable()

READ_CHUNK = 256 * 1024


def _refuse_declared_size(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("payload_too_large", f"verify takes documents of at most {limit} bytes")


async def _body(request: web.Request, limit: int, path: Path) -> None:
    """The upload into the spool file *path*, refused as soon as it passes the limit."""
    size = 0
    with path.open("r+b") as out:
        while chunk := await request.content.read(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    "payload_too_large", f"verify takes documents of at most {limit} bytes"
                )
            await asyncio.to_thread(out.write, chunk)


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
    # The report's own dataclasses declare its JSON (to_dict is their asdict).
    responses={"200": VerificationReport},
)
async def verify_document(request: web.Request) -> web.Response:
    """Rate first (429), the declared size (413), then a slot (503), then the body (413):
    a refused call costs neither memory nor a worker; the body goes to a spool file."""
    verifier = request.app[VERIFIER]
    official = principal_of(request).official_id
    await verifier.admit(official, now_of(request))
    _refuse_declared_size(request, verifier.max_bytes)
    with verifier.slot(official), spool_files(request.app[RUNTIME].settings, 1) as (upload,):
        await _body(request, verifier.max_bytes, upload)
        report = await verifier.verify(upload)
    return json_response(report.to_dict())
