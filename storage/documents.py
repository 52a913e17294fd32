"""Documents and deliveries: the rows behind send, inbox, receipts, withdraw and resend."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from keys.codes import Code, CodedError
from storage import leases
from storage.db import DbConnection
from storage.vocabulary import DeliveryState, DocumentStatus

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DELIVERY_CHANNEL = "sealhub_deliveries"


class DocumentError(CodedError):
    code: str = Code.DOCUMENT_ERROR


class DocumentNotFound(DocumentError):
    code = Code.NOT_FOUND


class DuplicateDocNumber(DocumentError):
    code = Code.DOC_NUMBER_TAKEN


ALREADY_DECIDED = "this delivery was already signed for, returned or withdrawn"


class WrongState(DocumentError):
    code = Code.CONFLICT


@dataclass(frozen=True)
class Document:
    """A ``documents`` row: what was sent, by whom, and where it stands."""

    id: uuid.UUID
    sender: str
    created_by: str
    title: str
    doc_number: str
    doc_year: int
    urgency: str
    classification: str
    deadline: datetime | None
    status: DocumentStatus
    draft_object: str
    draft_sha256: str
    draft_size: int
    sealed_object: str | None
    sealed_sha256: str | None
    sealed_size: int | None
    seal_id: uuid.UUID | None
    sealed_by: str | None
    created_at: datetime
    dispatched_at: datetime | None
    withdrawn_at: datetime | None = None  # a new document is never withdrawn


@dataclass(frozen=True)
class Delivery:
    """A ``deliveries`` row: one recipient department's copy and its 签收 / 退回."""

    id: uuid.UUID
    seq: int
    document: uuid.UUID
    recipient: str
    copy: bool
    state: DeliveryState
    created_at: datetime
    due_at: datetime
    fetched_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    receipt_jws: str | None
    countersigned: str | None
    decision_event: int | None


@dataclass(frozen=True)
class AddressedDelivery(Delivery):
    """A delivery with what its recipient checks a receipt against."""

    sender: str
    sealed_sha256: str  # only a sealed document has deliveries
    document_status: DocumentStatus


@dataclass(frozen=True)
class InboxItem:
    """One line of a department's inbox: the delivery and the document it carries."""

    id: uuid.UUID
    seq: int
    state: DeliveryState
    created_at: datetime
    copy: bool
    document_id: uuid.UUID
    title: str
    doc_number: str
    urgency: str
    sender: str
    deadline: datetime | None
    classification: str


RowType = TypeVar("RowType", bound="DataclassInstance")
# The columns read as an enum, whichever row type holds them.
_STATES: dict[str, type[DocumentStatus] | type[DeliveryState]] = {
    "status": DocumentStatus,
    "document_status": DocumentStatus,
    "state": DeliveryState,
}


def _row(cls: type[RowType], row: asyncpg.Record) -> RowType:
    """A dataclass row from a record holding (at least) its columns."""
    values: dict[str, Any] = {}
    for field in fields(cls):
        value = row[field.name]
        values[field.name] = _STATES[field.name](value) if field.name in _STATES else value
    return cls(**values)


@dataclass(frozen=True)
class NewDelivery:
    id: uuid.UUID
    recipient: str
    copy: bool
    due_at: datetime


