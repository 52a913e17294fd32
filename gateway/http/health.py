"""Readiness: whether this process can serve, checked part by part (database, object
store, seal font) so that one answer names everything that is missing."""

from __future__ import annotations

import asyncio

import asyncpg

from seals.image import seal_drawing_problem
from storage.db import ping
from storage.objects import ObjectNotFound, ObjectStore

READY_TIMEOUT_SECONDS = 2.0
# A well-formed key that is never issued: "not found" proves the store answers.
PROBE_OBJECT_KEY = "0" * 32
OK = "ok"


class HealthService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        objects: ObjectStore,
        *,
        timeout_seconds: float = READY_TIMEOUT_SECONDS,
    ) -> None:
        self._pool = pool
        self._objects = objects
        self._timeout = timeout_seconds

    async def checks(self) -> dict[str, str]:
        """Every check runs; each says ``ok`` or what is wrong (never raises)."""
        return {
            "database": await self._database(),
            "objects": await self._object_store(),
            "seal_font": seal_drawing_problem(draw=False) or OK,
        }

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._pool.acquire() as connection:
                    await ping(connection)
        except Exception:  # any failure at all means "not ready", never a 500
            return "the database is not reachable"
        return OK

    async def _object_store(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await self._objects.stat(PROBE_OBJECT_KEY)
        except ObjectNotFound:
            pass
        except Exception:
            return "the object store is not reachable"
        return OK
