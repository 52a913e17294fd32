"""Public PKI material: the root to trust, the issuing CAs, fresh CRLs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from gateway.routes_table import routes
from gateway.routing import path_param
from gateway.runtime import RUNTIME
from keys import crl, pki

PEM = {"application/x-pem-file": {"schema": {"type": "string"}}}
ONLINE_CAS = (pki.SEAL_CA_NAME, pki.TLS_CA_NAME)
CRL_NAMES = (pki.ROOT_CA_NAME, *ONLINE_CAS)


class CrlCache:
    """One signed CRL per online CA, re-signed before ``nextUpdate`` comes near.

    The platform has no revocation source yet beyond what the seal issue adds, so the
    lists are empty; ``invalidate`` is the hook a revocation calls.
    """

    def __init__(self) -> None:
        self._der: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    def invalidate(self, ca_name: str) -> None:
        self._der.pop(ca_name, None)

    async def get(self, request: web.Request, ca_name: str) -> bytes:
        runtime = request.app[RUNTIME]
        if ca_name == pki.ROOT_CA_NAME:
            return runtime.pki.root_crl()
        now = datetime.now(UTC)
        async with self._lock:
            cached = self._der.get(ca_name)
            if cached is not None and not crl.needs_refresh(crl.load_crl(cached), now):
                return cached
            previous = crl.crl_number_of(crl.load_crl(cached)) if cached else None
            fresh = runtime.pki.build_crl(ca_name, [], now=now, previous_number=previous)
            self._der[ca_name] = fresh
            return fresh


CRLS: web.AppKey[CrlCache] = web.AppKey("crls", CrlCache)


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
    if CRLS not in request.app:
        raise web.HTTPNotFound()
    der = await request.app[CRLS].get(request, ca_name)
    return web.Response(
        body=der,
        content_type="application/pkix-crl",
        headers={"Cache-Control": "public, max-age=300"},
    )
