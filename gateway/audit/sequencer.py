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

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.runtime import RUNTIME, Runtime
from keys.keystore import CHECKPOINT, KeyStore
from keys.tsa import TimeStampAuthority
from storage import audit_log
from storage.db import DbConnection
from storage.signed_note import NoteVerifier

log = logging.getLogger("sealhub.audit")

Clock = Callable[[], datetime]

# While outbox writers are in flight the sequencer cannot sleep (they would not notify it):
# it looks again after this delay, doubled up to the maximum while nothing arrives. 20 ms
# rather than 5 ms: fewer, larger batches leave the two cores to the writers (bench_audit,
# two A/B runs of 40,000 events each: +19 % appends with Python writers, +6 % with pgbench),
# for at most 20 ms more before an event has its index.
BUSY_DELAY_MIN = 0.02
BUSY_DELAY_MAX = 0.1


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        tsa=TimeStampAuthority(cert=runtime.pki.tsa.cert, key=runtime.pki.tsa.key),
    )


def log_verifier(runtime: Runtime) -> NoteVerifier:
    origin = audit_log.log_origin(runtime.settings.public_origin)
    return NoteVerifier.from_public_key(origin, checkpoint_key(runtime.pki.keystore).public_key())


class AuditService:
    """Sequencing and checkpointing loop; :meth:`run` until cancelled."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        signer: audit_log.CheckpointSigner,
        *,
        clock: Clock = _utc_now,
        checkpoint_interval: timedelta = timedelta(seconds=5),
        poll_interval: float = 2.0,
        batch: int = audit_log.DEFAULT_BATCH,
    ) -> None:
        self._pool = pool
        self._signer = signer
        self._clock = clock
        self._checkpoint_interval = checkpoint_interval
        self._poll_interval = poll_interval
        self._batch = batch
        self._wake = asyncio.Event()
        self._last_checkpoint_at: datetime | None = None
        self.is_sequencer = False

    def __repr__(self) -> str:
        return f"AuditService(sequencer={self.is_sequencer})"

    def wake(self) -> None:
        self._wake.set()

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                async with self._pool.acquire() as connection:
                    await self._serve(connection)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("audit sequencer lost its database connection: %s", type(exc).__name__)
            except Exception:
                log.exception("audit sequencer failed; retrying")
            self.is_sequencer = False
            await asyncio.sleep(self._poll_interval)

    async def _serve(self, connection: DbConnection) -> None:
        await connection.add_listener(audit_log.NOTIFY_CHANNEL, self._on_notify)
        busy_delay = BUSY_DELAY_MIN
        try:
            while True:
                if not self.is_sequencer:
                    self.is_sequencer = await audit_log.try_acquire_sequencer(connection)
                    if self.is_sequencer:
                        latest = await audit_log.latest_checkpoint(connection)
                        self._last_checkpoint_at = None if latest is None else latest.created_at
                        log.info("this process now sequences the audit log")
                timeout = self._poll_interval
                if self.is_sequencer:
                    self._wake.clear()
                    moved = await audit_log.sequence_pending(connection, batch=self._batch)
                    timeout = min(timeout, await self._maybe_checkpoint(connection))
                    if await audit_log.start_sleeping(connection):
                        # Writers notify from now on; the poll is a safety net.
                        await self._sleep(timeout)
                        await audit_log.stop_sleeping(connection)
                        busy_delay = BUSY_DELAY_MIN
                        continue
                    # Writers in flight do not notify: look again soon (sooner while busy).
                    busy_delay = BUSY_DELAY_MIN if moved else min(2 * busy_delay, BUSY_DELAY_MAX)
                    timeout = min(timeout, busy_delay)
                await self._sleep(timeout)
        finally:
            self.is_sequencer = False
            if not connection.is_closed():
                await connection.remove_listener(audit_log.NOTIFY_CHANNEL, self._on_notify)
                # The pool resets sessions on release; unlocking here is just explicit.
                with contextlib.suppress(asyncpg.PostgresError):
                    await connection.execute("SELECT pg_advisory_unlock_all()")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _maybe_checkpoint(self, connection: DbConnection) -> float:
        """Checkpoint if due; returns the seconds until the next one could be due."""
        now = self._clock()
        if self._last_checkpoint_at is not None:
            remaining = self._last_checkpoint_at + self._checkpoint_interval - now
            if remaining > timedelta(0):
                return remaining.total_seconds()
        made = await audit_log.create_checkpoint(connection, self._signer, now)
        if made is not None:
            self._last_checkpoint_at = now
            return self._checkpoint_interval.total_seconds()
        return self._poll_interval


AUDIT_SERVICE: web.AppKey[AuditService] = web.AppKey("audit_service", AuditService)


async def _audit_service_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[AUDIT_SERVICE].run(), name="audit-sequencer")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install_audit_service(app: web.Application) -> None:
    """Register the service and its background task (call from ``create_app``)."""
    runtime = app[RUNTIME]
    app[AUDIT_SERVICE] = AuditService(runtime.pool, checkpoint_signer(runtime))
    app.cleanup_ctx.append(_audit_service_ctx)
