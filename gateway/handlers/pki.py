"""Public PKI material: the root to trust, the issuing CAs, fresh CRLs."""

from __future__ import annotations

from aiohttp import web

from gateway.crls import CRL_NAMES, CRLS
from gateway.routes_table import routes
from gateway.routing import path_param
from gateway.runtime import RUNTIME

PEM = {"application/x-pem-file": {"schema": {"type": "string"}}}


@routes.add(
    "GET",
    "/v1/pki/ca.pem",
    summary="The platform root CA certificate (trust anchor).",
    access="public",
    tag="pki",
    responses={"200": {"content": PEM}},
)
async def root_certificate(request: web.Request) -> web.Response:
    pem = request.app[RUNTIME].pki.ca_pem_path.read_bytes()
    return web.Response(
        body=pem,
        content_type="application/x-pem-file",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@routes.add(
    "GET",
    "/v1/pki/chain.pem",
    summary="The issuing CAs and the TSA certificate.",
    access="public",
    tag="pki",
    responses={"200": {"content": PEM}},
)
async def chain_certificates(request: web.Request) -> web.Response:
    pem = request.app[RUNTIME].pki.chain_pem_path.read_bytes()
    return web.Response(
        body=pem,
        content_type="application/x-pem-file",
        headers={"Cache-Control": "public, max-age=3600"},
    )


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
