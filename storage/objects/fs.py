"""Filesystem backend: one encrypted file per object under ``root/<key[:2]>/<key>``.

Paths are built only from keys that passed :func:`check_object_key` (32 lowercase hex
characters), so no input can name a file outside the root. A put writes a hidden temp file
in the object's own fan-out directory, fsyncs it, renames it into place and fsyncs the
directory: after a crash an object is either complete or absent, and leftover temp files
are never listed (:meth:`FilesystemObjectStore.remove_stale_temp_files` reclaims them).
All blocking calls run in worker threads; reads and writes move bounded chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from keys.files import fsync_dir
from keys.master import MasterKey
from storage.objects._engine import (
    SealedStore,
    StoredHead,
    StoredWriter,
    check_object_key,
    is_object_key,
    require_aware,
)
from storage.objects.api import ObjectNotFound, StorageUnavailable
from storage.objects.crypto import MAX_HEADER_SIZE

TEMP_PREFIX = ".tmp-"
READ_CHUNK_SIZE = 1024 * 1024
# Flush while writing, so the disk works alongside the encryption instead of all at once
# in the final fsync (also keeps dirty page cache small under many uploads).
SYNC_EVERY = 16 * 1024 * 1024
_FANOUT_CHARS = frozenset("0123456789abcdef")

log = logging.getLogger("sealhub.objects")
_P = ParamSpec("_P")
_T = TypeVar("_T")


class _FileWriter(StoredWriter):
    def __init__(self, final: Path) -> None:
        self._final = final
        self._temp = final.with_name(f"{TEMP_PREFIX}{final.name}-{secrets.token_hex(4)}")
        self._fd: int | None = None
        self._unsynced = 0

    def create(self) -> None:
        directory = self._final.parent
        if not directory.is_dir():
            directory.mkdir(mode=0o700, exist_ok=True)
            fsync_dir(directory.parent)
        self._fd = os.open(
            self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY:
            os.fdatasync(self._fd)
            self._unsynced = 0

    def _commit(self) -> None:
        assert self._fd is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.rename(self._temp, self._final)
        fsync_dir(self._final.parent)

    def _abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)

    async def write(self, data: bytes) -> None:
        if data:
            await _io(self._write, data)

    async def commit(self) -> None:
        await _io(self._commit)

    async def abort(self) -> None:
        await asyncio.to_thread(self._abort)


async def _io(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run blocking file I/O in a thread; disk failures become ``storage_unavailable``."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except (FileNotFoundError, ObjectNotFound):
        raise
    except OSError as exc:
        raise StorageUnavailable(f"filesystem error: {exc.strerror or exc}") from exc


class FilesystemObjectStore(SealedStore):
    def __init__(
        self, root: Path, master_key: MasterKey, previous_keys: Sequence[MasterKey] = ()
    ) -> None:
        super().__init__(master_key, previous_keys)
        self.root = root

    def __repr__(self) -> str:
        return f"FilesystemObjectStore(root={str(self.root)!r})"

    async def prepare(self) -> None:
        """Create the root (0700) if missing."""
        await _io(self.root.mkdir, mode=0o700, parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """Where *key* lives (operators and tests); refuses malformed keys."""
        check_object_key(key)
        return self.root / key[:2] / key

    async def _begin_write(self, key: str) -> StoredWriter:
        writer = _FileWriter(self.path_for(key))
        try:
            await _io(writer.create)
        except FileNotFoundError as exc:
            # The path is for the operator's log, never for the client's answer.
            log.error("object store root is missing: %s", self.root)
            raise StorageUnavailable("the object store root is missing") from exc
        return writer

    async def _read_head(self, key: str) -> StoredHead:
        path = self.path_for(key)

        def read() -> StoredHead:
            with open(path, "rb", buffering=0) as handle:
                info = os.fstat(handle.fileno())
                data = handle.read(MAX_HEADER_SIZE)
            return StoredHead(
                data=data,
                stored_size=info.st_size,
                created_at=datetime.fromtimestamp(info.st_mtime, UTC),
            )

        try:
            return await _io(read)
        except FileNotFoundError:
            raise ObjectNotFound("no object with this key") from None

    async def _read_stored(self, key: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        path = self.path_for(key)
        try:
            handle = await _io(open, path, "rb", buffering=0)
        except FileNotFoundError:
            raise ObjectNotFound("no object with this key") from None
        try:
            position = start
            while position < end:
                data = await _io(
                    os.pread, handle.fileno(), min(READ_CHUNK_SIZE, end - position), position
                )
                if not data:
                    return
                position += len(data)
                yield data
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        path = self.path_for(key)

        def unlink() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

        await _io(unlink)

    async def list_keys(self, older_than: datetime) -> AsyncIterator[str]:
        cutoff = require_aware(older_than)
        for directory in await _io(self._fanout_dirs):
            for name in await _io(_old_entries, directory, cutoff, temp=False):
                yield name

    async def remove_stale_temp_files(self, older_than: datetime) -> int:
        """Delete temp files of puts that died (crash, kill) before *older_than*."""
        cutoff = require_aware(older_than)
        removed = 0
        for directory in await _io(self._fanout_dirs):
            for name in await _io(_old_entries, directory, cutoff, temp=True):
                with contextlib.suppress(FileNotFoundError):
                    await _io(os.unlink, directory / name)
                    removed += 1
        return removed

    def _fanout_dirs(self) -> list[Path]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(
            Path(entry.path)
            for entry in entries
            if len(entry.name) == 2
            and set(entry.name) <= _FANOUT_CHARS
            and entry.is_dir(follow_symlinks=False)
        )


def _old_entries(directory: Path, cutoff: float, *, temp: bool) -> list[str]:
    names: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return names
    for entry in entries:
        wanted = entry.name.startswith(TEMP_PREFIX) if temp else is_object_key(entry.name)
        if not wanted:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if info.st_mtime < cutoff:
            names.append(entry.name)
    return names
