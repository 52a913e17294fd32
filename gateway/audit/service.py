"""The audit log as officials and witnesses use it: entries by visibility, checkpoints,
proofs, and inspectors' cosignatures.

Inspectors see every entry, everyone else the entries of their own department; an entry of
another department is the same 404 as an index that does not exist, recorded as
``access.denied``. Checkpoints, the log key and proofs reveal tree sizes and hashes only, so
they need no caller.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import asyncpg

from gateway.identity.access import AccessLog
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.principal import Caller, Principal
from gateway.paging import Page
from keys.clock import SYSTEM_CLOCK, Clock
from storage import audit_log, cosigned
from storage.audit_log import Cosignature, EntryFilter, LogEntry, StoredCheckpoint
from storage.signed_note import NoteVerifier

INSPECTOR = "inspector"


def is_inspector(caller: Principal) -> bool:
    return caller.has_any({INSPECTOR})


class AuditLogService:
    """Reads of the log and the one write officials make to it (a witness's cosignature).

    The log itself is written by the sequencer only (gateway/audit/sequencer.py)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        verifier: NoteVerifier,
        *,
        access: AccessLog,
        clock: Clock = SYSTEM_CLOCK,
        cosigned_dir: Path | None = None,
    ) -> None:
        self._pool = pool
        self._cosigned_dir = cosigned_dir
        self._verifier = verifier
        self._access = access
        self._clock = clock

    @property
    def log_key(self) -> NoteVerifier:
        """The checkpoint note verifier (C2SP form) that witnesses and relying parties use."""
        return self._verifier

    async def entries(
        self, caller: Caller, query: EntryFilter, *, after: int | None, limit: int
    ) -> Page[LogEntry]:
        """Entries in log order after index ``after``, narrowed to what *caller* may see."""
        official = caller.official
        visible = None if is_inspector(official) else official.department
        query = replace(query, visible_department=visible)
        async with self._pool.acquire() as connection:
            found = await audit_log.list_entries(connection, query, after=after, limit=limit + 1)
        return Page.of(found, limit)

    async def entry(self, caller: Caller, index: int) -> LogEntry:
        async with self._pool.acquire() as connection:
            entry = await audit_log.get_entry(connection, index)
        if entry is None:
            raise NotFound("no such audit entry")
        official = caller.official
        if not (is_inspector(official) or entry.department == official.department):
            raise await self._access.hide(caller, "other_department", entry=str(index))
        return entry

    async def latest_checkpoint(self) -> StoredCheckpoint:
        async with self._pool.acquire() as connection:
            checkpoint = await audit_log.latest_checkpoint(connection)
        if checkpoint is None:
            raise audit_log.NoCheckpointError("no checkpoint has been signed yet")
        return checkpoint

    async def checkpoints(self, *, start: int, limit: int) -> Page[StoredCheckpoint]:
        """Kept checkpoints from position ``start``, smallest tree first."""
        async with self._pool.acquire() as connection:
            found = await audit_log.list_checkpoints(connection, offset=start, limit=limit + 1)
        return Page.of(found, limit)

    async def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        async with self._pool.acquire() as connection:
            return await audit_log.inclusion_proof(connection, index, tree_size)

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        async with self._pool.acquire() as connection:
            return await audit_log.consistency_proof(connection, old_size, new_size)

    async def cosign(self, caller: Caller, note: str, verifier_key: str) -> Cosignature:
        """Keep an inspector's cosignature of a checkpoint this log issued (idempotent per
        key; a witness never goes back to a smaller tree). A copy of the cosigned note goes to
        ``cosigned_dir`` too, outside the database, so that a restore from backup that loses
        the cosignature is still seen as a rollback (:mod:`storage.cosigned`)."""
        official = caller.official
        if not is_inspector(official):
            raise Forbidden("only inspectors witness the audit log")
        async with self._pool.acquire() as connection, connection.transaction():
            kept = await audit_log.add_cosignature(
                connection, note, verifier_key, official=official.official_id, now=self._clock()
            )
        if self._cosigned_dir is not None:  # after the commit; a retry (idempotent) rewrites it
            await asyncio.to_thread(cosigned.keep, self._cosigned_dir, kept.tree_size, note)
        return kept
