"""StagedObjects: what a unit of work put is kept when it completes, gone when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keys.master import MasterKey
from storage.objects import FilesystemStoreConfig, ObjectNotFound, ObjectStore, open_store
from storage.objects.staged import StagedObjects
from tests.objectstore._support import stream_of


@pytest.fixture
async def fs_store(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = await open_store(FilesystemStoreConfig(root=tmp_path / "objects"), MasterKey.generate())
    try:
        yield store
    finally:
        await store.aclose()


async def _exists(store: ObjectStore, key: str) -> bool:
    try:
        await store.stat(key)
    except ObjectNotFound:
        return False
    return True


async def test_completed_block_keeps_its_objects(fs_store: ObjectStore) -> None:
    async with StagedObjects(fs_store) as staged:
        first = await staged.put(stream_of(b"draft"), max_bytes=100)
        second = await staged.put(stream_of(b"sealed"), max_bytes=100)
    assert staged.keys == (first.key, second.key)
    assert await _exists(fs_store, first.key)
    assert await _exists(fs_store, second.key)


async def test_failing_block_deletes_every_object_and_reraises(fs_store: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="database said no"):
        async with StagedObjects(fs_store) as staged:
            first = await staged.put(stream_of(b"draft"), max_bytes=100)
            second = await staged.put(stream_of(b"sealed"), max_bytes=100)
            raise RuntimeError("database said no")
    assert not await _exists(fs_store, first.key)
    assert not await _exists(fs_store, second.key)
    assert staged.keys == ()


async def test_cancelled_block_cleans_up_too(fs_store: ObjectStore) -> None:
    put: list[str] = []
    started = asyncio.Event()

    async def unit_of_work() -> None:
        async with StagedObjects(fs_store) as staged:
            put.append((await staged.put(stream_of(b"draft"), max_bytes=100)).key)
            started.set()
            await asyncio.Event().wait()  # the "commit" that never comes

    task = asyncio.create_task(unit_of_work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await _exists(fs_store, put[0])


async def test_discard_drops_objects_on_a_path_that_does_not_need_them(
    fs_store: ObjectStore,
) -> None:
    async with StagedObjects(fs_store) as staged:
        unneeded = await staged.put(stream_of(b"repeat of an earlier send"), max_bytes=100)
        await staged.discard()
        kept = await staged.put(stream_of(b"another"), max_bytes=100)
    assert not await _exists(fs_store, unneeded.key)
    assert await _exists(fs_store, kept.key)
