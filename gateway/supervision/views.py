"""The supervision endpoints' JSON, both ways: the note bodies in (models), alerts, their
pages and the statistics out (TypedDicts, shown in /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import AfterValidator, Field
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import encode_cursor
from gateway.http.models import RequestBody
from gateway.http.text import unsafe_character
from gateway.paging import Page
from gateway.supervision.oversight import StatsReport
from gateway.supervision.rules import ALERT_RULES
from storage import supervision
from storage.supervision import Alert, DepartmentStats

MAX_NOTE_CHARS = 500


def _note(value: str) -> str:
    if (unsafe := unsafe_character(value, multiline=True)) is not None:
        raise ValueError(f"must not contain {unsafe}")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Note = Annotated[str, Field(max_length=MAX_NOTE_CHARS), AfterValidator(_note)]
"""A note of 1 to MAX_NOTE_CHARS characters under the free-text rule, lines allowed."""
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class NoteBody(RequestBody):
    """An optional note (acknowledging needs none)."""

    note: Note | None = None


class RequiredNoteBody(RequestBody):
    """The note that says why (closing) or what (a note of its own)."""

    note: Note


class AlertNote(TypedDict):
    at: Time
    by: str
    department: str
    note: str


class AlertJson(TypedDict):
    """A supervision alert and what was done about it."""

    id: str
    rule: Annotated[str, Field(json_schema_extra={"enum": list(ALERT_RULES)})]
    subject: str
    department: str | None
    state: Annotated[str, Field(json_schema_extra={"enum": list(supervision.ALERT_STATES)})]
    details: dict[str, Any]
    opened_at: Time
    acknowledged_at: Time | None
    acknowledged_by: str | None
    closed_at: Time | None
    close_reason: str | None
    notes: list[AlertNote]


class AlertPage(TypedDict):
    items: list[AlertJson]
    next_cursor: str | None


class DepartmentStatsJson(TypedDict):
    """One department over the period: what it sent, how it handled what it got."""

    department: str
    sent: Annotated[int, Field(description="documents dispatched")]
    received: Annotated[int, Field(description="deliveries that arrived")]
    signed_for: int
    rejected: int
    median_seconds_to_sign_for: float | None
    p90_seconds_to_sign_for: float | None
    on_time: int
    judged: Annotated[int, Field(description="decided or overdue")]
    on_time_rate: float | None
    overdue_now: int


Stats = TypedDict(
    "Stats",
    {"from": Time, "to": Time, "at": Time, "departments": list[DepartmentStatsJson]},
)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


def alert_json(alert: Alert) -> AlertJson:
    return {
        "id": str(alert.id),
        "rule": alert.rule,
        "subject": alert.subject,
        "department": alert.department,
        "state": alert.state,
        "details": alert.details,
        "opened_at": _iso(alert.opened_at),
        "acknowledged_at": _iso_or_none(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "closed_at": _iso_or_none(alert.closed_at),
        "close_reason": alert.close_reason,
        # Written by OversightService.add_note with exactly these keys.
        "notes": [cast(AlertNote, note) for note in alert.notes],
    }


def alerts_json(page: Page[Alert]) -> AlertPage:
    last = page.last
    return {
        "items": [alert_json(alert) for alert in page.items],
        "next_cursor": (
            None
            if last is None
            else encode_cursor({"at": last.opened_at.isoformat(), "id": str(last.id)})
        ),
    }


def department_stats_json(stats: DepartmentStats) -> DepartmentStatsJson:
    return {
        "department": stats.department,
        "sent": stats.sent,
        "received": stats.received,
        "signed_for": stats.signed_for,
        "rejected": stats.rejected,
        "median_seconds_to_sign_for": stats.median_seconds_to_sign_for,
        "p90_seconds_to_sign_for": stats.p90_seconds_to_sign_for,
        "on_time": stats.on_time,
        "judged": stats.judged,
        "on_time_rate": stats.on_time_rate,
        "overdue_now": stats.overdue_now,
    }


def stats_json(report: StatsReport) -> Stats:
    return {
        "from": _iso(report.since),
        "to": _iso(report.until),
        "at": _iso(report.at),
        "departments": [department_stats_json(stats) for stats in report.departments],
    }
