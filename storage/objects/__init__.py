"""Encrypted object storage: one interface, a filesystem and an S3 backend.

``open_store`` picks the backend from its config dataclass. Every object is sealed with
segmented AES-256-GCM under its own data key, wrapped by the platform master key (see
:mod:`storage.objects.crypto`), so callers only ever handle plaintext streams.
"""

from __future__ import annotations

from collections.abc import Sequence

from keys.master import MasterKey
from storage.objects.api import (
    IntegrityError,
    MasterKeyMismatch,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    PayloadTooLarge,
    PutResult,
    RangeNotSatisfiable,
    StorageUnavailable,
)
from storage.objects.config import FilesystemStoreConfig, S3StoreConfig, StoreConfig
from storage.objects.fs import FilesystemObjectStore
from storage.objects.s3 import S3ObjectStore
from storage.objects.sweeper import sweep

__all__ = [
    "FilesystemObjectStore",
    "FilesystemStoreConfig",
    "IntegrityError",
    "MasterKeyMismatch",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "PayloadTooLarge",
    "PutResult",
    "RangeNotSatisfiable",
    "S3ObjectStore",
    "S3StoreConfig",
    "StorageUnavailable",
    "StoreConfig",
    "open_store",
    "sweep",
]


async def open_store(
    config: StoreConfig, master_key: MasterKey, previous_keys: Sequence[MasterKey] = ()
) -> ObjectStore:
    """The backend *config* names, ready to use (root or bucket created if missing).

    New objects are sealed under *master_key*; *previous_keys* still open older objects
    after a master key rotation.
    """
    store: FilesystemObjectStore | S3ObjectStore
    if isinstance(config, FilesystemStoreConfig):
        store = FilesystemObjectStore(config.root, master_key, previous_keys)
    else:
        store = S3ObjectStore(config, master_key, previous_keys)
    await store.prepare()
    return store
