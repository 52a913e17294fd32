"""Webhook rows: the admins' allow-list, departments' endpoints, the job queue, the policy.

Jobs are created by a trigger on ``deliveries`` (see 0008_webhooks.sql) in the transaction
that creates the delivery; workers claim them with ``FOR UPDATE SKIP LOCKED`` so any number
of gateway processes share the queue without handing one job to two of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from keys.codes import Code, CodedError
from storage.db import DbConnection
from storage.vocabulary import WebhookJobState

NOTIFY_CHANNEL = "sealhub_webhooks"


class WebhookStoreError(CodedError):
    code: str = Code.CONFLICT


class AlreadyAllowed(WebhookStoreError):
    code = Code.ALREADY_EXISTS


@dataclass(frozen=True)
class AllowEntry:
    id: uuid.UUID
    host: str
    port: int
    allow_private: bool
    note: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class Webhook:
    id: uuid.UUID
    department: str
    url: str
    host: str
    port: int
    description: str
    created_by: str
    created_at: datetime
    secret_wrapped: bytes = field(repr=False)


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    base_delay: float
    max_delay: float

    def as_json(self) -> dict[str, Any]:
        """As the API shows it (and as its change is audited): delays in seconds."""
        return {
            "max_attempts": self.max_attempts,
            "base_delay_seconds": self.base_delay,
            "max_delay_seconds": self.max_delay,
        }


@dataclass(frozen=True)
class DeadLetter:
    """A job the worker gave up on, with the url it was for."""

    id: uuid.UUID
    webhook: uuid.UUID
    delivery: uuid.UUID
    attempts: int
    created_at: datetime
    dead_at: datetime
    last_status: int | None
    last_error: str | None
    url: str


@dataclass(frozen=True)
class ReplayedJob:
    id: uuid.UUID
    webhook: uuid.UUID
    delivery: uuid.UUID


@dataclass(frozen=True)
class ClaimedJob:
    """A due job, locked by the claiming transaction, with what the attempt needs."""

    id: uuid.UUID
    webhook: uuid.UUID
    delivery: uuid.UUID
    attempts: int
    department: str
    url: str
    secret_wrapped: bytes = field(repr=False)
    allowed: bool
    allow_private: bool
    payload: dict[str, Any]
    document: str
    withdrawn: bool = False


def _entry(row: asyncpg.Record) -> AllowEntry:
    return AllowEntry(
        row["id"],
        row["host"],
        row["port"],
        row["allow_private"],
        row["note"],
        row["added_by"],
        row["added_at"],
    )


async def add_allowed(
    connection: DbConnection,
    *,
    host: str,
    port: int,
    allow_private: bool,
    note: str,
    added_by: str,
    now: datetime,
) -> AllowEntry:
    try:
        row = await connection.fetchrow(
            "INSERT INTO webhook_allowlist (id, host, port, allow_private, note, added_by,"
            " added_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
            uuid.uuid4(),
            host,
            port,
            allow_private,
            note,
            added_by,
            now,
        )
    except asyncpg.UniqueViolationError:
        raise AlreadyAllowed(f"{host}:{port} is already on the allow-list") from None
    assert row is not None
    return _entry(row)


async def list_allowed(connection: DbConnection) -> list[AllowEntry]:
    rows = await connection.fetch("SELECT * FROM webhook_allowlist ORDER BY host, port")
    return [_entry(row) for row in rows]


async def remove_allowed(connection: DbConnection, entry_id: uuid.UUID) -> AllowEntry | None:
    row = await connection.fetchrow(
        "DELETE FROM webhook_allowlist WHERE id = $1 RETURNING *", entry_id
    )
    return None if row is None else _entry(row)


async def allowed_entry(connection: DbConnection, host: str, port: int) -> AllowEntry | None:
    row = await connection.fetchrow(
        "SELECT * FROM webhook_allowlist WHERE host = $1 AND port = $2", host, port
    )
    return None if row is None else _entry(row)


def _webhook(row: asyncpg.Record) -> Webhook:
    return Webhook(
        row["id"],
        row["department"],
        row["url"],
        row["host"],
        row["port"],
        row["description"],
        row["created_by"],
        row["created_at"],
        bytes(row["secret_wrapped"]),
    )


async def active_webhooks(connection: DbConnection, department: str, url: str) -> tuple[int, bool]:
    """(how many active webhooks the department has, whether *url* is one of them), under a
    per-department lock held to the end of the transaction so concurrent registrations
    cannot both pass the limit."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('sealhub.webhooks:' || $1, 0))",
        department,
    )
    row = await connection.fetchrow(
        "SELECT count(*) AS active, coalesce(bool_or(url = $2), false) AS same_url"
        " FROM webhooks WHERE department = $1 AND deleted_at IS NULL",
        department,
        url,
    )
    assert row is not None
    return int(row["active"]), bool(row["same_url"])


