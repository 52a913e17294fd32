"""Filesystem specifics: permissions, temp files, and what lies outside the root."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keys.master import MasterKey
from storage.objects import FilesystemObjectStore, FilesystemStoreConfig, ObjectNotFound, open_store

from ._support import read_all, stream_of

LATER = timedelta(minutes=5)


@pytest.fixture
async def fs_store(tmp_path: Path) -> FilesystemObjectStore:
    store = await open_store(FilesystemStoreConfig(tmp_path / "root"), MasterKey.generate())
    assert isinstance(store, FilesystemObjectStore)
    return store


async def test_modes_are_private(fs_store: FilesystemObjectStore) -> None:
    result = await fs_store.put(stream_of(b"secret"), max_bytes=10)
    path = fs_store.path_for(result.key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(fs_store.root.stat().st_mode) == 0o700


async def test_foreign_files_are_ignored(fs_store: FilesystemObjectStore) -> None:
    result = await fs_store.put(stream_of(b"real"), max_bytes=10)
    fan_out = fs_store.path_for(result.key).parent
    (fan_out / ".tmp-leftover").write_bytes(b"partial")
    (fan_out / "README").write_text("not an object")
    (fs_store.root / "zz").mkdir()
    (fs_store.root / "zz" / ("0" * 32)).write_bytes(b"wrong fan-out name")
    assert [key async for key in fs_store.list_keys(datetime.now(UTC) + LATER)] == [result.key]


async def test_stale_temp_files_respect_their_age(fs_store: FilesystemObjectStore) -> None:
    await fs_store.put(stream_of(b"real"), max_bytes=10)
    leftover = next(fs_store.root.iterdir()) / ".tmp-old"
    leftover.write_bytes(b"partial")
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(leftover, (hour_ago, hour_ago))
    assert await fs_store.remove_stale_temp_files(datetime.now(UTC) - timedelta(hours=2)) == 0
    assert await fs_store.remove_stale_temp_files(datetime.now(UTC) - timedelta(minutes=30)) == 1
    assert not leftover.exists()


async def test_symlinked_object_outside_root_is_not_followed_for_listing(
    fs_store: FilesystemObjectStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (fs_store.root / "ab").symlink_to(outside, target_is_directory=True)
    assert [key async for key in fs_store.list_keys(datetime.now(UTC) + LATER)] == []


def test_path_for_refuses_traversal(fs_store: FilesystemObjectStore) -> None:
    for key in ("../../etc/passwd", "ab/../../x", "", "0" * 32 + "/x"):
        with pytest.raises(ObjectNotFound):
            fs_store.path_for(key)


async def test_read_of_removed_file_is_not_found(fs_store: FilesystemObjectStore) -> None:
    result = await fs_store.put(stream_of(b"gone soon"), max_bytes=10)
    fs_store.path_for(result.key).unlink()
    with pytest.raises(ObjectNotFound):
        await read_all(fs_store, result.key)
