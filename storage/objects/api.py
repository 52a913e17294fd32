"""The object store contract shared by every backend, and its typed errors.

Objects are opaque byte streams under random keys; the store encrypts them at rest, so
callers only ever see plaintext. Keys are chosen by the store (never by the caller), which
keeps content hashes and user input out of object names and paths.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from keys.codes import Code, CodedError


class ObjectStoreError(CodedError):
    """Base of every object store error; ``code`` is the stable machine name."""

    code: str = Code.OBJECT_STORE_ERROR


class ObjectNotFound(ObjectStoreError):
    """No object has this key (malformed keys are treated the same way)."""

    code = Code.NOT_FOUND


class PayloadTooLarge(ObjectStoreError):
    """The stream went over ``max_bytes``; nothing was stored."""

    code = Code.PAYLOAD_TOO_LARGE


class RangeNotSatisfiable(ObjectStoreError):
    """The requested byte range lies outside the object."""

    code = Code.RANGE_NOT_SATISFIABLE


class IntegrityError(ObjectStoreError):
    """The stored ciphertext does not authenticate: tampered, truncated or swapped."""

    code: str = Code.OBJECT_CORRUPT


class MasterKeyMismatch(IntegrityError):
    """The object was sealed under a master key this store does not hold."""

    code = Code.OBJECT_KEY_UNKNOWN


class StorageUnavailable(ObjectStoreError):
    """The backend could not be reached or failed after retries."""

    code = Code.STORAGE_UNAVAILABLE


@dataclass(frozen=True)
class PutResult:
    key: str
    size: int
    sha256_hex: str


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    created_at: datetime


class ObjectStore(abc.ABC):
    """Put a stream, read it back whole or by range, stat, delete, list for sweeping."""

    @abc.abstractmethod
    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> PutResult:
        """Store *chunks* under a new random key; visible only once complete."""

    @abc.abstractmethod
    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Plaintext bytes ``[start, end)``; errors surface on the first iteration."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Plaintext size and creation time, without decrypting anything."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; deleting an absent object is not an error."""

    @abc.abstractmethod
    def list_keys(self, older_than: datetime) -> AsyncIterator[str]:
        """Keys of complete objects created before *older_than* (for the sweeper)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; the default has nothing to release."""
