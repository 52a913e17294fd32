"""Wake-ups for long-polls and event streams, across every gateway process.

A committed send NOTIFYs ``sealhub_deliveries`` with the document id; each process keeps
one LISTEN connection, asks which departments the document went to, and wakes the
waiters of those departments. Waiters then re-read the database: the notification only
says "look again", so a lost or duplicated one costs a query, never a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from gateway.background import Listener
from gateway.http.middleware import METRICS
from storage import documents, identity

log = logging.getLogger(__name__)
RECONNECT_DELAY_SECONDS = 1.0


class InboxHub:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: Listener | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._closing = False

    @contextlib.asynccontextmanager
    async def waiting(self, department: str) -> AsyncIterator[asyncio.Event]:
        """An event set when something new may have arrived for *department*."""
        event = asyncio.Event()
        self._waiters[department].add(event)
        try:
            yield event
        finally:
            self._waiters[department].discard(event)
            if not self._waiters[department]:
                del self._waiters[department]

    @property
    def waiter_count(self) -> int:
        return sum(len(events) for events in self._waiters.values())

    def wake(self, departments: list[str]) -> None:
        for department in departments:
            for event in self._waiters.get(department, ()):
                event.set()

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """The gateway is stopping: every waiter wakes and open event streams end now,
        instead of holding the shutdown until aiohttp's timeout cancels them."""
        self._closing = True
        self.wake_all()

    def wake_all(self) -> None:
        """After a reconnect, notifications may have been missed: everyone looks again."""
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def _on_document(self, document_id: uuid.UUID) -> None:
        async with self._pool.acquire() as connection:
            recipients = await documents.recipients_of(connection, document_id)
        self.wake(recipients)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if not self._waiters:
            return
        try:
            document_id = uuid.UUID(str(payload))
        except ValueError:
            return
        task = asyncio.get_running_loop().create_task(self._on_document(document_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def start(self, dsn: str) -> None:
        self._listener = Listener(
            dsn,
            {
                documents.DELIVERY_CHANNEL: self._notified,
                identity.SESSIONS_CHANNEL: lambda *_args: self.wake_all(),
            },
            name="inbox-listener",
            on_connect=self.wake_all,
            reconnect_delay=RECONNECT_DELAY_SECONDS,
            logger=log,
        )
        self._listener.start()

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        self.wake_all()


INBOX: web.AppKey[InboxHub] = web.AppKey("inbox", InboxHub)


def install_inbox(app: web.Application, hub: InboxHub, dsn: str) -> None:
    """*hub* listens for the app's lifetime (its waiters are the exchange service's)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        app[INBOX] = hub
        app[METRICS].inbox_waiters.set_function(lambda: hub.waiter_count)
        await hub.start(dsn)
        try:
            yield
        finally:
            await hub.stop()

    async def stopping(app: web.Application) -> None:
        hub.close()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(stopping)
