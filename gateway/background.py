"""Work a gateway process does beside its requests, for the lifetime of the app.

Three shapes, each written once here:

- :class:`LeaderLoop`: a step that must run in one process at a time. Every process runs
  the loop; the one whose connection holds the session advisory lock ``lock_key`` calls the
  step on that very connection, the others try the lock again every ``retry`` seconds.
  When the leader dies or its connection drops, PostgreSQL releases the lock and another
  process takes over (audit sequencer, supervision evaluator, object sweeper).
- :class:`Loop`: a step every process runs (the webhook worker's lanes).
- :class:`Listener`: a dedicated LISTEN connection, opened again whenever it is lost.

A step returns the seconds until it wants to run again (``None``: the loop's interval);
:meth:`wake` cuts that wait short. A step that raises is logged and retried, never fatal.
:func:`run_with_app` starts them with the app and stops them (cancelled, awaited) with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
from aiohttp import web

from storage import leases
from storage.db import APP_ROLE, DbConnection, connect

log = logging.getLogger("sealhub.background")

# What a lost database connection raises: logged as a warning, not as a bug.
CONNECTION_LOST = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

Acquire = Callable[[], AbstractAsyncContextManager[DbConnection]]
LeaderStep = Callable[[DbConnection], Awaitable[float | None]]
Step = Callable[[], Awaitable[float | None]]
Leading = Callable[[DbConnection], AbstractAsyncContextManager[object]]
# (connection, server pid, channel, payload), as asyncpg calls a listener.
NotifyCallback = Callable[[Any, int, str, object], None]


class Background:
    """A task started and stopped with the app; ``run`` until cancelled."""

    def __init__(self, name: str, logger: logging.Logger | None) -> None:
        self.name = name
        self._log = logger or log
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _Waking(Background):
    """A step's wait between runs: *interval* unless the step says otherwise, *retry* after
    a failure, cut short by :meth:`wake`."""

    def __init__(
        self, name: str, interval: float, retry: float, logger: logging.Logger | None
    ) -> None:
        super().__init__(name, logger)
        self.interval = interval
        self._retry = retry
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Run the step now instead of at the end of the current wait."""
        self._wake.set()

    async def wait(self, seconds: float) -> None:
        """Up to *seconds*, less when woken; consumes the wake-up. For steps that sleep
        in the middle (the audit sequencer sleeps between its sleeping locks)."""
        if seconds > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        else:
            await asyncio.sleep(0)
        self._wake.clear()


class Loop(_Waking):
    """*step* again and again in this process; after a failure, again in *retry* seconds."""

    def __init__(
        self,
        name: str,
        step: Step,
        interval: float,
        *,
        retry: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(name, interval, retry, logger)
        self._step = step

    async def run(self) -> None:
        while True:
            try:
                delay = await self._step()
            except Exception:
                self._log.exception("%s failed; retrying shortly", self.name)
                delay = self._retry
            await self.wait(self.interval if delay is None else delay)


class LeaderLoop(_Waking):
    """*step* on the connection holding the advisory lock *lock_key*, in one process at a time.

    ``acquire`` gives the connection (the pool's, held while leading and released between
    tries of the lock); ``leading`` is entered on becoming the leader and left on losing it
    (the sequencer listens for NOTIFY meanwhile); ``initial_delay`` postpones the first try.
    """

    def __init__(
        self,
        lock_key: int,
        step: LeaderStep,
        interval: float,
        *,
        acquire: Acquire,
        name: str,
        retry: float | None = None,
        leading: Leading | None = None,
        initial_delay: float = 0.0,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(name, interval, interval if retry is None else retry, logger)
        self.lock_key = lock_key
        self._step = step
        self._acquire = acquire
        self._leading = leading
        self._initial_delay = initial_delay
        self.is_leader = False

    def __repr__(self) -> str:
        return f"LeaderLoop({self.name!r}, leader={self.is_leader})"

    async def run(self) -> None:
        await self.wait(self._initial_delay)
        while True:
            try:
                async with self._acquire() as connection:
                    if await leases.try_advisory_lock(connection, self.lock_key):
                        await self._lead(connection)
            except CONNECTION_LOST as exc:
                self._log.warning(
                    "%s lost its database connection: %s", self.name, type(exc).__name__
                )
            except Exception:
                self._log.exception("%s failed; retrying", self.name)
            await self.wait(self._retry)

    async def _lead(self, connection: DbConnection) -> None:
        self.is_leader = True
        self._log.info("this process now leads %s", self.name)
        try:
            async with self._leading_on(connection):
                while True:
                    delay = await self._step(connection)
                    await self.wait(self.interval if delay is None else delay)
        finally:
            self.is_leader = False
            if not connection.is_closed():
                with contextlib.suppress(*CONNECTION_LOST):
                    await leases.advisory_unlock_all(connection)

    def _leading_on(self, connection: DbConnection) -> AbstractAsyncContextManager[object]:
        if self._leading is None:
            return contextlib.nullcontext()
        return self._leading(connection)


class Listener(Background):
    """LISTEN on *channels* over a connection of its own, reconnecting after a loss.

    ``on_connect`` runs after every (re)connection: notifications may have been missed
    while there was none, so whoever waits for them should look again.
    """

    def __init__(
        self,
        dsn: str,
        channels: Mapping[str, NotifyCallback],
        *,
        name: str,
        on_connect: Callable[[], object] | None = None,
        reconnect_delay: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(name, logger)
        self._dsn = dsn
        self._channels = dict(channels)
        self._on_connect = on_connect
        self._reconnect_delay = reconnect_delay

    async def run(self) -> None:
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await connect(self._dsn, role=APP_ROLE)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, ev=lost: ev.set())
                for channel, callback in self._channels.items():
                    await connection.add_listener(channel, callback)
                if self._on_connect is not None:
                    self._on_connect()
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                self._log.warning("%s lost its connection: %s", self.name, exc)
            finally:
                if connection is not None and not connection.is_closed():
                    await connection.close()
            await asyncio.sleep(self._reconnect_delay)


def run_with_app(app: web.Application, *tasks: Background) -> None:
    """Start *tasks* when *app* starts; stop them, in reverse order, when it stops."""

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        for task in tasks:
            task.start()
        try:
            yield
        finally:
            for task in reversed(tasks):
                await task.stop()

    app.cleanup_ctx.append(lifetime)
