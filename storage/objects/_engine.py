"""The part every backend shares: key rules, hashing, limits, sealing and range decoding.

A backend only moves stored (already encrypted) bytes: it supplies a writer that makes an
object visible atomically on ``commit``, a way to read the first bytes and the stored size,
and ranged reads of stored bytes. Everything that touches plaintext happens here.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

from keys.master import MasterKey
from storage.objects.api import (
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    PayloadTooLarge,
    PutResult,
    RangeNotSatisfiable,
)
from storage.objects.crypto import (
    Layout,
    ObjectHeader,
    SegmentCipher,
    StreamOpener,
    StreamSealer,
    create_object,
    open_object,
)

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"[0-9a-f]{32}")
# Plaintext handed to a worker thread at once: large enough to amortise the thread hop,
# small enough to keep memory flat.
BATCH_SIZE = 1024 * 1024


def new_object_key() -> str:
    return secrets.token_hex(16)


def is_object_key(key: object) -> bool:
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def check_object_key(key: str) -> str:
    """Refuse anything but a key this store could have made, before it reaches a path."""
    if not is_object_key(key):
        raise ObjectNotFound("no object with this key (malformed key)")
    return key


def require_aware(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("older_than must be timezone-aware")
    return moment.timestamp()


@dataclass(frozen=True)
class StoredHead:
    """The first stored bytes (at least the whole header), the stored size, the mtime."""

    data: bytes
    stored_size: int
    created_at: datetime


class StoredWriter(abc.ABC):
    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make the object visible, complete, under its key; durable on return."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Leave nothing visible; must be safe to call after a failed write."""


class SealedStore(ObjectStore):
    """An :class:`ObjectStore` that encrypts; subclasses only move stored bytes."""

    def __init__(self, master_key: MasterKey, previous_keys: Sequence[MasterKey] = ()) -> None:
        self._master = master_key
        self._keyring = {key.key_id: key for key in (*previous_keys, master_key)}

    # -- backend hooks -------------------------------------------------------------------

    @abc.abstractmethod
    async def _begin_write(self, key: str) -> StoredWriter: ...

    @abc.abstractmethod
    async def _read_head(self, key: str) -> StoredHead:
        """Raise :class:`ObjectNotFound` when absent."""

    @abc.abstractmethod
    def _read_stored(self, key: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Stored bytes ``[start, end)`` in chunks of bounded size."""

    # -- the contract --------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> PutResult:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        key = new_object_key()
        header, cipher = create_object(self._master, key)
        sealer = StreamSealer(cipher)
        hasher = hashlib.sha256()
        size = 0
        writer = await self._begin_write(key)
        pipeline = _OneWriteAhead(writer)
        try:
            await pipeline.write(header)
            batch: list[bytes] = []
            batch_size = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the object exceeds the limit of {max_bytes} bytes")
                batch.append(chunk)
                batch_size += len(chunk)
                if batch_size >= BATCH_SIZE:
                    await pipeline.write(
                        await asyncio.to_thread(_seal_batch, hasher, sealer, batch)
                    )
                    batch, batch_size = [], 0
            sealed = await asyncio.to_thread(_seal_batch, hasher, sealer, batch, final=True)
            await pipeline.write(sealed)
            await pipeline.drain()
            await writer.commit()
        except BaseException:
            await pipeline.settle()
            try:
                await writer.abort()
            except Exception:
                log.warning("could not clean up an aborted object write", exc_info=True)
            raise
        return PutResult(key=key, size=size, sha256_hex=hasher.hexdigest())

    async def open(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        check_object_key(key)
        cipher, layout = await self._open_header(key)
        size = layout.plaintext_size
        stop = size if end is None else end
        if not 0 <= start <= stop <= size:
            raise RangeNotSatisfiable(
                f"range [{start}, {stop}) is outside the object (size {size})"
            )
        if start == stop and size > 0:
            return
        # An empty object still authenticates its single empty segment on a full read.
        first, last = layout.segments_for(start, stop) if size else (0, 0)
        offset, stored_end = layout.stored_span(first, last)
        decoder = _RangeDecoder(
            StreamOpener(cipher, layout, first, last),
            skip=start - first * layout.segment_size,
            length=stop - start,
        )
        async with aclosing(self._read_stored(key, offset, stored_end)) as stored:
            async for data in stored:
                plain = await asyncio.to_thread(decoder.feed, data)
                if plain:
                    yield plain
        decoder.finish()

    async def stat(self, key: str) -> ObjectInfo:
        check_object_key(key)
        head = await self._read_head(key)
        header, raw = ObjectHeader.decode(head.data)
        layout = Layout(len(raw), header.segment_size, head.stored_size)
        return ObjectInfo(key=key, size=layout.plaintext_size, created_at=head.created_at)

    async def _open_header(self, key: str) -> tuple[SegmentCipher, Layout]:
        head = await self._read_head(key)
        header, raw = ObjectHeader.decode(head.data)
        cipher = open_object(header, raw, self._keyring, key)
        return cipher, Layout(len(raw), header.segment_size, head.stored_size)


class _OneWriteAhead:
    """Keeps one stored write in flight, so storing batch n overlaps sealing batch n+1."""

    def __init__(self, writer: StoredWriter) -> None:
        self._writer = writer
        self._task: asyncio.Task[None] | None = None

    async def write(self, data: bytes) -> None:
        await self.drain()
        self._task = asyncio.create_task(self._writer.write(data))

    async def drain(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def settle(self) -> None:
        """Wait out the write in flight, whatever its outcome, before the writer is aborted:
        a worker thread may still be using the file or buffer."""
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as lost


def _seal_batch(
    hasher: hashlib._Hash, sealer: StreamSealer, batch: list[bytes], *, final: bool = False
) -> bytes:
    """Runs in a worker thread: hashing and AES-GCM both release the GIL on large buffers."""
    for chunk in batch:
        hasher.update(chunk)
    sealed = sealer.feed(batch)
    if final:
        sealed += sealer.finish()
    return sealed


class _RangeDecoder:
    """Decrypts whole segments and trims the first and last to the requested range."""

    def __init__(self, opener: StreamOpener, *, skip: int, length: int) -> None:
        self._opener = opener
        self._skip = skip
        self._remaining = length

    def feed(self, data: bytes) -> bytes:
        pieces = self._opener.feed(data)
        if not pieces:
            return b""
        plain = b"".join(pieces) if len(pieces) > 1 else pieces[0]
        if self._skip:
            plain = plain[self._skip :]
            self._skip = 0
        if len(plain) > self._remaining:
            plain = plain[: self._remaining]
        self._remaining -= len(plain)
        return plain

    def finish(self) -> None:
        self._opener.finish()
        if self._remaining:
            raise IntegrityError("object ended before the requested range")
