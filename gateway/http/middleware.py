"""Request middleware: request id, error mapping to problem+json, metrics, security headers."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import traceback
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.http.errors import ApiError, detail_of, problem_for, problem_response
from gateway.http.metrics import Metrics
from gateway.http.routing import Handler
from gateway.logs import REQUEST_ID
from keys.codes import Code, CodedError

log = logging.getLogger("sealhub.http")

_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000",
}
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
BODY_IDLE_SECONDS: web.AppKey[float] = web.AppKey("body_idle_seconds", float)
DEFAULT_BODY_IDLE_SECONDS = 30.0
# Below this average a body upload is a slowloris, not a slow line: 1 KiB/s still moves a
# 10 MB document in under three hours.
MIN_BODY_BYTES_PER_SECOND = 1024

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


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _refuse_control_characters(request: web.Request) -> None:
    """No legitimate path or query carries a control character once decoded; refusing them
    here keeps NUL and friends away from handlers, logs and PostgreSQL (which rejects NUL)."""
    if _CONTROL.search(request.path) or _CONTROL.search(request.query_string):
        raise ApiError("invalid_request", "the path or query contains control characters")


def _client_data_error(exc: Exception) -> str | None:
    """Why *exc* is the client's data, not our bug, when raised below the handlers: text
    PostgreSQL cannot store (NUL), or malformed multipart framing, which aiohttp's reader
    reports as ``HttpProcessingError`` or a bare ``ValueError``. None: it is a bug."""
    if isinstance(exc, _UNSTORABLE_TEXT):
        return "the request carries text that cannot be stored (e.g. NUL characters)"
    if isinstance(exc, HttpProcessingError) or (
        isinstance(exc, ValueError) and _raised_in(exc, "aiohttp/multipart.py")
    ):
        return "the request body is not well-formed"
    return None


_UNSTORABLE_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


def _raised_in(exc: BaseException, file_suffix: str) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.replace("\\", "/").endswith(file_suffix)


class SlowBody(CodedError):
    code = Code.REQUEST_TIMEOUT


async def _within_body_bounds(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run *handler*, but cut a client whose body stalls or trickles (slowloris on the body).

    aiohttp bounds the headers (keep-alive timer) but waits for a body forever. While the
    body is incomplete, every tick checks that the client keeps it coming: no new byte for
    the idle period, or an average below MIN_BODY_BYTES_PER_SECOND over the time we were
    waiting on the client, cancels the handler and answers 408. Time the handler spends
    not reading (bytes sit in the buffer) is ours, not the client's, and never counts.
    """
    content = request.content
    if not request.body_exists or content.is_eof():
        return await handler(request)
    idle = request.app.get(BODY_IDLE_SECONDS, DEFAULT_BODY_IDLE_SECONDS)
    tick = min(1.0, idle / 4)
    task = asyncio.ensure_future(handler(request))
    seen = content.total_bytes
    stalled = waited = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=tick)
            if done or content.is_eof():
                return await task
            # aiohttp exposes no public "buffered bytes"; _size is the StreamReader's count.
            if getattr(content, "_size", 0) > 0:
                continue
            waited += tick
            received = content.total_bytes
            stalled = 0.0 if received != seen else stalled + tick
            seen = received
            trickling = waited >= idle and received / waited < MIN_BODY_BYTES_PER_SECOND
            if stalled >= idle or trickling:
                task.cancel()
                await asyncio.wait({task})
                if not task.cancelled():
                    task.exception()  # retrieved: whatever it raised while being cut
                raise SlowBody(
                    f"the request body arrived too slowly ({received} bytes in {waited:.0f} s)"
                )
    except asyncio.CancelledError:
        task.cancel()
        raise


def _client_reset(request: web.Request, exc: Exception) -> bool:
    """A reset of the client's own connection (say while its body was read), not one of
    ours to the database or the object store: the request's transport is gone too."""
    transport = request.transport
    return isinstance(exc, ConnectionResetError) and (transport is None or transport.is_closing())


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    offered = request.headers.get("X-Request-Id", "")
    request_id = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    try:
        try:
            _refuse_control_characters(request)
            response = await _within_body_bounds(request, handler)
        except web.HTTPException as exc:
            response = _from_http_exception(exc)
        except Exception as exc:
            known = problem_for(exc)
            client_error = None if known else _client_data_error(exc)
            if client_error is not None:
                response = problem_response(400, "invalid_request", client_error)
            elif known is None and _client_reset(request, exc):
                # Nobody is left to answer, and it is not our fault: no traceback, no 500.
                log.info("the client reset the connection", extra={"path": request.path})
                response = problem_response(400, "invalid_request", "the connection was reset")
            elif known is None:
                log.exception("unhandled error", extra={"path": request.path})
                response = problem_response(
                    500, "internal_error", f"unexpected error; quote request id {request_id}"
                )
            else:
                response = known
                if response.status >= 500:
                    log.error("service error %s: %s", getattr(exc, "code", ""), detail_of(exc))
                if isinstance(exc, SlowBody):
                    log.info("cut a slow request body: %s", exc)
                    response.force_close()  # the rest of the body is not worth reading
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
            response.headers.setdefault("Cache-Control", _SECURITY_HEADERS["Cache-Control"])
            response.headers["X-Content-Type-Options"] = _SECURITY_HEADERS["X-Content-Type-Options"]
            response.headers["Strict-Transport-Security"] = _SECURITY_HEADERS[
                "Strict-Transport-Security"
            ]
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


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection protocol, answering what its HTTP parser refuses (a bad request
    line, a raw non-ASCII byte, oversized headers) as problem+json instead of text/plain.

    Those requests never reach the middleware above: aiohttp calls ``handle_error`` itself.
    The connection is closed afterwards, as aiohttp does.
    """

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; cannot send an error")
        if status >= 500:
            log.error("error outside the application", exc_info=exc)
            response = problem_response(status, "internal_error", "unexpected error")
        else:
            # The parser's message names what was wrong (never a path or a trace).
            reason = (message or "").splitlines()[0][:200] if message else ""
            log.info("refused an unparsable request: %s", reason or status)
            code = _AIOHTTP_CODES.get(status, "invalid_request")
            response = problem_response(
                status, code, f"the request is not valid HTTP/1.1: {reason}".rstrip(": ")
            )
        response.headers.update(_SECURITY_HEADERS)
        response.force_close()
        return response


class ProxiedRequestHandler(ProblemRequestHandler):
    """The connection protocol behind a trusted proxy: the peer is the proxy, the client is
    the address its PROXY header named (None: the proxy spoke for itself, a health check)."""

    def __init__(self, *args: Any, client_address: tuple[str, int] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client_address = client_address

    @property
    def peername(self) -> str | tuple[str, int, int, int] | tuple[str, int] | None:
        if self._client_address is not None:
            return self._client_address
        return self.transport.get_extra_info("peername") if self.transport else None
