"""Service endpoints: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import hmac
from typing import Any, Literal

from aiohttp import web
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import json_response
from gateway.http.errors import problem_response
from gateway.http.health import OK, HealthService
from gateway.http.middleware import METRICS
from gateway.http.proxy_protocol import is_trusted
from gateway.http.routing import RouteTable
from gateway.identity.auth import source_of
from gateway.runtime import RUNTIME

routes = RouteTable()

HEALTH: web.AppKey[HealthService] = web.AppKey("health", HealthService)
OPENAPI_DOCUMENT: web.AppKey[dict[str, object]] = web.AppKey("openapi", dict)


class Alive(TypedDict):
    status: Literal["ok"]


class Ready(TypedDict):
    """Every check said ``ok`` (else the answer is a 503 problem with the same checks)."""

    status: Literal["ready"]
    checks: dict[str, str]


class OpenApiDocument(TypedDict):
    """The outline of an OpenAPI 3.1 document; what it describes is free JSON."""

    openapi: str
    info: dict[str, Any]
    servers: list[dict[str, Any]]
    paths: dict[str, Any]
    components: dict[str, Any]


@routes.add(
    "GET",
    "/healthz",
    summary="The process is up.",
    access="public",
    tag="service",
    responses={"200": Alive},
)
async def healthz(request: web.Request) -> web.Response:
    alive: Alive = {"status": "ok"}
    return json_response(alive)


@routes.add(
    "GET",
    "/readyz",
    summary="Database and object store reachable, seal font present (else 503).",
    access="public",
    tag="service",
    responses={"200": Ready},
)
async def readyz(request: web.Request) -> web.Response:
    checks = await request.app[HEALTH].checks()
    failing = {name: state for name, state in checks.items() if state != OK}
    if failing:
        detail = "; ".join(f"{name}: {state}" for name, state in failing.items())
        return problem_response(503, "not_ready", detail, extra={"checks": checks})
    ready: Ready = {"status": "ready", "checks": checks}
    return json_response(ready)


@routes.add(
    "GET",
    "/metrics",
    summary="Prometheus metrics (configured addresses, or Authorization: Bearer <token>).",
    access="public",
    tag="service",
    responses={"200": {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: web.Request) -> web.Response:
    """Metrics name routes, volumes and error rates: for the operators' scraper, not the
    Internet. Allowed from SEALHUB_METRICS_ADDRESSES or with the bearer secret."""
    settings = request.app[RUNTIME].settings
    allowed = is_trusted(source_of(request), settings.metrics_addresses)
    if not allowed and settings.metrics_token is not None:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        # Constant time: the comparison must not tell how much of a guess was right.
        allowed = scheme.lower() == "bearer" and hmac.compare_digest(
            offered.strip().encode(), settings.metrics_token.encode()
        )
    if not allowed:
        return problem_response(
            403, "forbidden", "metrics are for configured addresses or the metrics token"
        )
    return web.Response(
        body=request.app[METRICS].render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


@routes.add(
    "GET",
    "/openapi.json",
    summary="This API as OpenAPI 3.1.",
    access="public",
    tag="service",
    responses={"200": OpenApiDocument},
)
async def openapi(request: web.Request) -> web.Response:
    if OPENAPI_DOCUMENT not in request.app:
        raise web.HTTPNotFound()
    return json_response(request.app[OPENAPI_DOCUMENT])
