"""Public PKI material: the root to trust, the issuing CAs, fresh CRLs."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.http.errors import ApiError
from gateway.http.routing import RouteTable, path_param
from gateway.identity.auth import now_of, principal_of
from gateway.pki.crls import CRL_NAMES, CRLS
from gateway.pki.service import TimeStampService
from gateway.runtime import RUNTIME

routes = RouteTable()

TIME_STAMPS: web.AppKey[TimeStampService] = web.AppKey("time_stamps", TimeStampService)

PEM = {"application/x-pem-file": {"schema": {"type": "string"}}}


def _pem_file(path: Path) -> web.Response:
    """Public certificates: small files written once at set-up, cacheable by clients."""
    return web.Response(
        body=path.read_bytes(),
        content_type="application/x-pem-file",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@routes.add(
    "GET",
    "/v1/pki/ca.pem",
    summary="The platform root CA certificate (trust anchor).",
    access="public",
    tag="pki",
    responses={"200": {"content": PEM}},
)
async def root_certificate(request: web.Request) -> web.Response:
    return _pem_file(request.app[RUNTIME].pki.ca_pem_path)


@routes.add(
    "GET",
    "/v1/pki/chain.pem",
    summary="The issuing CAs and the TSA certificate.",
    access="public",
    tag="pki",
    responses={"200": {"content": PEM}},
)
async def chain_certificates(request: web.Request) -> web.Response:
    return _pem_file(request.app[RUNTIME].pki.chain_pem_path)


@routes.add(
    "GET",
    "/v1/pki/crl/{ca}",
    summary="DER CRL of `root`, `seal-ca` or `tls-ca`.",
    access="public",
    tag="pki",
    parameters=(path_param("ca", "root, seal-ca or tls-ca"),),
    responses={"200": {"content": {"application/pkix-crl": {"schema": {"type": "string"}}}}},
)
async def certificate_revocation_list(request: web.Request) -> web.Response:
    ca_name = request.match_info["ca"]
    if ca_name not in CRL_NAMES:
        raise web.HTTPNotFound()
    der = await request.app[CRLS].get(ca_name)
    return web.Response(
        body=der,
        content_type="application/pkix-crl",
        headers={"Cache-Control": "public, max-age=300"},
    )


TSA_REQUEST_LIMIT = 16 * 1024


@routes.add(
    "POST",
    "/v1/pki/tsa",
    summary="RFC 3161 time-stamp authority (body: a TimeStampReq).",
    access="authenticated",
    tag="pki",
    request_body={
        "required": True,
        "content": {
            "application/timestamp-query": {"schema": {"type": "string", "format": "binary"}}
        },
    },
    responses={
        "200": {
            "content": {
                "application/timestamp-reply": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
async def time_stamp(request: web.Request) -> web.Response:
    if request.content_type != "application/timestamp-query":
        raise ApiError("unsupported_media_type", "send application/timestamp-query", status=415)
    if request.content_length is not None and request.content_length > TSA_REQUEST_LIMIT:
        raise ApiError("payload_too_large", "a time-stamp request is at most 16 KiB")
    query = await request.content.read(TSA_REQUEST_LIMIT + 1)
    if len(query) > TSA_REQUEST_LIMIT:
        raise ApiError("payload_too_large", "a time-stamp request is at most 16 KiB")
    official = principal_of(request).official_id
    reply = await request.app[TIME_STAMPS].stamp(official, query, now_of(request))
    return web.Response(body=reply, content_type="application/timestamp-reply")
