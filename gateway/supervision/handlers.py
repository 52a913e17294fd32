"""E-supervision endpoints: alerts (list, acknowledge, close, notes) and per-department stats.

Inspectors see every alert and any department's numbers; everyone else sees the alerts and
numbers of their own department. Platform-wide alerts (no department, e.g. a burst from one
source address) are for inspectors only. Only inspectors acknowledge or close an alert: the
department it concerns is the one supervised, so it may explain itself in a note but not
take the alert off the inspectors' list.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway.http.bodies import (
    encode_cursor,
    json_response,
    page_params,
    query_text,
    read_json_object,
)
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import (
    Forbidden,
    NotFound,
    audit_of,
    deny_access,
    hidden,
    now_of,
    principal_of,
    require_department,
)
from gateway.runtime import RUNTIME
from gateway.supervision.rules import ALERT_RULES
from storage import supervision
from storage.audit_outbox import AuditEvent

routes = RouteTable()

INSPECTOR = "inspector"
MAX_NOTE_CHARS = 500
DEFAULT_STATS_PERIOD = timedelta(days=30)
MAX_STATS_PERIOD = timedelta(days=366 * 5)

_ALERT = {
    "type": "object",
    "required": ["id", "rule", "subject", "department", "state", "details", "opened_at"],
    "properties": {
        "id": {"type": "string"},
        "rule": {"type": "string", "enum": list(ALERT_RULES)},
        "subject": {"type": "string"},
        "department": {"type": ["string", "null"]},
        "state": {"type": "string", "enum": list(supervision.ALERT_STATES)},
        "details": {"type": "object"},
        "opened_at": {"type": "string", "format": "date-time"},
        "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
        "acknowledged_by": {"type": ["string", "null"]},
        "closed_at": {"type": ["string", "null"], "format": "date-time"},
        "close_reason": {"type": ["string", "null"]},
        "notes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "by": {"type": "string"},
                    "department": {"type": "string"},
                    "note": {"type": "string"},
                },
            },
        },
    },
}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STATS = {
    "type": "object",
    "required": ["from", "to", "at", "departments"],
    "properties": {
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "at": {"type": "string", "format": "date-time"},
        "departments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "department": {"type": "string"},
                    "sent": {"type": "integer", "description": "documents dispatched"},
                    "received": {"type": "integer", "description": "deliveries that arrived"},
                    "signed_for": {"type": "integer"},
                    "rejected": {"type": "integer"},
                    "median_seconds_to_sign_for": _NUMBER_OR_NULL,
                    "p90_seconds_to_sign_for": _NUMBER_OR_NULL,
                    "on_time": {"type": "integer"},
                    "judged": {"type": "integer", "description": "decided or overdue"},
                    "on_time_rate": _NUMBER_OR_NULL,
                    "overdue_now": {"type": "integer"},
                },
            },
        },
    },
}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _time_param(request: web.Request, name: str) -> datetime | None:
    raw = query_text(request, name, max_length=40)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError("invalid_request", f"{name} must be an RFC 3339 time") from None
    if value.tzinfo is None:
        raise ApiError("invalid_request", f"{name} must carry a time zone")
    return value.astimezone(UTC)


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = query_text(request, name, max_length=64)
    if value is not None and value not in allowed:
        raise ApiError("invalid_request", f"{name} must be one of " + ", ".join(allowed))
    return value


def _after(cursor: dict[str, Any] | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        return datetime.fromisoformat(cursor["at"]), uuid.UUID(cursor["id"])
    except (KeyError, TypeError, ValueError):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued") from None


@routes.add(
    "GET",
    "/v1/supervision/alerts",
    summary="Supervision alerts, newest first; inspectors see all, others their department's.",
    access="authenticated",
    tag="supervision",
    parameters=(
        query_param("state", "open, acknowledged or closed."),
        query_param("rule", "Only alerts of this rule."),
        query_param("department", "Only alerts concerning this department."),
        *PAGE_PARAMS,
    ),
    responses={
        "200": {
            "content": json_content(
                {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": _ALERT},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                }
            )
        }
    },
)
async def list_supervision_alerts(request: web.Request) -> web.Response:
    principal = principal_of(request)
    limit, cursor = page_params(request)
    department = query_text(request, "department", max_length=63)
    if not principal.has_any({INSPECTOR}):
        if department is not None:
            await require_department(request, department, cross_department_roles=(INSPECTOR,))
        department = principal.department
    query = supervision.AlertFilter(
        state=_choice(request, "state", supervision.ALERT_STATES),
        rule=_choice(request, "rule", ALERT_RULES),
        department=department,
    )
    async with request.app[RUNTIME].pool.acquire() as connection:
        page = await supervision.list_alerts(
            connection, query, after=_after(cursor), limit=limit + 1
        )
    items = page[:limit]
    last = items[-1] if len(page) > limit else None
    return json_response(
        {
            "items": [alert.as_json() for alert in items],
            "next_cursor": (
                None
                if last is None
                else encode_cursor({"at": last.opened_at.isoformat(), "id": str(last.id)})
            ),
        }
    )


def _about_own_act(alert: supervision.Alert, official: str) -> bool:
    """A key added with someone else's code is acknowledged by someone other than whoever
    handed out or cosigned that code (else the taker of a key silences its own alarm)."""
    if alert.rule != supervision.KEY_ADDED_BY_OTHER:
        return False
    details = alert.details or {}
    return official in (details.get("code_issued_by"), details.get("code_cosigned_by"))


_NOTE_BODY = {
    "type": "object",
    "properties": {"note": {"type": "string", "maxLength": MAX_NOTE_CHARS}},
}


async def _note_of(request: web.Request, *, required: bool) -> str | None:
    """The body's ``note``: at most MAX_NOTE_CHARS, under the free-text rule (gateway/text)."""
    note = None
    if request.can_read_body:
        note = (await read_json_object(request)).get("note")
    if note is None and not required:
        return None
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE_CHARS:
        raise ApiError(
            "invalid_request", f"note must be a text of 1 to {MAX_NOTE_CHARS} characters"
        )
    if (unsafe := unsafe_character(note, multiline=True)) is not None:
        raise ApiError("invalid_request", f"note contains {unsafe}")
    return note


