"""E-supervision endpoints: alerts (list, acknowledge, close, notes) and per-department stats.

Who sees and may do what is decided (and refusals recorded) by
:class:`~gateway.supervision.oversight.OversightService`; these handlers parse and render.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.http.bodies import json_response, page_params, parse_body, query_text, query_time
from gateway.http.errors import ApiError
from gateway.http.models import validate
from gateway.http.openapi import json_content, schema_ref
from gateway.http.routing import PAGE_PARAMS, RouteTable, path_param, query_param
from gateway.identity.auth import caller_of
from gateway.identity.errors import NotFound
from gateway.supervision import views
from gateway.supervision.oversight import INSPECTOR, OversightService
from gateway.supervision.rules import ALERT_RULES
from gateway.supervision.views import NoteBody, RequiredNoteBody
from storage import supervision
from storage.supervision import AlertFilter

routes = RouteTable()

OVERSIGHT: web.AppKey[OversightService] = web.AppKey("oversight", OversightService)


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


def _alert_filter(request: web.Request) -> AlertFilter:
    return AlertFilter(
        state=_choice(request, "state", supervision.ALERT_STATES),
        rule=_choice(request, "rule", ALERT_RULES),
        department=query_text(request, "department", max_length=63),
    )


def _alert_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound() from None


async def _note_of(
    request: web.Request, model: type[NoteBody] | type[RequiredNoteBody]
) -> str | None:
    """The body's ``note``; no body at all reads as ``{}`` (a note is then missing)."""
    body = await parse_body(request, model) if request.can_read_body else validate(model, {})
    return body.note


async def _required_note(request: web.Request) -> str:
    note = await _note_of(request, RequiredNoteBody)
    assert note is not None
    return note


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
    responses={"200": views.AlertPage},
)
async def list_supervision_alerts(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    query, after = _alert_filter(request), _after(cursor)
    page = await request.app[OVERSIGHT].alerts(caller_of(request), query, after=after, limit=limit)
    return json_response(views.alerts_json(page))


@routes.add(
    "POST",
    "/v1/supervision/alerts/{id}/acknowledge",
    summary="Acknowledge an open alert (inspectors: the department concerned may only add notes).",
    access="authenticated",
    roles=frozenset({INSPECTOR}),
    tag="supervision",
    parameters=(path_param("id", "Alert id."),),
    # Optional, so a Request Body Object of its own: request_model declares a required one.
    request_body={"required": False, "content": json_content(schema_ref(NoteBody))},
    responses={"200": views.AlertJson},
)
async def acknowledge_supervision_alert(request: web.Request) -> web.Response:
    """Acknowledging again is harmless (same answer), so retries need no Idempotency-Key."""
    note = await _note_of(request, NoteBody)
    alert = await request.app[OVERSIGHT].acknowledge(caller_of(request), _alert_id(request), note)
    return json_response(views.alert_json(alert))


@routes.add(
    "POST",
    "/v1/supervision/alerts/{id}/close",
    summary="Close a live alert (inspectors only), with the note that says why.",
    access="authenticated",
    roles=frozenset({INSPECTOR}),
    tag="supervision",
    parameters=(path_param("id", "Alert id."),),
    request_model=RequiredNoteBody,
    responses={"200": views.AlertJson},
)
async def close_supervision_alert(request: web.Request) -> web.Response:
    note = await _required_note(request)
    alert = await request.app[OVERSIGHT].close(caller_of(request), _alert_id(request), note)
    return json_response(views.alert_json(alert))


@routes.add(
    "POST",
    "/v1/supervision/alerts/{id}/notes",
    summary="Add a note to a live alert: the department concerned explains, inspectors comment.",
    access="authenticated",
    roles=frozenset({INSPECTOR, "dept_admin"}),
    tag="supervision",
    parameters=(path_param("id", "Alert id."),),
    request_model=RequiredNoteBody,
    responses={"200": views.AlertJson},
)
async def add_supervision_alert_note(request: web.Request) -> web.Response:
    note = await _required_note(request)
    alert = await request.app[OVERSIGHT].add_note(caller_of(request), _alert_id(request), note)
    return json_response(views.alert_json(alert))


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
    responses={"200": views.Stats},
)
async def get_supervision_stats(request: web.Request) -> web.Response:
    department = query_text(request, "department", max_length=63)
    since, until = query_time(request, "from"), query_time(request, "to")
    report = await request.app[OVERSIGHT].stats(
        caller_of(request), department, since=since, until=until
    )
    return json_response(views.stats_json(report))
