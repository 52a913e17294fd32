"""The append-only audit log: sequencing, leaves, stored Merkle nodes, proofs, checkpoints.

Events reach the log only through ``audit_outbox`` (written in the transaction of the change
they record). One sequencer at a time, chosen by a PostgreSQL advisory lock held on the very
connection that runs the batches, moves them over: each batch is one transaction that inserts
the log rows with gap-free indices, every new perfect Merkle node and deletes the outbox
rows, so a crash anywhere loses and duplicates nothing. The tree's frontier is reloaded from
the stored nodes at the start of each batch (at most 64 rows), so any process can take over.

Waking the sequencer: outbox writers NOTIFY only while it sleeps (a NOTIFY serialises
committers on a cluster-wide lock, so one per event would cap the writers). Each writer holds
the advisory lock ``SEQUENCER_AWAKE_KEY`` shared until its commit; the sequencer sleeps only
after :func:`start_sleeping` took it exclusively, without waiting, and found the outbox empty
(migration 0010 has the writers' side).

Leaf (API.md): RFC 8785 JSON of ``{"index", "type", "at", "actor": {"official", "jkt"},
"department", "document", "details_hash"}`` with ``details_hash`` the lowercase hex
SHA-256 of ``salt || RFC 8785(details)``; details and salt sit beside the leaf so they can be
erased without touching the tree.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.codes import Code, CodedError
from keys.tsa import Timestamper, TsaResponseError, random_serial
from storage import leases, merkle
from storage.audit_leaf import build_leaf, canonical_details, details_hash
from storage.db import DbConnection
from storage.signed_note import (
    NoteVerifier,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "SEQUENCER_AWAKE_KEY",
    "SEQUENCER_LOCK_KEY",
    "AuditLogError",
    "CheckpointSigner",
    "CheckpointUnknownError",
    "Cosignature",
    "CosignatureOutdatedError",
    "EntryFilter",
    "LogEntry",
    "StoredCheckpoint",
    "add_cosignature",
    "consistency_proof",
    "create_checkpoint",
    "erase_details",
    "fetch_node_ranges",
    "fetch_nodes",
    "get_entry",
    "inclusion_proof",
    "latest_checkpoint",
    "list_checkpoints",
    "list_entries",
    "load_frontier",
    "log_origin",
    "log_size",
    "note_text",
    "release_sequencer",
    "root_at",
    "sequence_batch",
    "start_sleeping",
    "stop_sleeping",
    "try_acquire_sequencer",
]

SEQUENCER_LOCK_KEY = 0x5EA1_A0D1
# Spelled out in migration 0010's trigger function, which must use the same number.
SEQUENCER_AWAKE_KEY = 0x5EA1_A0D2
NOTIFY_CHANNEL = "sealhub_audit_outbox"
SALT_SIZE = 16
DEFAULT_BATCH = 2000

_INSERT_BATCH = (
    "WITH nodes AS (INSERT INTO audit_nodes (level, idx, hash)"
    " SELECT * FROM unnest($13::smallint[], $14::bigint[], $15::bytea[]))"
    " INSERT INTO audit_log (idx, outbox_id, type, at, actor_official, actor_jkt, department,"
    " document, leaf, details_hash, details, salt)"
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[],"
    " $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::bytea[],"
    " $12::bytea[])"
)
_ENTRY_COLUMNS = (
    "idx, type, at, actor_official, actor_jkt, department, document, leaf, details_hash,"
    " details, salt, erased_at"
)


class AuditLogError(CodedError):
    """Base of the audit log errors; ``code`` is the stable machine code."""

    code: str = Code.AUDIT_LOG_ERROR


class CheckpointUnknownError(AuditLogError):
    """A witness cosigned a checkpoint this log never issued."""

    code = Code.CHECKPOINT_UNKNOWN


class CosignatureOutdatedError(AuditLogError):
    """A witness may only move forward: it already cosigned a larger tree."""

    code = Code.COSIGNATURE_OUTDATED


class NoCheckpointError(AuditLogError):
    code = Code.NOT_FOUND


# --- leaves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    index: int
    type: str
    at: datetime
    actor_official: str | None
    actor_jkt: str | None
    department: str | None
    document: str | None
    leaf: bytes
    details_hash: bytes
    details: bytes | None  # canonical JSON, None once erased
    salt: bytes | None
    erased_at: datetime | None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> LogEntry:
        return cls(
            index=row["idx"],
            type=row["type"],
            at=row["at"],
            actor_official=row["actor_official"],
            actor_jkt=row["actor_jkt"],
            department=row["department"],
            document=row["document"],
            leaf=bytes(row["leaf"]),
            details_hash=bytes(row["details_hash"]),
            details=None if row["details"] is None else bytes(row["details"]),
            salt=None if row["salt"] is None else bytes(row["salt"]),
            erased_at=row["erased_at"],
        )

    def expected_leaf(self) -> bytes:
        """The leaf these columns describe; differs from ``leaf`` if either was altered."""
        return build_leaf(
            index=self.index,
            type=self.type,
            at=self.at,
            actor_official=self.actor_official,
            actor_jkt=self.actor_jkt,
            department=self.department,
            document=self.document,
            details_hash=self.details_hash,
        )


# --- sequencing ---------------------------------------------------------------------------


async def try_acquire_sequencer(connection: DbConnection) -> bool:
    """Session-level lock: released when the connection (or its process) dies."""
    return await leases.try_advisory_lock(connection, SEQUENCER_LOCK_KEY)


async def release_sequencer(connection: DbConnection) -> None:
    await leases.advisory_unlock(connection, SEQUENCER_LOCK_KEY)


async def start_sleeping(connection: DbConnection) -> bool:
    """Call between batches before waiting for a NOTIFY; True means sleep now (from here on
    every outbox writer notifies) and call :func:`stop_sleeping` on waking. False: an event
    is waiting, or a writer is between its outbox insert and its commit; such a writer will
    not notify, so sequence again soon instead of sleeping.
    """
    if not await leases.try_advisory_lock(connection, SEQUENCER_AWAKE_KEY):
        return False
    # Taken without waiting: every writer that saw us awake has ended, so its event is visible.
    # min(id) reads the primary key, not a heap full of the last batches' dead rows.
    if await connection.fetchval("SELECT min(id) FROM audit_outbox") is not None:
        await stop_sleeping(connection)
        return False
    return True


async def stop_sleeping(connection: DbConnection) -> None:
    """Writers stop notifying: the sequencer will look at the outbox by itself."""
    await leases.advisory_unlock(connection, SEQUENCER_AWAKE_KEY)


async def log_size(connection: DbConnection) -> int:
    size = await connection.fetchval("SELECT COALESCE(max(idx) + 1, 0) FROM audit_log")
    return int(size)


async def fetch_nodes(
    connection: DbConnection, nodes: Sequence[merkle.NodeId]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes of ``nodes`` in one indexed query (missing ones are simply absent)."""
    if not nodes:
        return {}
    rows = await connection.fetch(
        "SELECT n.level, n.idx, n.hash FROM audit_nodes n"
        " JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx)"
        " ON n.level = w.level AND n.idx = w.idx",
        [n.level for n in nodes],
        [n.index for n in nodes],
    )
    return {(row["level"], row["idx"]): bytes(row["hash"]) for row in rows}


