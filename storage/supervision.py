"""E-supervision data: the facts the rules read, the alerts they raise, per-department stats.

Facts are plain frozen dataclasses so the rules (gateway/supervision/rules.py) stay pure
functions of data and a time. Every query takes the time it reasons about as a parameter:
nothing here reads the wall clock, so tests and the evaluator inject theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keys.codes import Code, CodedError
from storage.db import DbConnection
from storage.vocabulary import AlertState

ALERT_STATES: tuple[AlertState, ...] = tuple(AlertState)
# Failed-authentication kinds (auth_failures.kind) that are failed logins; "token" failures
# are refused requests with a bad access token, counted with the denied accesses.
LOGIN_FAILURE_KINDS = ("login", "enroll", "refresh")
DENIED_EVENT = "access.denied"
SEAL_USE_REFUSED_EVENT = "seal.use_refused"
# Raised by the act itself, not by the evaluator (which never closes it): a key enrolled with
# someone else's enrollment code on an official that had keys before (storage/identity.py).
KEY_ADDED_BY_OTHER = "key_added_by_other"


class SupervisionError(CodedError):
    code: str = Code.SUPERVISION_ERROR


class AlertNotFound(SupervisionError):
    code = Code.NOT_FOUND


class AlertClosed(SupervisionError):
    code = Code.ALERT_CLOSED


class AlertNotesFull(SupervisionError):
    code = Code.ALERT_NOTES_FULL


MAX_ALERT_NOTES = 50
INSPECTOR_CLOSED = "closed_by_inspector"


# --- facts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenDelivery:
    """A delivery not yet signed for or returned, with when it was due."""

    id: uuid.UUID
    document: uuid.UUID
    recipient: str
    sender: str
    doc_number: str
    urgency: str
    due_at: datetime


@dataclass(frozen=True)
class Attempts:
    """Failed or refused attempts: one audit event (count 1) or one counter row of a minute."""

    at: datetime
    source: str | None
    official: str | None
    department: str | None
    count: int = 1


@dataclass(frozen=True)
class RefusedSealUse:
    at: datetime
    seal_id: str
    department: str | None


@dataclass(frozen=True)
class PendingApprovalStep:
    """An approval step waiting for decisions since ``started_at`` (issue 9's workflow)."""

    document: str
    step: int
    name: str
    department: str
    started_at: datetime


@dataclass(frozen=True)
class DeadLetters:
    """Undelivered webhook messages of one webhook (issue 9's webhook queue)."""

    webhook: str
    department: str
    count: int
    oldest_at: datetime


async def overdue_deliveries(connection: DbConnection, now: datetime) -> list[OpenDelivery]:
    """Open deliveries whose due time has passed (the partial index deliveries_open_due)."""
    rows = await connection.fetch(
        "SELECT d.id, d.document, d.recipient, doc.sender, doc.doc_number, doc.urgency, d.due_at"
        " FROM deliveries d JOIN documents doc ON doc.id = d.document"
        " WHERE d.state IN ('pending', 'fetched') AND d.due_at < $1",
        now,
    )
    return [OpenDelivery(**dict(row.items())) for row in rows]


async def failed_logins(
    connection: DbConnection, since: datetime, until: datetime
) -> list[Attempts]:
    """Per-minute failed-login counters (minute start in [since, until])."""
    rows = await connection.fetch(
        "SELECT a.minute, a.source, nullif(a.subject, '') AS official, o.department, a.count"
        " FROM auth_failures a LEFT JOIN officials o ON o.id = a.subject"
        " WHERE a.minute >= $1 AND a.minute <= $2 AND a.kind = ANY($3::text[])",
        since,
        until,
        list(LOGIN_FAILURE_KINDS),
    )
    return [
        Attempts(row["minute"], row["source"], row["official"], row["department"], row["count"])
        for row in rows
    ]


# The same event may be in the outbox (not yet sequenced) or in the log (details stored as
# canonical JSON bytes, NULL once erased); a batch moves rows in one transaction, so a
# snapshot sees each event exactly once.
_RECENT_EVENTS = """
SELECT at, actor_official, department, details FROM audit_outbox
 WHERE type = $1 AND at >= $2 AND at <= $3
UNION ALL
SELECT at, actor_official, department,
       CASE WHEN details IS NULL THEN NULL ELSE convert_from(details, 'UTF8')::jsonb END
  FROM audit_log
 WHERE type = $1 AND at >= $2 AND at <= $3
"""


async def _recent_events(
    connection: DbConnection, event_type: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    rows = await connection.fetch(_RECENT_EVENTS, event_type, since, until)
    return [dict(row.items()) for row in rows]


async def denied_accesses(
    connection: DbConnection, since: datetime, until: datetime
) -> list[Attempts]:
    """Refused requests: ``access.denied`` events of signed-in officials, plus the per-minute
    counters of requests with a bad access token (whose audit event is only their first)."""
    found = []
    for event in await _recent_events(connection, DENIED_EVENT, since, until):
        details = event["details"] or {}
        if details.get("aggregated"):
            continue  # counted exactly by the counter rows below
        source = details.get("source")
        found.append(
            Attempts(
                event["at"],
                source if isinstance(source, str) else None,
                event["actor_official"],
                event["department"],
            )
        )
    rows = await connection.fetch(
        "SELECT minute, source, count FROM auth_failures"
        " WHERE minute >= $1 AND minute <= $2 AND kind = 'token'",
        since,
        until,
    )
    found.extend(Attempts(row["minute"], row["source"], None, None, row["count"]) for row in rows)
    rows = await connection.fetch(
        "SELECT minute, source, official, department, count FROM denied_access_counts"
        " WHERE minute >= $1 AND minute <= $2",
        since,
        until,
    )
    found.extend(
        Attempts(row["minute"], row["source"], row["official"], row["department"], row["count"])
        for row in rows
    )
    return found


async def count_denied_access(
    connection: DbConnection,
    *,
    minute: datetime,
    official: str,
    department: str,
    source: str,
    reason: str,
) -> bool:
    """Count one hidden refusal (404) of a signed-in official; True when it is the first of
    its (minute, official, source) row, i.e. when the caller writes the row's audit event."""
    inserted = await connection.fetchval(
        "INSERT INTO denied_access_counts"
        " (minute, official, department, source, count, last_reason)"
        " VALUES ($1, $2, $3, $4, 1, $5)"
        " ON CONFLICT (minute, official, source) DO UPDATE"
        " SET count = denied_access_counts.count + 1, last_reason = EXCLUDED.last_reason"
        " RETURNING (xmax = 0)",
        minute,
        official[:64],
        department[:63],
        source[:64],
        reason[:100],
    )
    return bool(inserted)


async def refused_seal_uses(
    connection: DbConnection, since: datetime, until: datetime
) -> list[RefusedSealUse]:
    found = []
    for event in await _recent_events(connection, SEAL_USE_REFUSED_EVENT, since, until):
        seal_id = (event["details"] or {}).get("seal_id")
        if isinstance(seal_id, str):
            found.append(RefusedSealUse(event["at"], seal_id, event["department"]))
    return found


# The open step of each document in approval: the first step of its newest draft version
# that lacks approvals (one for "any", every assignee for "all"); it started when the
# version was submitted or when the last approval of an earlier step completed that step.
_PENDING_STEPS = """
WITH v AS (
    SELECT DISTINCT ON (dv.document) dv.document, dv.version, dv.submitted_at, d.sender
      FROM documents d JOIN document_versions dv ON dv.document = d.id
     WHERE d.status = 'in_approval'
     ORDER BY dv.document, dv.version DESC
), s AS (
    SELECT v.document, v.version, v.submitted_at, v.sender, ws.step, ws.name,
           (SELECT count(DISTINCT a.official) FROM approvals a
             WHERE a.document = v.document AND a.version = v.version AND a.step = ws.step
               AND a.decision = 'approve' AND a.official = ANY (ws.assignees)) AS approved,
           CASE ws.mode WHEN 'any' THEN 1 ELSE cardinality(ws.assignees) END AS needed
      FROM v JOIN workflow_steps ws ON ws.document = v.document
), open_step AS (
    SELECT DISTINCT ON (document) * FROM s WHERE approved < needed ORDER BY document, step
)
SELECT o.document::text AS document, o.step, o.name, o.sender AS department,
       greatest(o.submitted_at,
                (SELECT max(a.decided_at) FROM approvals a
                  WHERE a.document = o.document AND a.version = o.version
                    AND a.step < o.step)) AS started_at
  FROM open_step o
"""


async def pending_approval_steps(
    connection: DbConnection, now: datetime
) -> list[PendingApprovalStep]:
    """Every open approval step (the rule decides which are overdue at *now*)."""
    rows = await connection.fetch(_PENDING_STEPS)
    return [PendingApprovalStep(**dict(row.items())) for row in rows]


async def dead_letters(connection: DbConnection, now: datetime) -> list[DeadLetters]:
    """Dead-lettered webhook jobs per live webhook (index webhook_jobs_dead)."""
    rows = await connection.fetch(
        "SELECT j.webhook::text AS webhook, w.department, count(*) AS count,"
        " coalesce(min(j.dead_at), min(j.created_at)) AS oldest_at"
        " FROM webhook_jobs j JOIN webhooks w ON w.id = j.webhook"
        " WHERE j.state = 'dead' AND w.deleted_at IS NULL"
        " GROUP BY j.webhook, w.department"
    )
    return [DeadLetters(**dict(row.items())) for row in rows]


# --- alerts -------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    id: uuid.UUID
    rule: str
    subject: str
    department: str | None
    state: str
    opened_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)


_ALERT_COLUMNS = (
    "id, rule, subject, department, state, opened_at, details, acknowledged_at,"
    " acknowledged_by, closed_at, close_reason, notes"
)


def _alert(row: Any) -> Alert:
    return Alert(**dict(row.items()))


async def live_alerts(connection: DbConnection, rules: Sequence[str]) -> list[Alert]:
    """Open and acknowledged alerts of *rules*, locked until the transaction ends."""
    rows = await connection.fetch(
        f"SELECT {_ALERT_COLUMNS} FROM supervision_alerts"  # noqa: S608 - our columns
        " WHERE state <> 'closed' AND rule = ANY($1::text[]) FOR UPDATE",
        list(rules),
    )
    return [_alert(row) for row in rows]


async def open_alert(
    connection: DbConnection,
    *,
    rule: str,
    subject: str,
    department: str | None,
    details: dict[str, Any],
    now: datetime,
) -> Alert | None:
    """A new open alert; None when a live one for (rule, subject) already exists."""
    row = await connection.fetchrow(
        "INSERT INTO supervision_alerts"  # noqa: S608 - our columns
        " (id, rule, subject, department, state, details, opened_at)"
        " VALUES ($1, $2, $3, $4, 'open', $5, $6)"
        " ON CONFLICT (rule, subject) WHERE state <> 'closed' DO NOTHING"
        f" RETURNING {_ALERT_COLUMNS}",
        uuid.uuid4(),
        rule,
        subject,
        department,
        details,
        now,
    )
    return None if row is None else _alert(row)


async def close_alert(
    connection: DbConnection, alert_id: uuid.UUID, *, now: datetime, reason: str
) -> Alert | None:
    row = await connection.fetchrow(
        "UPDATE supervision_alerts"  # noqa: S608 - our columns
        " SET state = 'closed', closed_at = $2, close_reason = $3"
        f" WHERE id = $1 AND state <> 'closed' RETURNING {_ALERT_COLUMNS}",
        alert_id,
        now,
        reason,
    )
    return None if row is None else _alert(row)


async def get_alert(connection: DbConnection, alert_id: uuid.UUID) -> Alert:
    row = await connection.fetchrow(
        f"SELECT {_ALERT_COLUMNS} FROM supervision_alerts WHERE id = $1",  # noqa: S608
        alert_id,
    )
    if row is None:
        raise AlertNotFound("no such alert")
    return _alert(row)


async def acknowledge_alert(
    connection: DbConnection, alert_id: uuid.UUID, *, official: str, now: datetime
) -> tuple[Alert, bool]:
    """open → acknowledged; (alert, True when this call changed it). Acknowledging an
    acknowledged alert changes nothing; a closed one cannot be acknowledged any more."""
    row = await connection.fetchrow(
        "UPDATE supervision_alerts"  # noqa: S608 - our columns
        " SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3"
        f" WHERE id = $1 AND state = 'open' RETURNING {_ALERT_COLUMNS}",
        alert_id,
        now,
        official,
    )
    if row is not None:
        return _alert(row), True
    current = await get_alert(connection, alert_id)
    if current.state == AlertState.CLOSED:
        raise AlertClosed("this alert is already closed")
    return current, False


async def add_alert_note(
    connection: DbConnection, alert_id: uuid.UUID, note: dict[str, Any]
) -> Alert:
    """Append *note* to a live alert (at most MAX_ALERT_NOTES; a closed alert takes none)."""
    row = await connection.fetchrow(
        "UPDATE supervision_alerts"  # noqa: S608 - our columns
        " SET notes = notes || jsonb_build_array($2::jsonb)"
        " WHERE id = $1 AND state <> 'closed' AND jsonb_array_length(notes) < $3"
        f" RETURNING {_ALERT_COLUMNS}",
        alert_id,
        note,
        MAX_ALERT_NOTES,
    )
    if row is not None:
        return _alert(row)
    current = await get_alert(connection, alert_id)
    if current.state == AlertState.CLOSED:
        raise AlertClosed("this alert is already closed")
    raise AlertNotesFull(f"an alert takes at most {MAX_ALERT_NOTES} notes")


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    rule: str | None = None
    department: str | None = None


async def list_alerts(
    connection: DbConnection,
    query: AlertFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Alert]:
    """Newest first; ``after`` is the (opened_at, id) of the previous page's last item."""
    clauses: list[str] = []
    params: list[Any] = []

    def where(sql: str, *values: Any) -> None:
        names = []
        for value in values:
            params.append(value)
            names.append(f"${len(params)}")
        clauses.append(sql.format(*names))

    if query.state is not None:
        where("state = {}", query.state)
    if query.rule is not None:
        where("rule = {}", query.rule)
    if query.department is not None:
        where("department = {}", query.department)
    if after is not None:
        where("(opened_at, id) < ({}, {})", *after)
    params.append(limit)
    sql = (
        f"SELECT {_ALERT_COLUMNS} FROM supervision_alerts"  # noqa: S608 - our clauses
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + f" ORDER BY opened_at DESC, id DESC LIMIT ${len(params)}"
    )
    return [_alert(row) for row in await connection.fetch(sql, *params)]


# --- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentStats:
    """One department over [since, until): what it sent, and how it handled what it got.

    ``received`` counts deliveries addressed to it in the period (withdrawn ones excluded);
    the time to sign for runs from arrival to the signed receipt; a delivery counts for the
    on-time rate once it is decided (signed for or returned) or overdue, and is on time when
    decided no later than its due time. ``overdue_now`` ignores the period.
    """

    department: str
    sent: int
    received: int
    signed_for: int
    rejected: int
    median_seconds_to_sign_for: float | None
    p90_seconds_to_sign_for: float | None
    on_time: int
    judged: int
    overdue_now: int

    @property
    def on_time_rate(self) -> float | None:
        return None if self.judged == 0 else self.on_time / self.judged


# $1 since, $2 until, $3 now, then optionally $4 the department. Each part reads one index
# range: deliveries_recipient_created (covering), documents_sender_dispatched and
# deliveries_open_recipient.
_STATS_SQL = """
WITH r AS (
    SELECT recipient AS department,
           count(*) FILTER (WHERE state <> 'withdrawn') AS received,
           count(*) FILTER (WHERE state = 'received') AS signed_for,
           count(*) FILTER (WHERE state = 'rejected') AS rejected,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY decided_at - created_at)
               FILTER (WHERE state = 'received') AS median_to_sign_for,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY decided_at - created_at)
               FILTER (WHERE state = 'received') AS p90_to_sign_for,
           count(*) FILTER (WHERE state IN ('received', 'rejected') AND decided_at <= due_at)
               AS on_time,
           count(*) FILTER (WHERE state IN ('received', 'rejected')
                            OR (state IN ('pending', 'fetched') AND due_at < $3)) AS judged
      FROM deliveries
     WHERE created_at >= $1 AND created_at < $2 {recipient}
     GROUP BY recipient
), s AS (
    SELECT sender AS department, count(*) AS sent
      FROM documents
     WHERE dispatched_at >= $1 AND dispatched_at < $2 {sender}
     GROUP BY sender
), o AS (
    SELECT recipient AS department, count(*) AS overdue_now
      FROM deliveries
     WHERE state IN ('pending', 'fetched') AND due_at < $3 {recipient}
     GROUP BY recipient
)
SELECT department,
       coalesce(s.sent, 0) AS sent,
       coalesce(r.received, 0) AS received,
       coalesce(r.signed_for, 0) AS signed_for,
       coalesce(r.rejected, 0) AS rejected,
       r.median_to_sign_for,
       r.p90_to_sign_for,
       coalesce(r.on_time, 0) AS on_time,
       coalesce(r.judged, 0) AS judged,
       coalesce(o.overdue_now, 0) AS overdue_now
  FROM r FULL JOIN s USING (department) FULL JOIN o USING (department)
 ORDER BY department
"""


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


async def department_stats(
    connection: DbConnection,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    department: str | None = None,
) -> list[DepartmentStats]:
    """Stats of *department* (a list of one, even when it had no activity), or of every
    department with activity in the period or deliveries overdue now."""
    params: list[Any] = [since, until, now]
    if department is None:
        sql = _STATS_SQL.format(recipient="", sender="")
    else:
        params.append(department)
        sql = _STATS_SQL.format(recipient="AND recipient = $4", sender="AND sender = $4")
    rows = await connection.fetch(sql, *params)
    found = [
        DepartmentStats(
            department=row["department"],
            sent=row["sent"],
            received=row["received"],
            signed_for=row["signed_for"],
            rejected=row["rejected"],
            median_seconds_to_sign_for=_seconds(row["median_to_sign_for"]),
            p90_seconds_to_sign_for=_seconds(row["p90_to_sign_for"]),
            on_time=row["on_time"],
            judged=row["judged"],
            overdue_now=row["overdue_now"],
        )
        for row in rows
    ]
    if department is not None and not found:
        found.append(DepartmentStats(department, 0, 0, 0, 0, None, None, 0, 0, 0))
    return found
