"""Object store fixtures: every contract test runs on the filesystem and the S3 backend.

The S3 backend talks to a real S3-protocol server, moto's, started once per session as a
separate process (so its memory is not ours); every test gets a fresh bucket and the
server is reset afterwards. The 200 MB round trip runs in every test run (seconds on
both backends), not behind a flag.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from minio import Minio

from keys.master import MasterKey
from storage.objects import (
    FilesystemObjectStore,
    FilesystemStoreConfig,
    ObjectStore,
    S3ObjectStore,
    S3StoreConfig,
    open_store,
)
from tests.s3server import MotoServer

MIB = 1024 * 1024


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey.generate()


class Backend(abc.ABC):
    """One backend under test, plus raw access to its stored (encrypted) bytes."""

    name: str
    config: FilesystemStoreConfig | S3StoreConfig

    async def reopen(
        self, master_key: MasterKey, previous: Sequence[MasterKey] = ()
    ) -> ObjectStore:
        return await open_store(self.config, master_key, previous)

    @abc.abstractmethod
    def read_stored(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def write_stored(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def stored_names(self) -> set[str]:
        """Everything physically present, including what the store would never list."""


class FsBackend(Backend):
    name = "fs"
    config: FilesystemStoreConfig

    def __init__(self, root: Path) -> None:
        self.config = FilesystemStoreConfig(root=root)
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def read_stored(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write_stored(self, key: str, data: bytes) -> None:
        self._path(key).parent.mkdir(exist_ok=True)
        self._path(key).write_bytes(data)

    def stored_names(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}


class S3Backend(Backend):
    name = "s3"
    config: S3StoreConfig

    def __init__(self, server: MotoServer) -> None:
        self.config = S3StoreConfig(
            endpoint=server.endpoint,
            access_key="testing",
            secret_key="testing",
            bucket=f"sealhub-{uuid.uuid4().hex[:12]}",
            secure=False,
            part_size=5 * MIB,
            retry_base_delay=0.02,
        )
        self.client = Minio(
            server.endpoint, access_key="testing", secret_key="testing", secure=False
        )

    def read_stored(self, key: str) -> bytes:
        response = self.client.get_object(self.config.bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def write_stored(self, key: str, data: bytes) -> None:
        import io

        self.client.put_object(self.config.bucket, key, io.BytesIO(data), len(data))

    def stored_names(self) -> set[str]:
        objects = self.client.list_objects(self.config.bucket, recursive=True)
        return {str(obj.object_name) for obj in objects}


@pytest.fixture(params=["fs", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "fs":
        yield FsBackend(tmp_path / "objects")
        return
    server: MotoServer = request.getfixturevalue("moto_server")
    try:
        yield S3Backend(server)
    finally:
        server.reset()


@pytest.fixture
async def store(backend: Backend, master_key: MasterKey) -> AsyncIterator[ObjectStore]:
    opened = await backend.reopen(master_key)
    assert isinstance(opened, FilesystemObjectStore | S3ObjectStore)
    try:
        yield opened
    finally:
        await opened.aclose()