async def fetch_node_ranges(
    connection: DbConnection, ranges: Mapping[int, tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes with ``low <= idx <= high`` at each level of ``ranges`` (level ->
    (low, high)): one range scan per level, for the verifier's bulk reads."""
    levels = sorted(ranges)
    rows = await connection.fetch(
        "SELECT n.level, n.idx, n.hash FROM audit_nodes n"
        " JOIN unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)"
        " ON n.level = r.level AND n.idx BETWEEN r.lo AND r.hi",
        levels,
        [ranges[level][0] for level in levels],
        [ranges[level][1] for level in levels],
    )
    return {(row["level"], row["idx"]): bytes(row["hash"]) for row in rows}


async def load_frontier(connection: DbConnection, size: int) -> merkle.Frontier:
    ids = merkle.frontier_node_ids(size)
    return merkle.frontier_from_nodes(size, await fetch_nodes(connection, ids))


async def root_at(connection: DbConnection, size: int) -> bytes:
    return (await load_frontier(connection, size)).root()


async def sequence_batch(
    connection: DbConnection,
    *,
    limit: int = DEFAULT_BATCH,
) -> int:
    """Move up to ``limit`` outbox events into the log; returns how many. Hold the lock
    first, and run it in a transaction of its own: the events leave the outbox and enter the
    log in it, so a crash anywhere loses and duplicates nothing."""
    if not connection.is_in_transaction():
        raise RuntimeError("a batch is sequenced inside its own transaction")
    # The oldest events leave the outbox in this transaction and enter the log in it too:
    # a crash or an error anywhere rolls the delete back with the rest.
    rows = sorted(
        await connection.fetch(
            # ARRAY(...): index scans whatever the outbox's size (IN would hash-join it).
            "DELETE FROM audit_outbox WHERE id = ANY(ARRAY("
            "SELECT id FROM audit_outbox ORDER BY id LIMIT $1)) RETURNING id, type, at,"
            " actor_official, actor_jkt, department, document, details",
            limit,
        ),
        key=lambda row: int(row["id"]),
    )
    if not rows:
        return 0
    size = await log_size(connection)
    frontier = await load_frontier(connection, size)
    records: list[tuple[Any, ...]] = []
    leaf_hashes: list[bytes] = []
    for offset, row in enumerate(rows):
        canonical = canonical_details(row["details"])
        salt = secrets.token_bytes(SALT_SIZE)
        digest = details_hash(salt, canonical)
        leaf = build_leaf(
            index=size + offset,
            type=row["type"],
            at=row["at"],
            actor_official=row["actor_official"],
            actor_jkt=row["actor_jkt"],
            department=row["department"],
            document=row["document"],
            details_hash=digest,
        )
        leaf_hashes.append(merkle.leaf_hash(leaf))
        records.append(
            (
                size + offset,
                row["id"],
                row["type"],
                row["at"],
                row["actor_official"],
                row["actor_jkt"],
                row["department"],
                row["document"],
                leaf,
                digest,
                canonical,
                salt,
            )
        )
    appended = merkle.append_leaves(frontier, leaf_hashes)
    nodes = list(appended.new_nodes.items())
    # Entries and new nodes in one statement: one round trip, whatever the batch size.
    await connection.execute(
        _INSERT_BATCH,
        *(list(column) for column in zip(*records, strict=True)),
        [n.level for n, _ in nodes],
        [n.index for n, _ in nodes],
        [h for _, h in nodes],
    )
    return len(rows)


# --- proofs -------------------------------------------------------------------------------


async def _check_size(connection: DbConnection, tree_size: int) -> None:
    size = await log_size(connection)
    if tree_size > size:
        raise merkle.InvalidProofRequestError(f"the log has {size} entries, not {tree_size}")


async def inclusion_proof(connection: DbConnection, index: int, tree_size: int) -> list[bytes]:
    """O(log n) node reads: perfect subtrees never change once stored."""
    plan = merkle.inclusion_plan(index, tree_size)
    await _check_size(connection, tree_size)
    return plan.assemble(await fetch_nodes(connection, plan.needed_nodes))


async def consistency_proof(connection: DbConnection, old_size: int, new_size: int) -> list[bytes]:
    plan = merkle.consistency_plan(old_size, new_size)
    await _check_size(connection, new_size)
    return plan.assemble(await fetch_nodes(connection, plan.needed_nodes))


# --- checkpoints --------------------------------------------------------------------------


def log_origin(public_url: str) -> str:
    """``host[:port]/audit``: a schema-less origin line as C2SP tlog-checkpoint recommends."""
    return f"{urlsplit(public_url).netloc}/audit"


def note_text(note: str) -> str:
    """The signed body of a note (everything up to the blank line before the signatures)."""
    split = note.rfind("\n\n")
    return note[: split + 1] if split >= 0 else note


@dataclass(frozen=True, repr=False)
class CheckpointSigner:
    """The log's Ed25519 key (key store purpose ``checkpoint``) and the platform TSA."""

    origin: str
    key: Ed25519PrivateKey = field(repr=False)
    timestamper: Timestamper = field(repr=False)

    def __repr__(self) -> str:
        return f"CheckpointSigner(origin={self.origin!r})"

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_public_key(self.origin, self.key.public_key())

    def timestamp(self, data: bytes, now: datetime) -> bytes:
        """An RFC 3161 token (DER ContentInfo, TSA certificate included) over SHA-256(data),
        from the platform's one timestamper; serials are random so that they never meet
        those of the sequence-numbered TSA endpoint."""
        try:
            return self.timestamper.token(data, serial_number=random_serial(), now=now)
        except TsaResponseError as refused:
            raise AuditLogError(
                "the platform TSA refused to time-stamp the checkpoint"
            ) from refused


@dataclass(frozen=True)
class Cosignature:
    official: str | None
    verifier_key: str
    signature_line: str
    tree_size: int
    created_at: datetime


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    tree_size: int
    root_hash: bytes
    note: str
    timestamp_token: bytes
    created_at: datetime
    cosignatures: tuple[Cosignature, ...] = ()


def _checkpoint(row: asyncpg.Record, cosignatures: Iterable[Cosignature] = ()) -> StoredCheckpoint:
    return StoredCheckpoint(
        id=row["id"],
        tree_size=row["tree_size"],
        root_hash=bytes(row["root_hash"]),
        note=row["note"],
        timestamp_token=bytes(row["timestamp_token"]),
        created_at=row["created_at"],
        cosignatures=tuple(cosignatures),
    )


async def _cosignatures(connection: DbConnection, checkpoint_id: int) -> list[Cosignature]:
    rows = await connection.fetch(
        "SELECT official, verifier_key, signature_line, tree_size, created_at"
        " FROM audit_cosignatures WHERE checkpoint_id = $1 ORDER BY id",
        checkpoint_id,
    )
    return [Cosignature(**dict(row.items())) for row in rows]


async def latest_checkpoint(connection: DbConnection) -> StoredCheckpoint | None:
    row = await connection.fetchrow(
        "SELECT * FROM audit_checkpoints ORDER BY tree_size DESC, id DESC LIMIT 1"
    )
    if row is None:
        return None
    return _checkpoint(row, await _cosignatures(connection, row["id"]))


async def list_checkpoints(
    connection: DbConnection, *, offset: int = 0, limit: int | None = None
) -> list[StoredCheckpoint]:
    """Kept checkpoints, smallest tree first (without cosignatures): every one, or ``limit``
    of them from position ``offset``."""
    rows = await connection.fetch(
        "SELECT * FROM audit_checkpoints ORDER BY tree_size, id OFFSET $1 LIMIT $2",
        offset,
        limit,
    )
    return [_checkpoint(row) for row in rows]


async def create_checkpoint(
    connection: DbConnection, signer: CheckpointSigner, now: datetime
) -> StoredCheckpoint | None:
    """Sign the current tree if it grew since the last checkpoint; None otherwise. Run it in
    a repeatable-read transaction, so the size, the root and the last checkpoint agree."""
    if not connection.is_in_transaction():
        raise RuntimeError("a checkpoint is made inside a repeatable-read transaction")
    size = await log_size(connection)
    last = await connection.fetchval("SELECT max(tree_size) FROM audit_checkpoints")
    if size == 0 or (last is not None and last >= size):
        return None
    root = await root_at(connection, size)
    note = sign_note(format_checkpoint(signer.origin, size, root), signer.origin, signer.key)
    token = signer.timestamp(note.encode("utf-8"), now)
    row = await connection.fetchrow(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, note, timestamp_token,"
        " created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *",
        size,
        root,
        note,
        token,
        now,
    )
    assert row is not None
    return _checkpoint(row)


def _signature_line_of(note: str, verifier: NoteVerifier) -> str:
    block = note[note.rfind("\n\n") + 2 :]
    for line in block.splitlines():
        name, _, b64 = line.removeprefix("\u2014 ").partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            continue
        if name == verifier.name and raw[:4] == verifier.key_id:
            return line
    raise CheckpointUnknownError("the note carries no signature by the given key")


async def add_cosignature(
    connection: DbConnection,
    cosigned_note: str,
    witness_key: str,
    *,
    official: str | None,
    now: datetime,
) -> Cosignature:
    """Keep a witness's signature of one of our checkpoints (idempotent per key), in the
    caller's transaction (its lock on the witness key lasts until that commits).

    The note must verify with ``witness_key`` (the C2SP verifier key form); its text must be
    a checkpoint this log issued; a witness that cosigned a larger tree cannot go back.
    Raises signed_note errors for bad keys and signatures.
    """
    if not connection.is_in_transaction():
        raise AuditLogError("add_cosignature runs inside the caller's transaction")
    verifier = parse_verifier_key(witness_key)
    opened = open_note(cosigned_note, [verifier])
    parsed = parse_checkpoint(opened.text)
    line = _signature_line_of(cosigned_note, verifier)
    rows = await connection.fetch(
        "SELECT id, note FROM audit_checkpoints WHERE tree_size = $1 AND root_hash = $2"
        " ORDER BY id",
        parsed.size,
        parsed.root_hash,
    )
    match = next((r for r in rows if note_text(r["note"]) == opened.text), None)
    if match is None:
        raise CheckpointUnknownError("this log issued no such checkpoint")
    # Serialise cosignatures by one witness key so two requests cannot race past the check.
    await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", verifier.verifier_key)
    furthest = await connection.fetchval(
        "SELECT max(tree_size) FROM audit_cosignatures WHERE verifier_key = $1",
        verifier.verifier_key,
    )
    if furthest is not None and furthest > parsed.size:
        raise CosignatureOutdatedError(
            f"this key already cosigned a tree of size {furthest} > {parsed.size}"
        )
    await connection.execute(
        "INSERT INTO audit_cosignatures (checkpoint_id, official, verifier_key,"
        " signature_line, tree_size, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (checkpoint_id, verifier_key) DO NOTHING",
        match["id"],
        official,
        verifier.verifier_key,
        line,
        parsed.size,
        now,
    )
    row = await connection.fetchrow(
        "SELECT official, verifier_key, signature_line, tree_size, created_at"
        " FROM audit_cosignatures WHERE checkpoint_id = $1 AND verifier_key = $2",
        match["id"],
        verifier.verifier_key,
    )
    assert row is not None
    return Cosignature(**dict(row.items()))


# --- reading entries ----------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFilter:
    """What a caller asked for; ``visible_department`` None means every department."""

    document: str | None = None
    department: str | None = None
    actor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    visible_department: str | None = None


async def list_entries(
    connection: DbConnection, query: EntryFilter, *, after: int | None, limit: int
) -> list[LogEntry]:
    """Entries in index order, ``after`` excluded (keyset pagination)."""
    clauses: list[str] = []
    params: list[Any] = []

    def where(sql: str, value: Any) -> None:
        params.append(value)
        clauses.append(sql.format(f"${len(params)}"))

    for column, value in (
        ("document", query.document),
        ("department", query.department),
        ("actor_official", query.actor),
        ("type", query.type),
        ("department", query.visible_department),
    ):
        if value is not None:
            where(f"{column} = {{}}", value)
    if query.since is not None:
        where("at >= {}", query.since)
    if query.until is not None:
        where("at < {}", query.until)
    if after is not None:
        where("idx > {}", after)
    params.append(limit)
    sql = (
        f"SELECT {_ENTRY_COLUMNS} FROM audit_log"  # noqa: S608 - columns and clauses are ours
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + f" ORDER BY idx LIMIT ${len(params)}"
    )
    return [LogEntry.from_record(row) for row in await connection.fetch(sql, *params)]


async def get_entry(connection: DbConnection, index: int) -> LogEntry | None:
    row = await connection.fetchrow(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_log WHERE idx = $1",  # noqa: S608
        index,
    )
    return None if row is None else LogEntry.from_record(row)


async def index_of_event(connection: DbConnection, outbox_id: int) -> int | None:
    """The log index the sequencer gave an outbox event; None until it has sequenced it."""
    index = await connection.fetchval("SELECT idx FROM audit_log WHERE outbox_id = $1", outbox_id)
    return None if index is None else int(index)


async def entries_range(connection: DbConnection, begin: int, end: int) -> list[LogEntry]:
    """Rows with ``begin <= idx < end`` as stored (for the verifier: gaps stay visible)."""
    rows = await connection.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_log"  # noqa: S608
        " WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        begin,
        end,
    )
    return [LogEntry.from_record(row) for row in rows]


# --- erasure and flood aggregation --------------------------------------------------------


async def erase_details(
    connection: DbConnection,
    *,
    indices: Sequence[int] = (),
    actor: str | None = None,
    document: str | None = None,
    now: datetime,
) -> int:
    """Drop details and salt (run as the owner); the leaf and its ``details_hash`` stay."""
    if not indices and actor is None and document is None:
        raise AuditLogError("say which entries to erase")
    result = await connection.execute(
        "UPDATE audit_log SET details = NULL, salt = NULL, erased_at = $1"
        " WHERE details IS NOT NULL AND (idx = ANY($2::bigint[])"
        " OR actor_official = $3 OR document = $4)",
        now,
        list(indices),
        actor,
        document,
    )
    return int(result.split()[-1])