async def insert_webhook(
    connection: DbConnection,
    *,
    webhook_id: uuid.UUID,
    department: str,
    url: str,
    host: str,
    port: int,
    secret_wrapped: bytes,
    description: str,
    created_by: str,
    now: datetime,
) -> Webhook:
    row = await connection.fetchrow(
        "INSERT INTO webhooks (id, department, url, host, port, secret_wrapped, description,"
        " created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        webhook_id,
        department,
        url,
        host,
        port,
        secret_wrapped,
        description,
        created_by,
        now,
    )
    assert row is not None
    return _webhook(row)


async def list_webhooks(connection: DbConnection, department: str) -> list[Webhook]:
    rows = await connection.fetch(
        "SELECT * FROM webhooks WHERE department = $1 AND deleted_at IS NULL ORDER BY created_at",
        department,
    )
    return [_webhook(row) for row in rows]


async def delete_webhook(
    connection: DbConnection, webhook_id: uuid.UUID, department: str, now: datetime
) -> bool:
    status = await connection.execute(
        "UPDATE webhooks SET deleted_at = $3 WHERE id = $1 AND department = $2"
        " AND deleted_at IS NULL",
        webhook_id,
        department,
        now,
    )
    return status.endswith(" 1")


async def get_policy(connection: DbConnection) -> Policy:
    row = await connection.fetchrow(
        "SELECT max_attempts, base_delay_ms, max_delay_ms FROM webhook_policy"
    )
    if row is None:
        return Policy(8, 30.0, 3600.0)
    return Policy(row["max_attempts"], row["base_delay_ms"] / 1000, row["max_delay_ms"] / 1000)


