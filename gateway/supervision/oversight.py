"""What officials do with supervision: read alerts and statistics, acknowledge, close, note.

Inspectors see every alert and any department's numbers; everyone else the alerts and
numbers of their own department. Platform-wide alerts (no department, e.g. a burst from one
source address) are for inspectors only. Only inspectors acknowledge or close an alert: the
department it concerns is the one supervised, so it may explain itself in a note but not
take the alert off the inspectors' list. Each change is one transaction with its audit
event; each refusal (a hidden 404, a 403) is recorded as ``access.denied``. (The evaluator
that opens and closes alerts by itself is gateway/supervision/service.py.)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.identity.access import AccessLog
from gateway.identity.errors import Forbidden
from gateway.identity.principal import Caller, Principal
from gateway.paging import Page
from keys.clock import SYSTEM_CLOCK, Clock
from storage import audit_events as events
from storage import supervision
from storage.audit_outbox import AuditSink, OutboxSink
from storage.db import DbConnection
from storage.supervision import Alert, AlertFilter, DepartmentStats, SupervisionError

INSPECTOR = "inspector"
DEFAULT_STATS_PERIOD = timedelta(days=30)
MAX_STATS_PERIOD = timedelta(days=366 * 5)


class InvalidPeriod(SupervisionError):
    code = "invalid_request"


@dataclass(frozen=True)
class StatsReport:
    since: datetime
    until: datetime
    at: datetime
    departments: list[DepartmentStats]


def is_inspector(caller: Principal) -> bool:
    return caller.has_any({INSPECTOR})


def _about_own_act(alert: Alert, official: str) -> bool:
    """A key added with someone else's code is acknowledged by someone other than whoever
    handed out or cosigned that code (else the taker of a key silences its own alarm)."""
    if alert.rule != supervision.KEY_ADDED_BY_OTHER:
        return False
    details = alert.details or {}
    return official in (details.get("code_issued_by"), details.get("code_cosigned_by"))


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class OversightService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        access: AccessLog,
        clock: Clock = SYSTEM_CLOCK,
        audit: AuditSink | None = None,
    ) -> None:
        self._pool = pool
        self._access = access
        self._clock = clock
        self._audit = audit or OutboxSink()

    async def _visible_department(self, caller: Caller, asked: str | None) -> str | None:
        """The department a read is narrowed to: an inspector's choice (None: all), else the
        caller's own; asking for another one is hidden."""
        official = caller.official
        if is_inspector(official):
            return asked
        if asked is not None and asked != official.department:
            raise await self._access.hide(caller, "other_department")
        return official.department

    async def alerts(
        self,
        caller: Caller,
        query: AlertFilter,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Page[Alert]:
        """Newest first, after the (opened_at, id) of the previous page's last alert."""
        department = await self._visible_department(caller, query.department)
        narrowed = AlertFilter(state=query.state, rule=query.rule, department=department)
        async with self._pool.acquire() as connection:
            found = await supervision.list_alerts(
                connection, narrowed, after=after, limit=limit + 1
            )
        return Page.of(found, limit)

    async def _visible_alert(
        self, connection: DbConnection, caller: Caller, alert_id: uuid.UUID
    ) -> Alert:
        try:
            alert = await supervision.get_alert(connection, alert_id)
        except supervision.AlertNotFound:
            # Worded as a hidden one is: whether an alert exists never leaks.
            raise supervision.AlertNotFound("no such resource") from None
        if not is_inspector(caller.official):
            if alert.department is None:
                raise await self._access.hide(caller, "other_department", alert=str(alert.id))
            await self._visible_department(caller, alert.department)
        return alert

    async def acknowledge(self, caller: Caller, alert_id: uuid.UUID, note: str | None) -> Alert:
        """open -> acknowledged; acknowledging again answers the same and records nothing."""
        official = caller.official
        async with self._pool.acquire() as connection:
            alert = await self._visible_alert(connection, caller, alert_id)
            if _about_own_act(alert, official.official_id):
                await self._access.deny(caller, "role_missing")
                raise Forbidden("this alert is about a key added with your enrollment code")
            now = self._clock()
            async with connection.transaction():
                alert, changed = await supervision.acknowledge_alert(
                    connection, alert.id, official=official.official_id, now=now
                )
                if changed:
                    event = events.alert_acknowledged(official, now, alert, note=note)
                    await self._audit.record(connection, event)
        return alert

    async def close(self, caller: Caller, alert_id: uuid.UUID, note: str) -> Alert:
        """An inspector takes a live alert off the list, saying why."""
        async with self._pool.acquire() as connection:
            alert = await self._visible_alert(connection, caller, alert_id)
            now = self._clock()
            reason = supervision.INSPECTOR_CLOSED
            async with connection.transaction():
                closed = await supervision.close_alert(connection, alert.id, now=now, reason=reason)
                if closed is None:
                    raise supervision.AlertClosed("this alert is already closed")
                event = events.alert_closed_by(
                    caller.official, now, closed, reason=reason, note=note
                )
                await self._audit.record(connection, event)
        return closed

    async def add_note(self, caller: Caller, alert_id: uuid.UUID, note: str) -> Alert:
        """The department concerned explains, inspectors comment (live alerts only)."""
        official = caller.official
        async with self._pool.acquire() as connection:
            alert = await self._visible_alert(connection, caller, alert_id)
            now = self._clock()
            entry = {
                "at": _iso(now),
                "by": official.official_id,
                "department": official.department,
                "note": note,
            }
            async with connection.transaction():
                noted = await supervision.add_alert_note(connection, alert.id, entry)
                event = events.alert_noted(official, now, noted, note=note)
                await self._audit.record(connection, event)
        return noted

    async def stats(
        self,
        caller: Caller,
        department: str | None,
        *,
        since: datetime | None,
        until: datetime | None,
    ) -> StatsReport:
        """Per-department numbers over [since, until): by default the 30 days up to now; an
        inspector without a department gets every department with activity."""
        if department is not None or not is_inspector(caller.official):
            asked = department or caller.official.department
            department = await self._visible_department(caller, asked)
        now = self._clock()
        until = until or now
        since = since or until - DEFAULT_STATS_PERIOD
        if since >= until:
            raise InvalidPeriod("from must be before to")
        if until - since > MAX_STATS_PERIOD:
            raise InvalidPeriod("the period may cover at most five years")
        async with self._pool.acquire() as connection:
            found = await supervision.department_stats(
                connection, since=since, until=until, now=now, department=department
            )
        return StatsReport(since, until, now, found)