async def _alert_of(request: web.Request) -> supervision.Alert:
    """The path's alert, if the caller may see it: inspectors all, others their department's
    (another department's, or a platform-wide one, is a hidden 404)."""
    principal = principal_of(request)
    try:
        alert_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound() from None
    async with request.app[RUNTIME].pool.acquire() as connection:
        try:
            alert = await supervision.get_alert(connection, alert_id)
        except supervision.AlertNotFound:
            raise NotFound() from None
    if not principal.has_any({INSPECTOR}):
        if alert.department is None:
            raise await hidden(request, "other_department", alert=str(alert.id))
        await require_department(request, alert.department, cross_department_roles=(INSPECTOR,))
    return alert


def _alert_event(
    request: web.Request, event_type: str, alert: supervision.Alert, now: datetime, **details: Any
) -> AuditEvent:
    principal = principal_of(request)
    return AuditEvent(
        event_type,
        now,
        actor_official=principal.official_id,
        actor_jkt=principal.kid,
        department=alert.department,
        details={"alert": str(alert.id), "rule": alert.rule, "subject": alert.subject, **details},
    )


@routes.add(
    "POST",
    "/v1/supervision/alerts/{id}/acknowledge",
    summary="Acknowledge an open alert (inspectors: the department concerned may only add notes).",
    access="authenticated",
    roles=frozenset({INSPECTOR}),
    tag="supervision",
    parameters=(path_param("id", "Alert id."),),
    request_body={"required": False, "content": json_content(_NOTE_BODY)},
    responses={"200": {"content": json_content(_ALERT)}},
)
async def acknowledge_supervision_alert(request: web.Request) -> web.Response:
    """Acknowledging again is harmless (same answer), so retries need no Idempotency-Key."""
    principal = principal_of(request)
    note = await _note_of(request, required=False)
    alert = await _alert_of(request)
    if _about_own_act(alert, principal.official_id):
        await deny_access(request, "role_missing")
        raise Forbidden("this alert is about a key added with your enrollment code")
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        alert, changed = await supervision.acknowledge_alert(
            connection, alert.id, official=principal.official_id, now=now
        )
        if changed:
            await audit_of(request).record(
                connection,
                _alert_event(request, "supervision.alert_acknowledged", alert, now, note=note),
            )
    return json_response(alert.as_json())