async def insert_document(connection: DbConnection, document: Document) -> None:
    try:
        await connection.execute(
            "INSERT INTO documents (id, sender, created_by, title, doc_number, doc_year,"
            " urgency, classification, deadline, status, draft_object, draft_sha256,"
            " draft_size, sealed_object, sealed_sha256, sealed_size, seal_id, sealed_by,"
            " created_at, dispatched_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)",
            document.id,
            document.sender,
            document.created_by,
            document.title,
            document.doc_number,
            document.doc_year,
            document.urgency,
            document.classification,
            document.deadline,
            document.status,
            document.draft_object,
            document.draft_sha256,
            document.draft_size,
            document.sealed_object,
            document.sealed_sha256,
            document.sealed_size,
            document.seal_id,
            document.sealed_by,
            document.created_at,
            document.dispatched_at,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateDocNumber(
            f"{document.sender} already issued {document.doc_number!r} in {document.doc_year}"
        ) from None


# The first key of the advisory locks that order each recipient's deliveries ("inbx").
INBOX_LOCK_CLASS = 0x696E6278


async def insert_deliveries(
    connection: DbConnection,
    document_id: uuid.UUID,
    deliveries: Sequence[NewDelivery],
    created_at: datetime,
) -> None:
    """All rows with one COPY: fan-out to hundreds of departments is one round trip.

    The insert fires trigger ``deliveries_enqueue_webhooks`` (migration 0008): one webhook
    job per live webhook of each recipient, in the caller's transaction, and a NOTIFY on
    ``sealhub_webhooks`` that wakes the workers at commit.

    Inbox readers follow ``seq`` as a cursor, and a ``bigserial`` is drawn at insert, not at
    commit: a later send to the same recipient that commits first would let a reader move its
    cursor past a lower ``seq`` still to become visible, skipping that delivery for good (the
    three-process load test caught it). So each recipient's inbox takes its deliveries one
    transaction at a time: a lock per recipient, held to commit and taken before any ``seq``
    is drawn, in one sorted order so that fan-outs never deadlock."""
    await connection.execute(
        "SELECT count(pg_advisory_xact_lock($1, key))"
        " FROM (SELECT DISTINCT hashtext(code) AS key FROM unnest($2::text[]) AS code"
        " ORDER BY key) AS recipients",
        INBOX_LOCK_CLASS,
        [d.recipient for d in deliveries],
    )
    await connection.copy_records_to_table(
        "deliveries",
        columns=("id", "document", "recipient", "copy", "state", "created_at", "due_at"),
        records=[
            (d.id, document_id, d.recipient, d.copy, DeliveryState.PENDING, created_at, d.due_at)
            for d in deliveries
        ],
    )


async def notify_deliveries(connection: DbConnection, document_id: uuid.UUID) -> None:
    """Delivered at commit to every gateway process LISTENing (and never on rollback)."""
    await connection.execute("SELECT pg_notify($1, $2)", DELIVERY_CHANNEL, str(document_id))


async def get_document(connection: DbConnection, document_id: uuid.UUID) -> Document:
    row = await connection.fetchrow("SELECT * FROM documents WHERE id = $1", document_id)
    if row is None:
        raise DocumentNotFound("no such document")
    return _row(Document, row)


async def document_deliveries(connection: DbConnection, document_id: uuid.UUID) -> list[Delivery]:
    rows = await connection.fetch(
        "SELECT * FROM deliveries WHERE document = $1 ORDER BY recipient", document_id
    )
    return [_row(Delivery, row) for row in rows]


async def recipient_delivery(
    connection: DbConnection, document_id: uuid.UUID, department: str
) -> Delivery | None:
    row = await connection.fetchrow(
        "SELECT * FROM deliveries WHERE document = $1 AND recipient = $2",
        document_id,
        department,
    )
    return None if row is None else _row(Delivery, row)


async def get_delivery(connection: DbConnection, delivery_id: uuid.UUID) -> AddressedDelivery:
    row = await connection.fetchrow(
        "SELECT d.*, doc.sender, doc.sealed_sha256, doc.status AS document_status"
        " FROM deliveries d JOIN documents doc ON doc.id = d.document WHERE d.id = $1",
        delivery_id,
    )
    if row is None:
        raise DocumentNotFound("no such delivery")
    return _row(AddressedDelivery, row)


# A search text found literally (strpos: no LIKE wildcards) in a document's title or 文号.
_TEXT_MATCH = (
    "({text}::text IS NULL OR strpos(lower(doc.title), lower({text})) > 0"
    " OR strpos(lower(doc.doc_number), lower({text})) > 0)"
)


async def inbox_page(
    connection: DbConnection,
    department: str,
    *,
    states: Sequence[str] | None,
    text: str | None = None,
    after_seq: int,
    limit: int,
) -> list[InboxItem]:
    """Deliveries to *department* after *after_seq*, in seq order: in *states* (None: any
    but withdrawn), *text* found literally in the title or 文号."""
    rows = await connection.fetch(
        "SELECT d.id, d.seq, d.state, d.created_at, d.copy, doc.id AS document_id, doc.title,"  # noqa: S608 (constant fragments)
        " doc.doc_number, doc.urgency, doc.sender, doc.deadline, doc.classification"
        " FROM deliveries d JOIN documents doc ON doc.id = d.document"
        " WHERE d.recipient = $1 AND d.seq > $2 AND ($3::text[] IS NULL OR d.state = ANY($3))"
        f" AND d.state <> 'withdrawn' AND {_TEXT_MATCH.format(text='$5')}"
        " ORDER BY d.seq LIMIT $4",
        department,
        after_seq,
        None if states is None else list(states),
        limit,
        text,
    )
    return [_row(InboxItem, row) for row in rows]


async def inbox_page_if_valid(
    connection: DbConnection,
    department: str,
    kid: str,
    *,
    states: Sequence[str] | None,
    text: str | None = None,
    after_seq: int,
    limit: int,
) -> tuple[bool, list[InboxItem]]:
    """After a long-poll wakes: is the caller's key still good, and what is new — in one
    round trip, since hundreds of waiters wake together on a fan-out."""
    rows = await connection.fetch(
        "WITH me AS ("  # noqa: S608 (constant fragments)
        "  SELECT k.revoked_at IS NULL AND o.status = 'active' AND o.department = $1 AS ok"
        "  FROM official_keys k JOIN officials o ON o.id = k.official_id WHERE k.kid = $5)"
        " SELECT coalesce((SELECT ok FROM me), false) AS session_ok, page.* FROM (SELECT 1) one"
        " LEFT JOIN LATERAL ("
        "  SELECT d.id, d.seq, d.state, d.created_at, d.copy, doc.id AS document_id, doc.title,"
        "  doc.doc_number, doc.urgency, doc.sender, doc.deadline, doc.classification"
        "  FROM deliveries d JOIN documents doc ON doc.id = d.document"
        "  WHERE d.recipient = $1 AND d.seq > $2 AND ($3::text[] IS NULL OR d.state = ANY($3))"
        f"  AND d.state <> 'withdrawn' AND {_TEXT_MATCH.format(text='$6')}"
        "  ORDER BY d.seq LIMIT $4) page ON true",
        department,
        after_seq,
        None if states is None else list(states),
        limit,
        kid,
        text,
    )
    session_ok = bool(rows[0]["session_ok"]) if rows else False
    return session_ok, [_row(InboxItem, row) for row in rows if row["id"] is not None]


async def latest_delivery_seq(connection: DbConnection, department: str) -> int:
    """Where the department's inbox stands now (0 when empty): an event stream opened
    without a cursor starts here and sends only what arrives later."""
    seq = await connection.fetchval(
        "SELECT coalesce(max(seq), 0) FROM deliveries WHERE recipient = $1", department
    )
    return int(seq)


async def mark_fetched(connection: DbConnection, delivery_id: uuid.UUID, at: datetime) -> bool:
    """pending → fetched on the first download; True when this call made the change."""
    status = await connection.execute(
        "UPDATE deliveries SET state = 'fetched', fetched_at = $2"
        " WHERE id = $1 AND state = 'pending'",
        delivery_id,
        at,
    )
    return status.endswith(" 1")


@dataclass(frozen=True)
class Decision:
    """Where a delivery stands on 签收/退回, read under its row lock."""

    state: DeliveryState
    decided_at: datetime | None
    receipt_jws: str | None
    event: int | None
    countersigned: str | None


async def lock_decision(connection: DbConnection, delivery_id: uuid.UUID) -> Decision:
    row = await connection.fetchrow(
        "SELECT state, decided_at, receipt_jws, decision_event, countersigned"
        " FROM deliveries WHERE id = $1 FOR UPDATE",
        delivery_id,
    )
    if row is None:
        raise DocumentNotFound("no such delivery")
    return Decision(
        DeliveryState(row["state"]),
        row["decided_at"],
        row["receipt_jws"],
        row["decision_event"],
        row["countersigned"],
    )


def decision_of(delivery: Delivery) -> Decision:
    """The decision columns of a delivery row (``get_delivery``'s)."""
    return Decision(
        delivery.state,
        delivery.decided_at,
        delivery.receipt_jws,
        delivery.decision_event,
        delivery.countersigned,
    )


async def decide_delivery(
    connection: DbConnection,
    delivery_id: uuid.UUID,
    *,
    state: DeliveryState,
    at: datetime,
    official: str,
    receipt_jws: str,
    reason: str | None,
    event: int,
) -> None:
    """Sign for (received) or return (rejected) — once, from pending or fetched only;
    *event* is the outbox id of the decision's audit event."""
    status = await connection.execute(
        "UPDATE deliveries SET state = $2, decided_at = $3, decided_by = $4, receipt_jws = $5,"
        " reason = $6, decision_event = $7 WHERE id = $1 AND state IN ('pending', 'fetched')",
        delivery_id,
        state,
        at,
        official,
        receipt_jws,
        reason,
        event,
    )
    if not status.endswith(" 1"):
        raise WrongState(ALREADY_DECIDED)


async def store_countersigned(
    connection: DbConnection, delivery_id: uuid.UUID, countersigned: str
) -> str:
    """Keep the first countersignature made for a decision; returns the one kept."""
    kept: str = await connection.fetchval(
        "UPDATE deliveries SET countersigned = coalesce(countersigned, $2) WHERE id = $1"
        " RETURNING countersigned",
        delivery_id,
        countersigned,
    )
    return kept


async def withdraw_document(
    connection: DbConnection, document_id: uuid.UUID, at: datetime
) -> list[str]:
    """撤回: refused once any recipient decided; returns the recipients it is taken from.

    A draft still in its approval chain can be withdrawn too: otherwise a step assigned to
    an official who has since left could hold the document forever.
    """
    # Locking the deliveries waits for a 签收 in flight and then reads its outcome: a
    # receipt that commits first makes this refuse, one that comes after finds the delivery
    # withdrawn.
    decided = await connection.fetchval(
        "SELECT count(*) FILTER (WHERE state IN ('received', 'rejected'))"
        " FROM (SELECT state FROM deliveries WHERE document = $1 FOR UPDATE) locked",
        document_id,
    )
    if decided:
        raise WrongState("a recipient already signed for or returned this document")
    status = await connection.execute(
        "UPDATE documents SET status = 'withdrawn', withdrawn_at = $2"
        " WHERE id = $1 AND status IN ('dispatched', 'in_approval', 'returned', 'awaiting_seal')",
        document_id,
        at,
    )
    if not status.endswith(" 1"):
        raise WrongState("this document was already withdrawn")
    rows = await connection.fetch(
        "UPDATE deliveries SET state = 'withdrawn' WHERE document = $1 RETURNING recipient",
        document_id,
    )
    return sorted(row["recipient"] for row in rows)


async def lock_document(connection: DbConnection, document_id: uuid.UUID) -> Document:
    row = await connection.fetchrow("SELECT * FROM documents WHERE id = $1 FOR UPDATE", document_id)
    if row is None:
        raise DocumentNotFound("no such document")
    return _row(Document, row)


async def existing_recipients(connection: DbConnection, document_id: uuid.UUID) -> set[str]:
    rows = await connection.fetch(
        "SELECT recipient FROM deliveries WHERE document = $1", document_id
    )
    return {row["recipient"] for row in rows}


async def recipients_of(connection: DbConnection, document_id: uuid.UUID) -> list[str]:
    return sorted(await existing_recipients(connection, document_id))


# One object sweep at a time across gateway processes (a session-level advisory lock).
OBJECT_SWEEP_LOCK = 0x5EA1_0003


async def try_lock_object_sweep(connection: DbConnection) -> bool:
    """Taken without waiting: False while another process sweeps."""
    return await leases.try_advisory_lock(connection, OBJECT_SWEEP_LOCK)


async def unlock_object_sweep(connection: DbConnection) -> None:
    await leases.advisory_unlock(connection, OBJECT_SWEEP_LOCK)


async def referenced_objects(connection: DbConnection, keys: Sequence[str]) -> set[str]:
    """Which of *keys* a document row still points to (the object sweeper's question)."""
    rows = await connection.fetch(
        "SELECT draft_object AS key FROM documents WHERE draft_object = ANY($1::text[])"
        " UNION SELECT sealed_object FROM documents WHERE sealed_object = ANY($1::text[])",
        list(keys),
    )
    return {row["key"] for row in rows}


@dataclass(frozen=True)
class BoxDocument:
    """A document in one of its department's lists (sent, awaiting seal, drafts), with its
    recipients and how its deliveries stand."""

    id: uuid.UUID
    title: str
    doc_number: str
    urgency: str
    classification: str
    status: DocumentStatus
    created_at: datetime
    deadline: datetime | None
    created_by: str
    drafter_name: str
    recipients: list[str]
    cc: list[str]
    sealed_sha256: str | None
    draft_sha256: str
    draft_object: str
    total: int
    pending: int
    received: int
    rejected: int


async def department_documents(
    connection: DbConnection,
    department: str,
    *,
    statuses: Sequence[str],
    text: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[BoxDocument]:
    """*department*'s documents in *statuses*, newest first, before (created_at, id).
    Recipients are the deliveries' once there are any (resends included), else the ones the
    workflow will send to; *text* is found literally (no LIKE wildcards) in title or 文号."""
    rows = await connection.fetch(
        "SELECT doc.id, doc.title, doc.doc_number, doc.urgency, doc.classification,"
        " doc.status, doc.created_at, doc.deadline, doc.created_by,"
        " coalesce(o.name, doc.created_by) AS drafter_name,"
        " CASE WHEN d.total > 0 THEN coalesce(d.recipients, '{}')"
        "  ELSE coalesce(w.recipients, '{}') END AS recipients,"
        " CASE WHEN d.total > 0 THEN coalesce(d.cc, '{}') ELSE coalesce(w.cc, '{}') END AS cc,"
        " doc.sealed_sha256, doc.draft_sha256, doc.draft_object,"
        " d.total, d.pending, d.received, d.rejected"
        " FROM documents doc"
        " LEFT JOIN officials o ON o.id = doc.created_by"
        " LEFT JOIN workflows w ON w.document = doc.id"
        " CROSS JOIN LATERAL (SELECT"
        "  array_agg(recipient ORDER BY recipient) FILTER (WHERE NOT copy) AS recipients,"
        "  array_agg(recipient ORDER BY recipient) FILTER (WHERE copy) AS cc,"
        "  count(*) AS total,"
        "  count(*) FILTER (WHERE state IN ('pending', 'fetched')) AS pending,"
        "  count(*) FILTER (WHERE state = 'received') AS received,"
        "  count(*) FILTER (WHERE state = 'rejected') AS rejected"
        "  FROM deliveries WHERE document = doc.id) d"
        " WHERE doc.sender = $1 AND doc.status = ANY($2::text[])"
        " AND ($3::text IS NULL OR strpos(lower(doc.title), lower($3)) > 0"
        "  OR strpos(lower(doc.doc_number), lower($3)) > 0)"
        " AND ($4::timestamptz IS NULL OR (doc.created_at, doc.id) < ($4, $5))"
        " ORDER BY doc.created_at DESC, doc.id DESC LIMIT $6",
        department,
        list(statuses),
        text,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [
        BoxDocument(
            **{
                **dict(row.items()),
                "status": DocumentStatus(row["status"]),
                "recipients": list(row["recipients"]),
                "cc": list(row["cc"]),
            }
        )
        for row in rows
    ]
