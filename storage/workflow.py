"""Rows of approval workflows: steps, draft versions, signed decisions, the trail.

Callers hold the transaction (and the document row lock) that makes each change atomic
with its audit events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keys.codes import Code, CodedError
from storage.db import DbConnection
from storage.vocabulary import ApprovalDecision


class WorkflowStoreError(CodedError):
    code: str = Code.CONFLICT


class ReplayedApproval(WorkflowStoreError):
    code = Code.REPLAYED_APPROVAL


@dataclass(frozen=True)
class StepRow:
    step: int
    name: str
    mode: str
    assignees: tuple[str, ...]


@dataclass(frozen=True)
class VersionRow:
    version: int
    draft_object: str
    draft_sha256: str
    draft_size: int
    submitted_by: str
    submitted_at: datetime


@dataclass(frozen=True)
class DecisionRow:
    step: int
    official: str
    decision: str


@dataclass(frozen=True)
class NewApproval:
    id: uuid.UUID
    document: uuid.UUID
    version: int
    step: int
    official: str
    kid: str
    decision: str
    opinion: str
    signature: str
    jti: str
    signed_at: datetime
    decided_at: datetime


@dataclass(frozen=True)
class OfficialRow:
    id: str
    department: str
    roles: frozenset[str]
    active: bool


async def insert_workflow(
    connection: DbConnection,
    document_id: uuid.UUID,
    *,
    steps: Sequence[StepRow],
    recipients: Sequence[str],
    cc: Sequence[str],
    now: datetime,
) -> None:
    await connection.execute(
        "INSERT INTO workflows (document, recipients, cc, created_at) VALUES ($1, $2, $3, $4)",
        document_id,
        list(recipients),
        list(cc),
        now,
    )
    await connection.executemany(
        "INSERT INTO workflow_steps (document, step, name, mode, assignees)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(document_id, s.step, s.name, s.mode, list(s.assignees)) for s in steps],
    )


async def insert_version(
    connection: DbConnection,
    document_id: uuid.UUID,
    *,
    version: int,
    draft_object: str,
    draft_sha256: str,
    draft_size: int,
    submitted_by: str,
    now: datetime,
) -> None:
    await connection.execute(
        "INSERT INTO document_versions (document, version, draft_object, draft_sha256,"
        " draft_size, submitted_by, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        document_id,
        version,
        draft_object,
        draft_sha256,
        draft_size,
        submitted_by,
        now,
    )


async def replace_draft(
    connection: DbConnection,
    document_id: uuid.UUID,
    *,
    draft_object: str,
    draft_sha256: str,
    draft_size: int,
) -> None:
    """The document row always points at its newest draft (downloads, sweeper)."""
    await connection.execute(
        "UPDATE documents SET draft_object = $2, draft_sha256 = $3, draft_size = $4,"
        " status = 'in_approval' WHERE id = $1",
        document_id,
        draft_object,
        draft_sha256,
        draft_size,
    )


async def steps_of(connection: DbConnection, document_id: uuid.UUID) -> list[StepRow]:
    rows = await connection.fetch(
        "SELECT step, name, mode, assignees FROM workflow_steps WHERE document = $1 ORDER BY step",
        document_id,
    )
    return [StepRow(r["step"], r["name"], r["mode"], tuple(r["assignees"])) for r in rows]


async def recipients_of(
    connection: DbConnection, document_id: uuid.UUID
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    row = await connection.fetchrow(
        "SELECT recipients, cc FROM workflows WHERE document = $1", document_id
    )
    if row is None:
        return (), ()
    return tuple(row["recipients"]), tuple(row["cc"])


def _version(row: asyncpg.Record) -> VersionRow:
    return VersionRow(
        row["version"],
        row["draft_object"],
        row["draft_sha256"],
        row["draft_size"],
        row["submitted_by"],
        row["submitted_at"],
    )


async def versions_of(connection: DbConnection, document_id: uuid.UUID) -> list[VersionRow]:
    rows = await connection.fetch(
        "SELECT * FROM document_versions WHERE document = $1 ORDER BY version", document_id
    )
    return [_version(row) for row in rows]


async def latest_version(connection: DbConnection, document_id: uuid.UUID) -> VersionRow | None:
    row = await connection.fetchrow(
        "SELECT * FROM document_versions WHERE document = $1 ORDER BY version DESC LIMIT 1",
        document_id,
    )
    return None if row is None else _version(row)


async def decisions_of(
    connection: DbConnection, document_id: uuid.UUID, version: int
) -> list[DecisionRow]:
    rows = await connection.fetch(
        "SELECT step, official, decision FROM approvals WHERE document = $1 AND version = $2"
        " ORDER BY decided_at, id",
        document_id,
        version,
    )
    return [DecisionRow(r["step"], r["official"], r["decision"]) for r in rows]


async def insert_approval(connection: DbConnection, approval: NewApproval) -> None:
    try:
        await connection.execute(
            "INSERT INTO approvals (id, document, version, step, official, kid, decision,"
            " opinion, signature, jti, signed_at, decided_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            approval.id,
            approval.document,
            approval.version,
            approval.step,
            approval.official,
            approval.kid,
            approval.decision,
            approval.opinion,
            approval.signature,
            approval.jti,
            approval.signed_at,
            approval.decided_at,
        )
    except asyncpg.UniqueViolationError:
        raise ReplayedApproval("this approval signature was already used") from None


async def set_status(connection: DbConnection, document_id: uuid.UUID, status: str) -> None:
    await connection.execute("UPDATE documents SET status = $2 WHERE id = $1", document_id, status)


async def mark_sealed(
    connection: DbConnection,
    document_id: uuid.UUID,
    *,
    sealed_object: str,
    sealed_sha256: str,
    sealed_size: int,
    seal_id: uuid.UUID,
    sealed_by: str,
    now: datetime,
) -> bool:
    """awaiting_seal → dispatched; False when someone else changed the status first."""
    status = await connection.execute(
        "UPDATE documents SET status = 'dispatched', sealed_object = $2, sealed_sha256 = $3,"
        " sealed_size = $4, seal_id = $5, sealed_by = $6, dispatched_at = $7"
        " WHERE id = $1 AND status = 'awaiting_seal'",
        document_id,
        sealed_object,
        sealed_sha256,
        sealed_size,
        seal_id,
        sealed_by,
        now,
    )
    return status.endswith(" 1")


@dataclass(frozen=True)
class TrailRow:
    """One signed decision of the approval trail, with its step's and official's names."""

    id: uuid.UUID
    version: int
    step: int
    step_name: str
    mode: str
    official: str
    official_name: str
    kid: str
    decision: ApprovalDecision
    opinion: str
    signed_at: datetime
    decided_at: datetime
    signature: str


async def trail_of(connection: DbConnection, document_id: uuid.UUID) -> list[TrailRow]:
    """Every decision, oldest first, with the step's name and the official's name."""
    rows = await connection.fetch(
        "SELECT a.id, a.version, a.step, s.name AS step_name, s.mode, a.official,"
        " o.name AS official_name, a.kid, a.decision, a.opinion, a.signed_at, a.decided_at,"
        " a.signature"
        " FROM approvals a"
        " JOIN workflow_steps s ON s.document = a.document AND s.step = a.step"
        " JOIN officials o ON o.id = a.official"
        " WHERE a.document = $1 ORDER BY a.decided_at, a.id",
        document_id,
    )
    return [
        TrailRow(**{**dict(row.items()), "decision": ApprovalDecision(row["decision"])})
        for row in rows
    ]


async def officials_by_id(
    connection: DbConnection, official_ids: Sequence[str]
) -> dict[str, OfficialRow]:
    rows = await connection.fetch(
        "SELECT id, department, roles, status FROM officials WHERE id = ANY($1::text[])",
        list(official_ids),
    )
    return {
        row["id"]: OfficialRow(
            row["id"], row["department"], frozenset(row["roles"]), row["status"] == "active"
        )
        for row in rows
    }


async def referenced_objects(connection: DbConnection, keys: Sequence[str]) -> set[str]:
    """Which of *keys* an earlier draft version still needs (for the object sweeper)."""
    rows = await connection.fetch(
        "SELECT draft_object FROM document_versions WHERE draft_object = ANY($1::text[])",
        list(keys),
    )
    return {row["draft_object"] for row in rows}


@dataclass(frozen=True)
class WaitingStep:
    """A document whose open step waits for one official's decision (待办)."""

    document: uuid.UUID
    title: str
    doc_number: str
    urgency: str
    deadline: datetime | None
    status: str
    created_at: datetime
    drafter: str
    drafter_name: str
    step: int
    step_name: str
    mode: str
    version: int
    draft_sha256: str


