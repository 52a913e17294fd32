"""Writing audit events: one INSERT into the outbox, inside the caller's transaction.

Callers pass the connection that carries their change, so the event commits with the
change or not at all. The sequencer later gives each event its log index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from storage.db import DbConnection

EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.]{1,63}")


@dataclass(frozen=True)
class AuditEvent:
    """What happened; ``details`` may hold personal data and can later be erased."""

    type: str
    at: datetime
    actor_official: str | None = None
    actor_jkt: str | None = None
    department: str | None = None
    document: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not EVENT_TYPE.fullmatch(self.type):
            raise ValueError(f"invalid audit event type {self.type!r}")
        if self.at.tzinfo is None:
            raise ValueError("audit event times must be timezone-aware")


class AuditSink(Protocol):
    """Where producers report events; the outbox below is the real one."""

    async def record(self, connection: DbConnection, event: AuditEvent) -> None: ...


class OutboxSink:
    async def record(self, connection: DbConnection, event: AuditEvent) -> None:
        await record_event(connection, event)


async def record_event(connection: DbConnection, event: AuditEvent) -> int:
    """Returns the outbox id, by which the event's log index can be found once sequenced."""
    outbox_id: int = await connection.fetchval(
        "INSERT INTO audit_outbox"
        " (type, at, actor_official, actor_jkt, department, document, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        event.type,
        event.at,
        event.actor_official,
        event.actor_jkt,
        event.department,
        event.document,
        event.details,
    )
    return outbox_id


async def record_events(connection: DbConnection, events: list[AuditEvent]) -> None:
    """Many events in one round trip (a fan-out to hundreds of departments)."""
    await connection.executemany(
        "INSERT INTO audit_outbox"
        " (type, at, actor_official, actor_jkt, department, document, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (e.type, e.at, e.actor_official, e.actor_jkt, e.department, e.document, e.details)
            for e in events
        ],
    )
