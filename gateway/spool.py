"""Spool files: where a document lives on its way between the client, a worker and the store.

The gateway never holds a whole document in memory: an upload is written to a file in
``<data dir>/spool`` as it arrives, a worker reads the draft from that file and writes the
sealed PDF to another one, and the store reads it back in chunks. Files are created 0600
in a 0700 directory, removed when the request ends, and the directory is emptied when the
server starts, so a crash leaves nothing behind for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from gateway.config import Settings

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
HEADER_WINDOW = 1024


def spool_dir(settings: Settings) -> Path:
    return settings.data_dir / "spool"


def reset_spool(settings: Settings) -> int:
    """Create the spool directory (0700) and remove whatever a crashed run left there."""
    directory = spool_dir(settings)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    removed = 0
    for entry in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
    if removed:
        log.info("spool swept", extra={"files": removed})
    return removed


@contextlib.contextmanager
def spool_files(settings: Settings, count: int) -> Iterator[list[Path]]:
    """*count* new empty files (0600, from mkstemp), all removed when the block ends."""
    directory = spool_dir(settings)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        for _ in range(count):
            handle, name = tempfile.mkstemp(dir=directory, prefix="doc-", suffix=".pdf")
            os.close(handle)
            paths.append(Path(name))
        yield paths
    finally:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


async def tee_to_file(chunks: AsyncIterable[bytes], path: Path) -> AsyncIterator[bytes]:
    """Pass *chunks* on while appending each one to *path* (the caller bounds the size)."""
    with path.open("r+b") as out:
        async for chunk in chunks:
            await asyncio.to_thread(out.write, chunk)
            yield chunk


async def save_chunks(
    chunks: AsyncIterable[bytes], path: Path, *, max_bytes: int | None = None
) -> int:
    """Write *chunks* to *path*, stopping with ``OverflowError`` past *max_bytes*."""
    size = 0
    with path.open("r+b") as out:
        async for chunk in chunks:
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise OverflowError(size)
            await asyncio.to_thread(out.write, chunk)
    return size


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    """The file's bytes in chunks of *size*, read in a worker thread."""
    with path.open("rb") as stream:
        while chunk := await asyncio.to_thread(stream.read, size):
            yield chunk


def read_head(path: Path) -> bytes:
    """The first bytes, where a PDF header must be."""
    stream: BinaryIO
    with path.open("rb") as stream:
        return stream.read(HEADER_WINDOW)