# The open step of the newest draft version: the first one not complete, where "complete"
# is what gateway.workflow.rules.step_complete says (any: one assignee approved; all: every
# assignee approved). A rejection returns the document, so in_approval has none.
_OPEN_STEP = (
    "SELECT ws.step, ws.name, ws.mode, ws.assignees FROM workflow_steps ws"
    " WHERE ws.document = doc.id AND NOT ("
    "  SELECT CASE ws.mode WHEN 'any' THEN count(*) > 0"
    "   ELSE count(DISTINCT a.official) = cardinality(ws.assignees) END"
    "  FROM approvals a WHERE a.document = doc.id AND a.version = v.version"
    "  AND a.step = ws.step AND a.decision = 'approve' AND a.official = ANY(ws.assignees))"
    " ORDER BY ws.step LIMIT 1"
)


async def waiting_for(
    connection: DbConnection,
    official: str,
    department: str,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[WaitingStep]:
    """Documents of *department* in approval whose open step names *official* and that it
    has not decided yet, oldest first, after (created_at, id)."""
    rows = await connection.fetch(
        "SELECT doc.id AS document, doc.title, doc.doc_number, doc.urgency, doc.deadline,"  # noqa: S608 (constant subquery)
        " doc.status, doc.created_at, doc.created_by AS drafter, o.name AS drafter_name,"
        " s.step, s.name AS step_name, s.mode, v.version, v.draft_sha256"
        " FROM documents doc"
        " JOIN officials o ON o.id = doc.created_by"
        " JOIN LATERAL (SELECT version, draft_sha256 FROM document_versions"
        "  WHERE document = doc.id ORDER BY version DESC LIMIT 1) v ON true"
        f" JOIN LATERAL ({_OPEN_STEP}) s ON true"
        " WHERE doc.sender = $2 AND doc.status = 'in_approval' AND $1 = ANY(s.assignees)"
        " AND NOT EXISTS (SELECT 1 FROM approvals mine WHERE mine.document = doc.id"
        "  AND mine.version = v.version AND mine.step = s.step AND mine.official = $1)"
        " AND ($3::timestamptz IS NULL OR (doc.created_at, doc.id) > ($3, $4))"
        " ORDER BY doc.created_at, doc.id LIMIT $5",
        official,
        department,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [WaitingStep(**dict(row.items())) for row in rows]
