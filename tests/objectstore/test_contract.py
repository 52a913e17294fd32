"""The object store contract, run against the filesystem and the S3 backend alike."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from keys.master import MasterKey
from storage.objects import (
    IntegrityError,
    MasterKeyMismatch,
    ObjectNotFound,
    ObjectStore,
    PayloadTooLarge,
    RangeNotSatisfiable,
    sweep,
)
from storage.objects.crypto import TAG_SIZE, header_size

from ._support import MIB, SEG, Pattern, read_all, stream_of
from .conftest import Backend

LATER = timedelta(minutes=5)
STRIDE = SEG + TAG_SIZE


def _data(size: int, seed: int = 1) -> bytes:
    return Pattern(size, chunk=max(size, 1), seed=seed).chunks().__next__() if size else b""


async def _put(store: ObjectStore, data: bytes, sizes: tuple[int, ...] = ()) -> str:
    result = await store.put(stream_of(data, sizes), max_bytes=len(data))
    assert result.size == len(data)
    assert result.sha256_hex == hashlib.sha256(data).hexdigest()
    return result.key


def _segment_offset(stored: bytes | bytearray, index: int) -> int:
    return header_size(bytes(stored[:8])) + index * STRIDE


# -- round trips ----------------------------------------------------------------------------

SIZES = [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG - 1, 2 * SEG, 2 * SEG + 1]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("chunking", [(), (1000,), (1, 65535, 7, 131072)], ids=repr)
async def test_round_trip(store: ObjectStore, size: int, chunking: tuple[int, ...]) -> None:
    data = _data(size)
    key = await _put(store, data, chunking)
    assert await read_all(store, key) == data
    info = await store.stat(key)
    assert (info.key, info.size) == (key, size)
    assert abs(info.created_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_stored_bytes_are_encrypted(store: ObjectStore, backend: Backend) -> None:
    data = b"official document " * 1000
    key = await _put(store, data)
    stored = backend.read_stored(key)
    assert b"official document" not in stored
    assert len(stored) == header_size(stored) + len(data) + TAG_SIZE


async def test_keys_are_random_and_distinct(store: ObjectStore) -> None:
    first = await _put(store, b"same")
    second = await _put(store, b"same")
    assert first != second
    assert len(first) == 32


async def test_streamed_20mb_in_bounded_memory(store: ObjectStore) -> None:
    """Buffering the object anywhere would need 20 MB; a streaming store needs ~1 part."""
    pattern = Pattern(20 * MIB)
    tracemalloc.start()
    try:
        result = await store.put(pattern.stream(), max_bytes=pattern.size)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        largest = 0
        async for piece in store.open(result.key):
            digest.update(piece)
            largest = max(largest, len(piece))
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == pattern.size
    assert result.sha256_hex == digest.hexdigest() == pattern.sha256()
    # One S3 part (5 MiB here), which growing it in place may copy once (2 x 5 MiB), plus a
    # few 1 MiB batches: measured 9 to 13 MiB. Holding the object would take 20 MiB or more.
    assert put_peak < 16 * MIB, put_peak
    assert get_peak < 8 * MIB, get_peak
    assert largest <= 2 * MIB


async def test_streamed_200mb(store: ObjectStore) -> None:
    pattern = Pattern(200 * MIB)
    result = await store.put(pattern.stream(), max_bytes=pattern.size)
    digest = hashlib.sha256()
    async for piece in store.open(result.key):
        digest.update(piece)
    assert result.sha256_hex == digest.hexdigest() == pattern.sha256()
    assert (await store.stat(result.key)).size == pattern.size


# -- ranges -----------------------------------------------------------------------------------

RANGE_SIZE = 3 * SEG + 100
RANGES = [
    (0, None),
    (0, RANGE_SIZE),
    (0, 1),
    (SEG - 1, SEG + 1),
    (SEG, 2 * SEG),
    (SEG - 10, 3 * SEG + 10),
    (RANGE_SIZE - 1, RANGE_SIZE),
    (RANGE_SIZE - 1, None),
    (5, 5),
    (RANGE_SIZE, RANGE_SIZE),
    (12345, 54321),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
async def test_range_read(store: ObjectStore, start: int, end: int | None) -> None:
    data = _data(RANGE_SIZE)
    key = await _put(store, data, (10_000,))
    assert await read_all(store, key, start, end) == data[start:end]


@pytest.mark.parametrize(
    ("start", "end"), [(0, RANGE_SIZE + 1), (RANGE_SIZE + 1, None), (10, 9), (-1, 5)]
)
async def test_range_out_of_bounds(store: ObjectStore, start: int, end: int | None) -> None:
    key = await _put(store, _data(RANGE_SIZE))
    with pytest.raises(RangeNotSatisfiable):
        await read_all(store, key, start, end)


async def test_range_of_empty_object(store: ObjectStore) -> None:
    key = await _put(store, b"")
    assert await read_all(store, key, 0, 0) == b""
    with pytest.raises(RangeNotSatisfiable):
        await read_all(store, key, 0, 1)


async def test_range_decrypts_only_touched_segments(store: ObjectStore, backend: Backend) -> None:
    data = _data(RANGE_SIZE)
    key = await _put(store, data)
    stored = bytearray(backend.read_stored(key))
    stored[_segment_offset(stored, 2) + 5] ^= 1
    backend.write_stored(key, bytes(stored))
    assert await read_all(store, key, 10, 2 * SEG) == data[10 : 2 * SEG]
    with pytest.raises(IntegrityError):
        await read_all(store, key, 2 * SEG, 2 * SEG + 1)


# -- integrity --------------------------------------------------------------------------------


async def test_tampered_ciphertext_byte(store: ObjectStore, backend: Backend) -> None:
    key = await _put(store, _data(2 * SEG + 10))
    stored = bytearray(backend.read_stored(key))
    stored[_segment_offset(stored, 1) + 100] ^= 0x40
    backend.write_stored(key, bytes(stored))
    with pytest.raises(IntegrityError):
        await read_all(store, key)


async def test_tampered_tag(store: ObjectStore, backend: Backend) -> None:
    key = await _put(store, _data(100))
    stored = bytearray(backend.read_stored(key))
    stored[-1] ^= 1
    backend.write_stored(key, bytes(stored))
    with pytest.raises(IntegrityError):
        await read_all(store, key)


@pytest.mark.parametrize("keep_segments", [1, 2])
async def test_truncated_at_segment_boundary(
    store: ObjectStore, backend: Backend, keep_segments: int
) -> None:
    """Dropping whole final segments leaves a valid-looking layout; the last flag catches it."""
    key = await _put(store, _data(3 * SEG))
    stored = backend.read_stored(key)
    backend.write_stored(key, stored[: _segment_offset(stored, keep_segments)])
    assert (await store.stat(key)).size == keep_segments * SEG
    with pytest.raises(IntegrityError):
        await read_all(store, key)


async def test_truncated_mid_segment(store: ObjectStore, backend: Backend) -> None:
    key = await _put(store, _data(3 * SEG))
    stored = backend.read_stored(key)
    backend.write_stored(key, stored[: _segment_offset(stored, 2) + 8])
    with pytest.raises(IntegrityError):
        await store.stat(key)
    with pytest.raises(IntegrityError):
        await read_all(store, key)


async def test_truncated_to_header(store: ObjectStore, backend: Backend) -> None:
    key = await _put(store, b"")
    stored = backend.read_stored(key)
    for cut in (header_size(stored), 3, 0):
        backend.write_stored(key, stored[:cut])
        with pytest.raises(IntegrityError):
            await read_all(store, key)


async def test_appended_segment(store: ObjectStore, backend: Backend) -> None:
    key = await _put(store, _data(2 * SEG))
    stored = backend.read_stored(key)
    backend.write_stored(key, stored + stored[_segment_offset(stored, 0) :][:STRIDE])
    with pytest.raises(IntegrityError):
        await read_all(store, key)


async def test_segments_reordered(store: ObjectStore, backend: Backend) -> None:
    key = await _put(store, _data(3 * SEG))
    stored = backend.read_stored(key)
    a, b = _segment_offset(stored, 0), _segment_offset(stored, 1)
    swapped = stored[:a] + stored[b : b + STRIDE] + stored[a:b] + stored[b + STRIDE :]
    backend.write_stored(key, swapped)
    with pytest.raises(IntegrityError):
        await read_all(store, key)


async def test_segment_swapped_between_objects(store: ObjectStore, backend: Backend) -> None:
    first = await _put(store, _data(2 * SEG + 5, seed=1))
    second = await _put(store, _data(2 * SEG + 5, seed=2))
    one, two = backend.read_stored(first), backend.read_stored(second)
    at = _segment_offset(one, 1)
    backend.write_stored(second, two[:at] + one[at : at + STRIDE] + two[at + STRIDE :])
    with pytest.raises(IntegrityError):
        await read_all(store, second)
    assert await read_all(store, first) == _data(2 * SEG + 5, seed=1)


async def test_header_swapped_between_objects(store: ObjectStore, backend: Backend) -> None:
    first = await _put(store, _data(500, seed=1))
    second = await _put(store, _data(500, seed=2))
    one, two = backend.read_stored(first), backend.read_stored(second)
    cut = header_size(one)
    backend.write_stored(second, one[:cut] + two[cut:])
    with pytest.raises(IntegrityError):
        await read_all(store, second)


async def test_object_copied_under_another_key(store: ObjectStore, backend: Backend) -> None:
    """The data key is wrapped for one object key; a whole copy does not open elsewhere."""
    first = await _put(store, _data(500, seed=1))
    second = await _put(store, _data(500, seed=2))
    backend.write_stored(second, backend.read_stored(first))
    with pytest.raises(IntegrityError):
        await read_all(store, second)


async def test_every_header_byte_is_authenticated(store: ObjectStore, backend: Backend) -> None:
    data = _data(SEG + 3)
    key = await _put(store, data)
    stored = backend.read_stored(key)
    for position in range(header_size(stored)):
        altered = bytearray(stored)
        altered[position] ^= 0x01
        backend.write_stored(key, bytes(altered))
        with pytest.raises(IntegrityError):
            await read_all(store, key)
    backend.write_stored(key, stored)
    assert await read_all(store, key) == data


async def test_wrong_master_key_is_refused(backend: Backend, store: ObjectStore) -> None:
    key = await _put(store, b"sealed under the first key")
    other = await backend.reopen(MasterKey.generate())
    try:
        with pytest.raises(MasterKeyMismatch):
            await read_all(other, key)
    finally:
        await other.aclose()


async def test_previous_master_key_still_opens(
    backend: Backend, store: ObjectStore, master_key: MasterKey
) -> None:
    key = await _put(store, b"before rotation")
    rotated = await backend.reopen(MasterKey.generate(), previous=[master_key])
    try:
        assert await read_all(rotated, key) == b"before rotation"
        new_key = await _put(rotated, b"after rotation")
        with pytest.raises(MasterKeyMismatch):
            await read_all(store, new_key)
    finally:
        await rotated.aclose()


async def test_same_key_id_but_different_secret_is_refused(
    backend: Backend, store: ObjectStore
) -> None:
    """A forged key id in the header still needs the real master key to unwrap."""
    key = await _put(store, b"x" * 10)
    impostor = MasterKey.generate()
    stored = backend.read_stored(key)
    original_id = stored[13 : 13 + 16].decode()  # preamble(8) + segment size(4) + length(1)
    assert len(original_id) == 16
    backend.write_stored(key, stored.replace(original_id.encode(), impostor.key_id.encode()))
    other = await backend.reopen(impostor)
    try:
        with pytest.raises(IntegrityError):
            await read_all(other, key)
    finally:
        await other.aclose()


# -- limits, keys, absence ------------------------------------------------------------------


@pytest.mark.parametrize("size", [5000, 12 * MIB])
async def test_payload_too_large_stores_nothing(
    store: ObjectStore, backend: Backend, size: int
) -> None:
    before = backend.stored_names()
    with pytest.raises(PayloadTooLarge):
        await store.put(Pattern(size, chunk=256 * 1024).stream(), max_bytes=size - 1)
    assert [key async for key in store.list_keys(datetime.now(UTC) + LATER)] == []
    assert backend.stored_names() == before


async def test_payload_at_the_limit_is_accepted(store: ObjectStore) -> None:
    result = await store.put(stream_of(b"12345", (2,)), max_bytes=5)
    assert result.size == 5


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "a/b",
        "..",
        "/etc/passwd",
        "../" * 10 + "etc/passwd",
        "0" * 31,
        "0" * 33,
        "A" * 32,
        "0" * 32 + "\n",
        "00/" + "0" * 29,
        "\x00" * 32,
    ],
)
async def test_malformed_keys_are_not_found(store: ObjectStore, backend: Backend, key: str) -> None:
    before = backend.stored_names()
    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    with pytest.raises(ObjectNotFound):
        await read_all(store, key)
    with pytest.raises(ObjectNotFound):
        await store.delete(key)
    assert backend.stored_names() == before


async def test_absent_key(store: ObjectStore) -> None:
    missing = "0123456789abcdef" * 2
    with pytest.raises(ObjectNotFound):
        await store.stat(missing)
    with pytest.raises(ObjectNotFound):
        await read_all(store, missing)
    await store.delete(missing)  # idempotent


async def test_delete(store: ObjectStore) -> None:
    key = await _put(store, b"to be removed")
    await store.delete(key)
    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    await store.delete(key)


async def test_list_keys_by_age(store: ObjectStore) -> None:
    keys = {await _put(store, b"a"), await _put(store, b"b")}
    listed = {key async for key in store.list_keys(datetime.now(UTC) + LATER)}
    assert listed == keys
    assert [key async for key in store.list_keys(datetime.now(UTC) - LATER)] == []
    with pytest.raises(ValueError, match="timezone"):
        [key async for key in store.list_keys(datetime.now() + LATER)]


# -- sweeper ----------------------------------------------------------------------------------


async def test_sweeper_deletes_only_old_unreferenced(store: ObjectStore) -> None:
    kept = await _put(store, b"referenced")
    orphans = [await _put(store, b"orphan %d" % i) for i in range(5)]
    asked: list[list[str]] = []

    async def is_referenced(keys: list[str]) -> set[str]:
        asked.append(keys)
        return {kept} & set(keys)

    # Within the grace period nothing is even considered.
    assert await sweep(store, is_referenced, timedelta(minutes=1), datetime.now(UTC)) == 0
    assert asked == []
    deleted = await sweep(
        store, is_referenced, timedelta(minutes=1), datetime.now(UTC) + LATER, batch_size=2
    )
    assert deleted == 5
    assert [len(batch) for batch in asked] == [2, 2, 2]
    assert await read_all(store, kept) == b"referenced"
    for key in orphans:
        with pytest.raises(ObjectNotFound):
            await store.stat(key)


async def test_two_sweepers_at_once(store: ObjectStore, backend: Backend) -> None:
    kept = await _put(store, b"referenced")
    for i in range(6):
        await _put(store, b"orphan %d" % i)

    async def is_referenced(keys: list[str]) -> set[str]:
        await asyncio.sleep(0)
        return {kept} & set(keys)

    later = datetime.now(UTC) + LATER
    other = await backend.reopen(MasterKey.generate())
    try:
        counts = await asyncio.gather(
            sweep(store, is_referenced, timedelta(0), later, batch_size=1),
            sweep(other, is_referenced, timedelta(0), later, batch_size=1),
        )
    finally:
        await other.aclose()
    assert sum(counts) >= 6
    assert [key async for key in store.list_keys(later)] == [kept]
