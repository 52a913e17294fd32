"""Object first, database second, with clean-up on failure.

Every unit of work that stores bytes writes its objects before the rows that point to
them, so a crash in between leaves only an unreferenced object (the sweeper's job) and
never a row that points to nothing. When the unit of work fails on its own, the objects
it staged are deleted at once instead of waiting an hour for the sweeper::

    async with StagedObjects(store) as staged:
        draft = await staged.put(chunks, max_bytes=limit)
        async with pool.acquire() as connection, connection.transaction():
            ...  # rows that reference draft.key

If the block raises (cancellation included), the staged objects are deleted quietly and
the exception goes on; if it completes, they are kept. ``discard()`` drops them on a path
that succeeds without needing them (an idempotent repeat answered from its first run).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Sequence
from types import TracebackType

from storage.objects.api import ObjectStore, PutResult


async def delete_quietly(store: ObjectStore, keys: Sequence[str]) -> None:
    """Best effort: whatever a failed delete leaves behind, the sweeper removes later."""
    for key in keys:
        with contextlib.suppress(Exception):
            await store.delete(key)


class StagedObjects:
    """The objects one unit of work put, kept only if the unit of work completes."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._keys: list[str] = []

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._keys)

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> PutResult:
        """Store *chunks* (see :meth:`ObjectStore.put`) and remember the key for clean-up."""
        result = await self._store.put(chunks, max_bytes=max_bytes)
        self._keys.append(result.key)
        return result

    async def discard(self) -> None:
        """Delete everything staged so far (quietly) and forget it."""
        keys, self._keys = self._keys, []
        await delete_quietly(self._store, keys)

    async def __aenter__(self) -> StagedObjects:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            await self.discard()
