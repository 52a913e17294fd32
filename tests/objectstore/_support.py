"""Deterministic test data and small stream helpers shared by the object store tests."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Iterable, Iterator

from storage.objects import ObjectStore

MIB = 1024 * 1024
SEG = 64 * 1024
_PRIME = 4099


class Pattern:
    """A cheap, non-repeating byte stream: chunk *i* is a window of one random block.

    Windows start at different offsets, so no two segments of a large object are equal
    and a reordering bug cannot hide behind repeated plaintext.
    """

    def __init__(self, size: int, *, chunk: int = MIB, seed: int = 7) -> None:
        self.size = size
        self.chunk = chunk
        self._block = random.Random(seed).randbytes(chunk + _PRIME)

    def chunks(self) -> Iterator[bytes]:
        index = 0
        sent = 0
        while sent < self.size:
            length = min(self.chunk, self.size - sent)
            offset = (index * 7919) % _PRIME
            yield self._block[offset : offset + length]
            sent += length
            index += 1

    async def stream(self) -> AsyncIterator[bytes]:
        for piece in self.chunks():
            yield piece

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.chunks():
            digest.update(piece)
        return digest.hexdigest()


async def stream_of(data: bytes, sizes: Iterable[int] = ()) -> AsyncIterator[bytes]:
    """*data* cut at the given chunk sizes (cycled), or as one chunk when none are given."""
    sizes = list(sizes)
    if not sizes:
        if data:
            yield data
        return
    pos = 0
    index = 0
    while pos < len(data):
        step = sizes[index % len(sizes)]
        yield data[pos : pos + step]
        pos += step
        index += 1


async def read_all(store: ObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    parts = [piece async for piece in store.open(key, start=start, end=end)]
    return b"".join(parts)
