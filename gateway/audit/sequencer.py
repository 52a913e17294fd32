"""The audit sequencer and checkpointer, run as a background task of every gateway process.

Every process runs this loop; only the holder of the sequencer advisory lock does the work,
the others retry the lock every ``poll_interval`` and take over when the holder dies. The
holder, when the outbox is empty, sleeps until a NOTIFY on commit of outbox rows (and polls
anyway, should a notification be lost while reconnecting); while it is awake writers do not
notify (see ``audit_log.start_sleeping``), so when it cannot sleep it looks again after a few
milliseconds. Checkpoints: when the log grew, at most every ``checkpoint_interval``, measured
on the injectable clock.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.background import CONNECTION_LOST, LeaderLoop, run_with_app
from gateway.runtime import RUNTIME, Runtime, clock_of
from keys.clock import SYSTEM_CLOCK, Clock
from keys.keystore import CHECKPOINT, KeyStore
from storage import audit_log
from storage.db import DbConnection
from storage.signed_note import NoteVerifier

log = logging.getLogger("sealhub.audit")

# While outbox writers are in flight the sequencer cannot sleep (they would not notify it):
# it looks again after this delay, doubled up to the maximum while nothing arrives. 20 ms
# rather than 5 ms: fewer, larger batches leave the two cores to the writers (bench_audit,
# two A/B runs of 40,000 events each: +19 % appends with Python writers, +6 % with pgbench),
# for at most 20 ms more before an event has its index.
BUSY_DELAY_MIN = 0.02
BUSY_DELAY_MAX = 0.1


def checkpoint_key(keystore: KeyStore) -> Ed25519PrivateKey:
    """The active Ed25519 checkpoint key, created on first use."""
    keystore.ensure(CHECKPOINT, "EdDSA")
    key = keystore.get_private(CHECKPOINT)
    if not isinstance(key, Ed25519PrivateKey):
        raise audit_log.AuditLogError("the checkpoint key must be Ed25519")
    return key


def checkpoint_signer(runtime: Runtime) -> audit_log.CheckpointSigner:
    return audit_log.CheckpointSigner(
        origin=audit_log.log_origin(runtime.settings.public_origin),
        key=checkpoint_key(runtime.pki.keystore),
        timestamper=runtime.pki.timestamper,
    )


def log_verifier(runtime: Runtime) -> NoteVerifier:
    origin = audit_log.log_origin(runtime.settings.public_origin)
    return NoteVerifier.from_public_key(origin, checkpoint_key(runtime.pki.keystore).public_key())


async def sequence_pending(
    connection: DbConnection, *, batch: int = audit_log.DEFAULT_BATCH
) -> int:
    """Sequence until the outbox is empty, one transaction per batch; returns how many
    entries were added. Hold the sequencer lock first."""
    total = 0
    while True:
        async with connection.transaction():
            moved = await audit_log.sequence_batch(connection, limit=batch)
        total += moved
        if moved < batch:
            return total


async def make_checkpoint(
    connection: DbConnection, signer: audit_log.CheckpointSigner, now: datetime
) -> audit_log.StoredCheckpoint | None:
    """A signed checkpoint of the tree if it grew since the last one, in one repeatable-read
    transaction (size, root and the last checkpoint seen at one instant)."""
    async with connection.transaction(isolation="repeatable_read"):
        return await audit_log.create_checkpoint(connection, signer, now)


class AuditService:
    """Sequencing and checkpointing in the process that leads the sequencer lock; :meth:`run`
    until cancelled."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        signer: audit_log.CheckpointSigner,
        *,
        clock: Clock = SYSTEM_CLOCK,
        checkpoint_interval: timedelta = timedelta(seconds=5),
        poll_interval: float = 2.0,
        batch: int = audit_log.DEFAULT_BATCH,
    ) -> None:
        self._signer = signer
        self._clock = clock
        self._checkpoint_interval = checkpoint_interval
        self._poll_interval = poll_interval
        self._batch = batch
        self._last_checkpoint_at: datetime | None = None
        self._busy_delay = BUSY_DELAY_MIN
        self.loop = LeaderLoop(
            audit_log.SEQUENCER_LOCK_KEY,
            self._step,
            poll_interval,
            acquire=pool.acquire,
            name="audit-sequencer",
            leading=self._leading,
            logger=log,
        )

    def __repr__(self) -> str:
        return f"AuditService(sequencer={self.is_sequencer})"

    @property
    def is_sequencer(self) -> bool:
        return self.loop.is_leader

    def wake(self) -> None:
        self.loop.wake()

    def _on_notify(self, *_: Any) -> None:
        self.loop.wake()

    async def run(self) -> None:
        await self.loop.run()

    @contextlib.asynccontextmanager
    async def _leading(self, connection: DbConnection) -> AsyncIterator[None]:
        """While leading: woken by the outbox writers' NOTIFY, checkpoints from the last one."""
        await connection.add_listener(audit_log.NOTIFY_CHANNEL, self._on_notify)
        try:
            latest = await audit_log.latest_checkpoint(connection)
            self._last_checkpoint_at = None if latest is None else latest.created_at
            self._busy_delay = BUSY_DELAY_MIN
            yield
        finally:
            if not connection.is_closed():
                with contextlib.suppress(*CONNECTION_LOST):
                    await connection.remove_listener(audit_log.NOTIFY_CHANNEL, self._on_notify)

    async def _step(self, connection: DbConnection) -> float:
        """One batch; returns the seconds until the next (0 after a sleep cut short)."""
        moved = await sequence_pending(connection, batch=self._batch)
        timeout = min(self._poll_interval, await self._maybe_checkpoint(connection))
        if await audit_log.start_sleeping(connection):
            # Writers notify from now on; the poll is a safety net.
            await self.loop.wait(timeout)
            await audit_log.stop_sleeping(connection)
            self._busy_delay = BUSY_DELAY_MIN
            return 0.0
        # Writers in flight do not notify: look again soon (sooner while busy).
        self._busy_delay = BUSY_DELAY_MIN if moved else min(2 * self._busy_delay, BUSY_DELAY_MAX)
        return min(timeout, self._busy_delay)

    async def _maybe_checkpoint(self, connection: DbConnection) -> float:
        """Checkpoint if due; returns the seconds until the next one could be due."""
        now = self._clock()
        if self._last_checkpoint_at is not None:
            remaining = self._last_checkpoint_at + self._checkpoint_interval - now
            if remaining > timedelta(0):
                return remaining.total_seconds()
        made = await make_checkpoint(connection, self._signer, now)
        if made is not None:
            self._last_checkpoint_at = now
            return self._checkpoint_interval.total_seconds()
        return self._poll_interval


AUDIT_SERVICE: web.AppKey[AuditService] = web.AppKey("audit_service", AuditService)


def install_audit_service(app: web.Application) -> None:
    """Register the service and its background task (call from ``create_app``)."""
    runtime = app[RUNTIME]
    service = AuditService(runtime.pool, checkpoint_signer(runtime), clock=clock_of(app))
    app[AUDIT_SERVICE] = service
    run_with_app(app, service.loop)
