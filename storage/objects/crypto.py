"""Segmented AEAD for objects at rest (pure: no I/O).

Stored layout: ``header || segment_0 || ... || segment_{n-1}``. Each segment is
AES-256-GCM over at most ``segment_size`` plaintext bytes (tag appended), so a reader can
seek to any segment and decrypt only what a range touches. The nonce is
``prefix(7) || segment number (4, big-endian) || last flag (1)`` as in the STREAM
construction: moving a segment changes its number, and dropping final segments leaves a
segment without the last flag, so both fail authentication. Every segment carries the whole
header as associated data, so no header byte can change unnoticed, and the per-object data
key is wrapped by the master key with the object key in the wrap context, so a header or a
segment copied from another object does not open either.

Header: ``magic(5) version(1) header_size(2) segment_size(4) key_id_len(1) key_id
wrapped_len(2) wrapped_key nonce_prefix(7)``, integers big-endian.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys.master import MasterKey, MasterKeyError
from storage.objects.api import IntegrityError, MasterKeyMismatch

MAGIC = b"SHOBJ"
FORMAT_VERSION = 1
SEGMENT_SIZE = 64 * 1024
TAG_SIZE = 16
DATA_KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
MAX_SEGMENTS = 2**32
# Enough to read any header in one request; the real size is in the preamble.
MAX_HEADER_SIZE = 1024

_PREAMBLE = struct.Struct(">5sBH")
PREAMBLE_SIZE = _PREAMBLE.size
_SEGMENT_SIZE_FIELD = struct.Struct(">I")
_WRAPPED_LEN = struct.Struct(">H")
_NONCE_TAIL = struct.Struct(">IB")


def wrap_context(object_key: str) -> bytes:
    """Binds a wrapped data key to the one object it belongs to."""
    return b"sealhub object data key v1\x00" + object_key.encode("ascii")


@dataclass(frozen=True)
class ObjectHeader:
    segment_size: int
    key_id: str
    wrapped_key: bytes = field(repr=False)
    nonce_prefix: bytes = field(repr=False)

    def encode(self) -> bytes:
        key_id = self.key_id.encode("ascii")
        body = b"".join(
            (
                _SEGMENT_SIZE_FIELD.pack(self.segment_size),
                bytes([len(key_id)]),
                key_id,
                _WRAPPED_LEN.pack(len(self.wrapped_key)),
                self.wrapped_key,
                self.nonce_prefix,
            )
        )
        size = PREAMBLE_SIZE + len(body)
        if size > MAX_HEADER_SIZE:
            raise ValueError("object header too large")
        return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, size) + body

    @classmethod
    def decode(cls, data: bytes) -> tuple[ObjectHeader, bytes]:
        """Parse the header at the start of *data*; returns it and its exact bytes."""
        size = header_size(data)
        if len(data) < size:
            raise IntegrityError("object header is truncated")
        raw = bytes(data[:size])
        try:
            pos = PREAMBLE_SIZE
            (segment_size,) = _SEGMENT_SIZE_FIELD.unpack_from(raw, pos)
            pos += _SEGMENT_SIZE_FIELD.size
            key_id_len = raw[pos]
            pos += 1
            key_id = raw[pos : pos + key_id_len].decode("ascii")
            pos += key_id_len
            (wrapped_len,) = _WRAPPED_LEN.unpack_from(raw, pos)
            pos += _WRAPPED_LEN.size
            wrapped = raw[pos : pos + wrapped_len]
            pos += wrapped_len
            prefix = raw[pos : pos + NONCE_PREFIX_SIZE]
            pos += NONCE_PREFIX_SIZE
        except (struct.error, IndexError, UnicodeDecodeError):
            raise IntegrityError("object header is malformed") from None
        if pos != size or len(wrapped) != wrapped_len or len(prefix) != NONCE_PREFIX_SIZE:
            raise IntegrityError("object header is malformed")
        if segment_size < 1:
            raise IntegrityError("object header has an invalid segment size")
        return cls(segment_size, key_id, wrapped, prefix), raw


def header_size(data: bytes) -> int:
    """Total header size from its fixed preamble (the first :data:`PREAMBLE_SIZE` bytes)."""
    if len(data) < PREAMBLE_SIZE:
        raise IntegrityError("object is shorter than its header")
    magic, version, size = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise IntegrityError("not a sealhub object (bad magic)")
    if version != FORMAT_VERSION:
        raise IntegrityError(f"unsupported object format version {version}")
    if not PREAMBLE_SIZE < size <= MAX_HEADER_SIZE:
        raise IntegrityError("object header has an invalid size")
    return int(size)


@dataclass(frozen=True)
class Layout:
    """Where each segment lies in the stored bytes; derived from the stored size alone."""

    header_size: int
    segment_size: int
    stored_size: int
    segment_count: int = field(init=False)
    plaintext_size: int = field(init=False)

    def __post_init__(self) -> None:
        body = self.stored_size - self.header_size
        stride = self.segment_size + TAG_SIZE
        if body < TAG_SIZE:
            raise IntegrityError("object is truncated (no segment)")
        count, rest = divmod(body, stride)
        if rest:
            if rest <= TAG_SIZE and not (count == 0 and rest == TAG_SIZE):
                # Only the empty object may end in an empty segment.
                raise IntegrityError("object is truncated (partial segment)")
            count += 1
        object.__setattr__(self, "segment_count", count)
        object.__setattr__(self, "plaintext_size", body - count * TAG_SIZE)

    def segments_for(self, start: int, end: int) -> tuple[int, int]:
        """First and last segment holding plaintext ``[start, end)`` (``end > start``)."""
        return start // self.segment_size, (end - 1) // self.segment_size

    def stored_segment_size(self, index: int) -> int:
        if index < self.segment_count - 1:
            return self.segment_size + TAG_SIZE
        return self.stored_size - self.header_size - index * (self.segment_size + TAG_SIZE)

    def stored_span(self, first: int, last: int) -> tuple[int, int]:
        """Stored byte range ``[offset, end)`` of segments *first* to *last* inclusive."""
        stride = self.segment_size + TAG_SIZE
        offset = self.header_size + first * stride
        end = min(self.header_size + (last + 1) * stride, self.stored_size)
        return offset, end


class SegmentCipher:
    """Seals and opens single segments of one object."""

    def __init__(self, data_key: bytes, header: ObjectHeader, header_bytes: bytes) -> None:
        self._aead = AESGCM(data_key)
        self._prefix = header.nonce_prefix
        self._aad = header_bytes
        self.segment_size = header.segment_size

    def __repr__(self) -> str:
        return "SegmentCipher(<secret>)"

    def _nonce(self, index: int, last: bool) -> bytes:
        if not 0 <= index < MAX_SEGMENTS:
            raise ValueError("segment number out of range")
        return self._prefix + _NONCE_TAIL.pack(index, 1 if last else 0)

    def seal(self, index: int, plaintext: bytes | memoryview, *, last: bool) -> bytes:
        return self._aead.encrypt(self._nonce(index, last), plaintext, self._aad)

    def open(self, index: int, ciphertext: bytes | memoryview, *, last: bool) -> bytes:
        try:
            return self._aead.decrypt(self._nonce(index, last), ciphertext, self._aad)
        except InvalidTag:
            raise IntegrityError(f"segment {index} does not authenticate") from None


def create_object(
    master: MasterKey, object_key: str, *, segment_size: int = SEGMENT_SIZE
) -> tuple[bytes, SegmentCipher]:
    """A fresh data key and nonce prefix for *object_key*: header bytes and the cipher."""
    data_key = os.urandom(DATA_KEY_SIZE)
    header = ObjectHeader(
        segment_size=segment_size,
        key_id=master.key_id,
        wrapped_key=master.wrap(data_key, wrap_context(object_key)),
        nonce_prefix=os.urandom(NONCE_PREFIX_SIZE),
    )
    raw = header.encode()
    return raw, SegmentCipher(data_key, header, raw)


def open_object(
    header: ObjectHeader, header_bytes: bytes, keyring: Mapping[str, MasterKey], object_key: str
) -> SegmentCipher:
    """Unwrap the data key of *object_key* with whichever master key sealed it."""
    master = keyring.get(header.key_id)
    if master is None:
        raise MasterKeyMismatch(
            f"object was sealed under master key {header.key_id!r}, which this store lacks"
        )
    try:
        data_key = master.unwrap(header.wrapped_key, wrap_context(object_key))
    except MasterKeyError:
        raise IntegrityError("object data key does not unwrap (header altered or moved)") from None
    if len(data_key) != DATA_KEY_SIZE:
        raise IntegrityError("object data key has the wrong size")
    return SegmentCipher(data_key, header, header_bytes)


class StreamSealer:
    """Plaintext in any chunking to whole sealed segments.

    One full segment is held back until more data arrives, because only the end of the
    stream tells whether a segment is the last one.
    """

    def __init__(self, cipher: SegmentCipher) -> None:
        self._cipher = cipher
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    def feed(self, chunks: Iterable[bytes]) -> bytes:
        for chunk in chunks:
            self._buffer += chunk
        size = self._cipher.segment_size
        out: list[bytes] = []
        pos = 0
        view = memoryview(self._buffer)
        try:
            while len(self._buffer) - pos > size:
                out.append(self._cipher.seal(self._index, view[pos : pos + size], last=False))
                self._index += 1
                pos += size
        finally:
            view.release()
        del self._buffer[:pos]
        return b"".join(out)

    def finish(self) -> bytes:
        """The last segment (empty for an empty object)."""
        if self._finished:
            raise RuntimeError("stream already finished")
        self._finished = True
        sealed = self._cipher.seal(self._index, bytes(self._buffer), last=True)
        self._buffer.clear()
        return sealed


class StreamOpener:
    """Stored bytes of segments *first*..*last* to their plaintext, checked one by one."""

    def __init__(self, cipher: SegmentCipher, layout: Layout, first: int, last: int) -> None:
        self._cipher = cipher
        self._layout = layout
        self._index = first
        self._last = last
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        pos = 0
        view = memoryview(self._buffer)
        try:
            while self._index <= self._last:
                need = self._layout.stored_segment_size(self._index)
                if len(self._buffer) - pos < need:
                    break
                is_last = self._index == self._layout.segment_count - 1
                out.append(self._cipher.open(self._index, view[pos : pos + need], last=is_last))
                self._index += 1
                pos += need
        finally:
            view.release()
        del self._buffer[:pos]
        if self._index > self._last and self._buffer:
            raise IntegrityError("object has more data than its layout allows")
        return out

    def finish(self) -> None:
        if self._index <= self._last or self._buffer:
            raise IntegrityError("object ended before its last segment")
