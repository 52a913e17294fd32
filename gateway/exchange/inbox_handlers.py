"""The inbox: deliveries to the caller's department, as pages, long-polls and a stream."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from gateway.exchange import views
from gateway.exchange.handlers import EXCHANGE, exchange_refusals
from gateway.exchange.service import INBOX_STATES, InboxQuery
from gateway.http.bodies import json_response, page_params, query_text
from gateway.http.errors import ApiError
from gateway.http.routing import PAGE_PARAMS, RouteTable, query_param
from gateway.identity.auth import principal_of

routes = RouteTable()

STATES = INBOX_STATES
MAX_WAIT_SECONDS = 60
EVENT_STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
}


def _after_seq(cursor: dict[str, Any] | None) -> int:
    if cursor is None:
        return 0
    seq = cursor.get("seq")
    if not isinstance(seq, int) or seq < 0:
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return seq


def _inbox_query(request: web.Request) -> InboxQuery:
    limit, cursor = page_params(request)
    states = tuple(dict.fromkeys(request.query.getall("state", ())))
    if any(state not in STATES for state in states):
        raise ApiError("invalid_request", "state must be one of " + ", ".join(STATES))
    after = _after_seq(cursor)
    try:
        wait = int(request.query.get("wait", "0"))
    except ValueError:
        raise ApiError("invalid_request", "wait must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise ApiError("invalid_request", f"wait must be between 0 and {MAX_WAIT_SECONDS}")
    text = query_text(request, "q", max_length=200)
    return InboxQuery(states or None, after, limit, wait, text)


@routes.add(
    "GET",
    "/v1/inbox",
    summary="Deliveries to my department; `wait` long-polls.",
    access="authenticated",
    tag="exchange",
    parameters=(
        query_param(
            "state",
            "pending, fetched, received or rejected; repeat it for several.",
            schema={
                "type": "array",
                "items": {"type": "string", "enum": list(STATES)},
            },
        ),
        query_param("q", "Text found in the title or 文号 (literally, no wildcards)."),
        query_param(
            "wait",
            "Seconds to wait for something new (0-60).",
            schema={"type": "integer", "minimum": 0, "maximum": 60},
        ),
        *PAGE_PARAMS,
    ),
    responses={"200": views.InboxPage},
)
@exchange_refusals
async def inbox(request: web.Request) -> web.Response:
    page = await request.app[EXCHANGE].inbox(principal_of(request), _inbox_query(request))
    return json_response(views.inbox_page(page))


@routes.add(
    "GET",
    "/v1/inbox/events",
    summary="New deliveries as a text/event-stream.",
    access="authenticated",
    tag="exchange",
    parameters=(query_param("cursor", "Start after this cursor (default: only new ones)."),),
    responses={"200": {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
@exchange_refusals
async def inbox_events(request: web.Request) -> web.StreamResponse:
    # Without a cursor the stream starts at what is there now: only new deliveries follow.
    after = _after_seq(page_params(request)[1]) if request.query.get("cursor") else None
    events = await request.app[EXCHANGE].inbox_stream(principal_of(request), after)
    response = web.StreamResponse(headers=EVENT_STREAM_HEADERS)
    await response.prepare(request)
    async with contextlib.aclosing(events):
        async for event in events:
            await response.write(views.server_sent(event))
    await response.write_eof()
    return response
