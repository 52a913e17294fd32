"""The supervision endpoints' JSON: alerts, alert pages, statistics, and their schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.http.bodies import encode_cursor
from gateway.paging import Page
from gateway.supervision.oversight import StatsReport
from gateway.supervision.rules import ALERT_RULES
from storage import supervision
from storage.supervision import Alert

MAX_NOTE_CHARS = 500

ALERT = {
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
ALERT_PAGE = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {
        "items": {"type": "array", "items": ALERT},
        "next_cursor": {"type": ["string", "null"]},
    },
}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
STATS = {
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
NOTE_BODY = {
    "type": "object",
    "properties": {"note": {"type": "string", "maxLength": MAX_NOTE_CHARS}},
}
REQUIRED_NOTE_BODY = {**NOTE_BODY, "required": ["note"]}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def alerts_json(page: Page[Alert]) -> dict[str, Any]:
    last = page.last
    return {
        "items": [alert.as_json() for alert in page.items],
        "next_cursor": (
            None
            if last is None
            else encode_cursor({"at": last.opened_at.isoformat(), "id": str(last.id)})
        ),
    }


def stats_json(report: StatsReport) -> dict[str, Any]:
    return {
        "from": _iso(report.since),
        "to": _iso(report.until),
        "at": _iso(report.at),
        "departments": [stats.as_json() for stats in report.departments],
    }
