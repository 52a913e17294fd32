"""A pool of PDF workers that lives exactly as long as the app: opened when it starts,
closed (its processes joined) when it stops. Sealing and verification get one each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from seals.pool import SealWorkerPool, WorkerLimits


class Workers:
    def __init__(self, count: int, limits: WorkerLimits | None = None) -> None:
        self._count = count
        self._limits = limits
        self._pool: SealWorkerPool | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The worker processes, started on entry and joined on exit."""
        self._pool = SealWorkerPool(workers=self._count, limits=self._limits)
        try:
            yield
        finally:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.close)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: ``app.cleanup_ctx.append(workers.lifetime)``."""
        async with self.running():
            yield

    @property
    def pool(self) -> SealWorkerPool:
        if self._pool is None:
            raise RuntimeError("the PDF workers run only while the app does")
        return self._pool
