"""The inbox: deliveries to the caller's department, as pages, long-polls and a stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from gateway.exchange.inbox import INBOX
from gateway.http.bodies import encode_cursor, json_response, page_params
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import PAGE_PARAMS, RouteTable, query_param
from gateway.identity.auth import Principal, now_of, principal_of
from gateway.runtime import RUNTIME
from storage import documents, identity

routes = RouteTable()

STATES = ("pending", "fetched", "received", "rejected")
MAX_WAIT_SECONDS = 60
HEARTBEAT_SECONDS = 15
INBOX_ITEM = {
    "type": "object",
    "required": ["id", "document", "state", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "document": {"type": "object"},
        "state": {"type": "string", "enum": list(STATES)},
        "created_at": {"type": "string"},
        "copy": {"type": "boolean"},
    },
}


class SessionEnded(Exception):
    """The caller's key was revoked or the official disabled or moved while waiting."""

    code = "invalid_token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def ensure_still_valid(request: web.Request, principal: Principal) -> None:
    """Each wake re-checks the key and the official, so revocation ends a wait at once."""
    async with request.app[RUNTIME].pool.acquire() as connection:
        owner = await identity.key_owner(connection, principal.kid)
    if owner is None or owner.key.revoked_at is not None:
        raise SessionEnded("the key of this session has been revoked")
    if not owner.official.active or owner.official.department != principal.department:
        raise SessionEnded("the official was disabled or moved: log in again")


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "document": {
            "id": str(row["document_id"]),
            "title": row["title"],
            "doc_number": row["doc_number"],
            "urgency": row["urgency"],
            "sender": row["sender"],
        },
        "state": row["state"],
        "copy": row["copy"],
        "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
    }


def _state_filter(request: web.Request) -> str | None:
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise ApiError("invalid_request", "state must be one of " + ", ".join(STATES))
    return state


def _after_seq(cursor: dict[str, Any] | None) -> int:
    if cursor is None:
        return 0
    seq = cursor.get("seq")
    if not isinstance(seq, int) or seq < 0:
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return seq


async def _page(
    request: web.Request, department: str, state: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    async with request.app[RUNTIME].pool.acquire() as connection:
        return await documents.inbox_page(
            connection, department, state=state, after_seq=after, limit=limit
        )


@routes.add(
    "GET",
    "/v1/inbox",
    summary="Deliveries to my department; `wait` long-polls.",
    access="authenticated",
    tag="exchange",
    parameters=(
        query_param("state", "pending, fetched, received or rejected"),
        query_param(
            "wait",
            "Seconds to wait for something new (0-60).",
            schema={"type": "integer", "minimum": 0, "maximum": 60},
        ),
        *PAGE_PARAMS,
    ),
    responses={
        "200": {
            "content": json_content(
                {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": INBOX_ITEM},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                }
            )
        }
    },
)
async def inbox(request: web.Request) -> web.Response:
    principal = principal_of(request)
    limit, cursor = page_params(request)
    state = _state_filter(request)
    after = _after_seq(cursor)
    try:
        wait = int(request.query.get("wait", "0"))
    except ValueError:
        raise ApiError("invalid_request", "wait must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise ApiError("invalid_request", f"wait must be between 0 and {MAX_WAIT_SECONDS}")
    rows = await _page(request, principal.department, state, after, limit + 1)
    if not rows and wait:
        async with request.app[INBOX].waiting(principal.department) as event:
            deadline = asyncio.get_running_loop().time() + wait
            while True:
                # Cleared before looking: a send committing during the query sets it
                # again, so no wake-up can slip between the look and the wait.
                event.clear()
                async with request.app[RUNTIME].pool.acquire() as connection:
                    valid, rows = await documents.inbox_page_if_valid(
                        connection,
                        principal.department,
                        principal.kid,
                        state=state,
                        after_seq=after,
                        limit=limit + 1,
                    )
                if not valid:
                    raise SessionEnded(
                        "the key of this session was revoked or the official "
                        "disabled or moved: log in again"
                    )
                remaining = deadline - asyncio.get_running_loop().time()
                if rows or remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await event.wait()
                except TimeoutError:
                    pass
    items = rows[:limit]
    last_seq = items[-1]["seq"] if items else after
    return json_response(
        {
            "items": [_item(row) for row in items],
            # Always a cursor to continue from: a poller passes it back to wait for more.
            "next_cursor": encode_cursor({"seq": last_seq}),
        }
    )


def _seconds_left(request: web.Request, principal: Principal) -> float:
    """Seconds until the request's access token expires (a day when it carries none)."""
    if principal.token_expires_at is None:
        return 86400.0
    return (principal.token_expires_at - now_of(request)).total_seconds()


@routes.add(
    "GET",
    "/v1/inbox/events",
    summary="New deliveries as a text/event-stream.",
    access="authenticated",
    tag="exchange",
    parameters=(query_param("cursor", "Start after this cursor (default: only new ones)."),),
    responses={"200": {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def inbox_events(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    cursor = request.query.get("cursor")
    if cursor:
        _, decoded = page_params(request)
        after = _after_seq(decoded)
    else:
        async with request.app[RUNTIME].pool.acquire() as connection:
            after = int(
                await connection.fetchval(
                    "SELECT coalesce(max(seq), 0) FROM deliveries WHERE recipient = $1",
                    principal.department,
                )
            )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    hub = request.app[INBOX]
    async with hub.waiting(principal.department) as event:
        while True:
            event.clear()
            rows = await _page(request, principal.department, None, after, 100)
            for row in rows:
                after = row["seq"]
                data = json.dumps(_item(row), ensure_ascii=False)
                cursor_text = encode_cursor({"seq": after})
                await response.write(
                    f"id: {cursor_text}\nevent: delivery\ndata: {data}\n\n".encode()
                )
            if rows:
                continue
            expires_in = _seconds_left(request, principal)
            try:
                async with asyncio.timeout(min(HEARTBEAT_SECONDS, max(expires_in, 0.0))):
                    await event.wait()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
            try:
                if _seconds_left(request, principal) <= 0:
                    # The stream was authorized by a token that is no longer valid: a
                    # stolen or outdated token must not keep a stream open for ever.
                    raise SessionEnded("the access token expired: refresh it and reconnect")
                await ensure_still_valid(request, principal)
            except SessionEnded as ended:
                await response.write(
                    f"event: end\ndata: {json.dumps({'reason': ended.detail})}\n\n".encode()
                )
                break
    await response.write_eof()
    return response