@routes.add(
    "POST",
    "/v1/supervision/alerts/{id}/close",
    summary="Close a live alert (inspectors only), with the note that says why.",
    access="authenticated",
    roles=frozenset({INSPECTOR}),
    tag="supervision",
    parameters=(path_param("id", "Alert id."),),
    request_body={"required": True, "content": json_content({**_NOTE_BODY, "required": ["note"]})},
    responses={"200": {"content": json_content(_ALERT)}},
)
async def close_supervision_alert(request: web.Request) -> web.Response:
    note = await _note_of(request, required=True)
    alert = await _alert_of(request)
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        closed = await supervision.close_alert(
            connection, alert.id, now=now, reason=supervision.INSPECTOR_CLOSED
        )
        if closed is None:
            raise supervision.AlertClosed("this alert is already closed")
        await audit_of(request).record(
            connection,
            _alert_event(
                request,
                "supervision.alert_closed",
                closed,
                now,
                reason=supervision.INSPECTOR_CLOSED,
                note=note,
            ),
        )
    return json_response(closed.as_json())


@routes.add(
    "POST",
    "/v1/supervision/alerts/{id}/notes",
    summary="Add a note to a live alert: the department concerned explains, inspectors comment.",
    access="authenticated",
    roles=frozenset({INSPECTOR, "dept_admin"}),
    tag="supervision",
    parameters=(path_param("id", "Alert id."),),
    request_body={"required": True, "content": json_content({**_NOTE_BODY, "required": ["note"]})},
    responses={"200": {"content": json_content(_ALERT)}},
)
async def add_supervision_alert_note(request: web.Request) -> web.Response:
    principal = principal_of(request)
    note = await _note_of(request, required=True)
    alert = await _alert_of(request)
    now = now_of(request)
    entry = {
        "at": _iso(now),
        "by": principal.official_id,
        "department": principal.department,
        "note": note,
    }
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        noted = await supervision.add_alert_note(connection, alert.id, entry)
        await audit_of(request).record(
            connection, _alert_event(request, "supervision.alert_noted", noted, now, note=note)
        )
    return json_response(noted.as_json())


@routes.add(
    "GET",
    "/v1/supervision/stats",
    summary="Per-department exchange statistics over a period (default: the last 30 days).",
    access="authenticated",
    tag="supervision",
    parameters=(
        query_param(
            "department",
            "The department (default: the caller's; inspectors: every active department).",
        ),
        query_param("from", "Period start, RFC 3339 (deliveries that arrived from then)."),
        query_param("to", "Period end, RFC 3339, excluded (default: now)."),
    ),
    responses={"200": {"content": json_content(_STATS)}},
)
async def get_supervision_stats(request: web.Request) -> web.Response:
    principal = principal_of(request)
    now = now_of(request)
    department = query_text(request, "department", max_length=63)
    if department is not None:
        await require_department(request, department, cross_department_roles=(INSPECTOR,))
    elif not principal.has_any({INSPECTOR}):
        department = principal.department
    until = _time_param(request, "to") or now
    since = _time_param(request, "from") or until - DEFAULT_STATS_PERIOD
    if since >= until:
        raise ApiError("invalid_request", "from must be before to")
    if until - since > MAX_STATS_PERIOD:
        raise ApiError("invalid_request", "the period may cover at most five years")
    async with request.app[RUNTIME].pool.acquire() as connection:
        found = await supervision.department_stats(
            connection, since=since, until=until, now=now, department=department
        )
    return json_response(
        {
            "from": _iso(since),
            "to": _iso(until),
            "at": _iso(now),
            "departments": [stats.as_json() for stats in found],
        }
    )
