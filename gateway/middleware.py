"""Request middleware: request id, error mapping to problem+json, metrics, security headers."""

from __future__ import annotations

import logging
import re
import secrets
import time

from aiohttp import web

from gateway.errors import detail_of, problem_response, status_for
from gateway.logs import REQUEST_ID
from gateway.metrics import Metrics
from gateway.routing import Handler

log = logging.getLogger("sealhub.http")

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)

_AIOHTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        return exc
    code = _AIOHTTP_CODES.get(exc.status, "invalid_request")
    detail = {
        "not_found": "no such resource",
        "method_not_allowed": "this method is not allowed here",
        "payload_too_large": "the request body is too large",
    }.get(code, exc.text or exc.reason)
    response = problem_response(exc.status, code, detail)
    if exc.status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    offered = request.headers.get("X-Request-Id", "")
    request_id = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _from_http_exception(exc)
        except Exception as exc:
            mapped = status_for(exc)
            if mapped is None:
                log.exception("unhandled error", extra={"path": request.path})
                response = problem_response(
                    500, "internal_error", f"unexpected error; quote request id {request_id}"
                )
            else:
                status, code = mapped
                if status >= 500:
                    log.error("service error %s: %s", code, detail_of(exc))
                response = problem_response(status, code, detail_of(exc))
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(retry_after, int):
                    response.headers["Retry-After"] = str(retry_after)
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        route_name = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "unmatched"
        )
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, route_name, str(response.status)).inc()
        metrics.latency.labels(request.method, route_name).observe(time.perf_counter() - started)
        log.info(
            "%s %s %d",
            request.method,
            request.path,
            response.status,
            extra={"duration_ms": round((time.perf_counter() - started) * 1000, 2)},
        )
        return response
    finally:
        REQUEST_ID.reset(token)