async def set_policy(
    connection: DbConnection, policy: Policy, *, updated_by: str, now: datetime
) -> None:
    await connection.execute(
        "INSERT INTO webhook_policy (singleton, max_attempts, base_delay_ms, max_delay_ms,"
        " updated_by, updated_at) VALUES (true, $1, $2, $3, $4, $5)"
        " ON CONFLICT (singleton) DO UPDATE SET max_attempts = EXCLUDED.max_attempts,"
        " base_delay_ms = EXCLUDED.base_delay_ms, max_delay_ms = EXCLUDED.max_delay_ms,"
        " updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at",
        policy.max_attempts,
        round(policy.base_delay * 1000),
        round(policy.max_delay * 1000),
        updated_by,
        now,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


async def claim_due(connection: DbConnection, now: datetime) -> ClaimedJob | None:
    """Lock one due job (others skip it) — call inside the transaction of the attempt."""
    row = await connection.fetchrow(
        "SELECT j.id, j.webhook, j.delivery, j.attempts, w.department, w.url,"
        " w.secret_wrapped, a.id IS NOT NULL AS allowed,"
        " coalesce(a.allow_private, false) AS allow_private,"
        " d.state, d.copy, d.created_at AS delivery_created_at, d.due_at,"
        " doc.id AS document_id, doc.title, doc.doc_number, doc.urgency, doc.sender,"
        " doc.sealed_sha256"
        " FROM webhook_jobs j"
        " JOIN webhooks w ON w.id = j.webhook"
        " JOIN deliveries d ON d.id = j.delivery"
        " JOIN documents doc ON doc.id = d.document"
        " LEFT JOIN webhook_allowlist a ON a.host = w.host AND a.port = w.port"
        " WHERE j.state = 'pending' AND j.next_attempt_at <= $1 AND w.deleted_at IS NULL"
        " ORDER BY j.next_attempt_at"
        " LIMIT 1 FOR UPDATE OF j SKIP LOCKED",
        now,
    )
    if row is None:
        return None
    payload = {
        "id": str(row["id"]),
        "type": "delivery.created",
        "department": row["department"],
        "delivery": {
            "id": str(row["delivery"]),
            "state": row["state"],
            "copy": row["copy"],
            "created_at": _iso(row["delivery_created_at"]),
            "due_at": _iso(row["due_at"]),
            "document": {
                "id": str(row["document_id"]),
                "title": row["title"],
                "doc_number": row["doc_number"],
                "urgency": row["urgency"],
                "sender": row["sender"],
                "sha256": row["sealed_sha256"],
            },
        },
    }
    return ClaimedJob(
        id=row["id"],
        webhook=row["webhook"],
        delivery=row["delivery"],
        attempts=row["attempts"],
        department=row["department"],
        url=row["url"],
        secret_wrapped=bytes(row["secret_wrapped"]),
        allowed=row["allowed"],
        allow_private=row["allow_private"],
        payload=payload,
        document=str(row["document_id"]),
        withdrawn=row["state"] == "withdrawn",
    )


async def lease_job(
    connection: DbConnection, job_id: uuid.UUID, *, attempts: int, until: datetime
) -> None:
    """Count an attempt before it is made and keep the job from others until ``until``: an
    attempt whose result never lands (a crash, a database error) is retried after that, not
    at once, and still counts toward the dead letter."""
    await connection.execute(
        "UPDATE webhook_jobs SET attempts = $2, next_attempt_at = $3 WHERE id = $1",
        job_id,
        attempts,
        until,
    )


async def finish_job(
    connection: DbConnection,
    job_id: uuid.UUID,
    *,
    state: WebhookJobState,
    attempts: int,
    now: datetime,
    next_attempt_at: datetime | None,
    status: int | None,
    error: str | None,
) -> bool:
    """Record an attempt's result: delivered, pending again (retry) or dead. False when the
    job moved on meanwhile (its lease ran out and another attempt took it): nothing changes."""
    updated = await connection.fetchval(
        "UPDATE webhook_jobs SET state = $2::text,"
        " next_attempt_at = coalesce($5::timestamptz, next_attempt_at),"
        " delivered_at = CASE WHEN $2::text = 'delivered' THEN $4::timestamptz END,"
        " dead_at = CASE WHEN $2::text = 'dead' THEN $4::timestamptz END,"
        " last_status = $6, last_error = $7"
        " WHERE id = $1 AND attempts = $3 AND state = 'pending' RETURNING true",
        job_id,
        state,
        attempts,
        now,
        next_attempt_at,
        status,
        error,
    )
    return bool(updated)


async def next_due(connection: DbConnection) -> datetime | None:
    value: datetime | None = await connection.fetchval(
        "SELECT min(j.next_attempt_at) FROM webhook_jobs j JOIN webhooks w ON w.id = j.webhook"
        " WHERE j.state = 'pending' AND w.deleted_at IS NULL"
    )
    return value


async def dead_letters(
    connection: DbConnection,
    department: str,
    *,
    limit: int,
    before: datetime | None,
    after_id: uuid.UUID | None = None,
) -> list[DeadLetter]:
    """Newest first; the page after (*before*, *after_id*) when both are given, so dead
    letters that died in the same microsecond are neither skipped nor repeated."""
    rows = await connection.fetch(
        "SELECT j.id, j.webhook, j.delivery, j.attempts, j.created_at, j.dead_at,"
        " j.last_status, j.last_error, w.url"
        " FROM webhook_jobs j JOIN webhooks w ON w.id = j.webhook"
        " WHERE w.department = $1 AND j.state = 'dead'"
        " AND ($2::timestamptz IS NULL OR ($4::uuid IS NULL AND j.dead_at < $2)"
        "      OR (j.dead_at, j.id) < ($2, $4))"
        " ORDER BY j.dead_at DESC, j.id DESC LIMIT $3",
        department,
        before,
        limit,
        after_id,
    )
    return [DeadLetter(**dict(row.items())) for row in rows]


async def jobs_of_delivery(
    connection: DbConnection, delivery_id: uuid.UUID
) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT * FROM webhook_jobs WHERE delivery = $1 ORDER BY created_at", delivery_id
    )
    return [dict(row.items()) for row in rows]


async def replay(
    connection: DbConnection, job_id: uuid.UUID, department: str, now: datetime
) -> ReplayedJob | None:
    """A dead letter back in the queue, same id (receivers dedupe), attempts from zero."""
    row = await connection.fetchrow(
        "UPDATE webhook_jobs j SET state = 'pending', attempts = 0, next_attempt_at = $3,"
        " dead_at = NULL FROM webhooks w"
        " WHERE j.id = $1 AND w.id = j.webhook AND w.department = $2 AND j.state = 'dead'"
        " AND w.deleted_at IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.id = j.delivery AND d.state = 'withdrawn')"
        " RETURNING j.id, j.webhook, j.delivery",
        job_id,
        department,
        now,
    )
    if row is None:
        return None
    await connection.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return ReplayedJob(row["id"], row["webhook"], row["delivery"])
