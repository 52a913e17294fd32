"""A put killed with SIGKILL half-way must leave no visible object."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keys.master import MasterKey
from storage.objects import FilesystemObjectStore, ObjectStore

from ._support import MIB
from .conftest import Backend, FsBackend, S3Backend

CHILD = Path(__file__).with_name("_put_child.py")
REPO = Path(__file__).resolve().parents[2]


def _spec(backend: Backend) -> dict[str, object]:
    if isinstance(backend, FsBackend):
        return {"kind": "fs", "root": str(backend.root), "announce_after": 3 * MIB}
    assert isinstance(backend, S3Backend)
    s3 = dataclasses.asdict(backend.config)
    return {"kind": "s3", "s3": s3, "announce_after": 12 * MIB}


async def test_kill_during_put_leaves_nothing_visible(
    backend: Backend, store: ObjectStore, master_key: MasterKey
) -> None:
    existing = await store.put(_one_chunk(b"already here"), max_bytes=100)
    env = dict(os.environ, SEALHUB_TEST_MASTER_KEY=master_key.to_base64(), PYTHONPATH=str(REPO))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        json.dumps(_spec(backend)),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        assert line.strip() == b"streaming", line
        await asyncio.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), timeout=10) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    later = datetime.now(UTC) + timedelta(minutes=5)
    assert [key async for key in store.list_keys(later)] == [existing.key]

    if isinstance(backend, FsBackend):
        # The partial data is there, but only as a temp file the store never lists.
        stored = backend.stored_names()
        temps = [name for name in stored if Path(name).name.startswith(".tmp-")]
        assert len(temps) == 1
        assert stored - set(temps) == {f"{existing.key[:2]}/{existing.key}"}
        assert isinstance(store, FilesystemObjectStore)
        assert await store.remove_stale_temp_files(datetime.now(UTC) - timedelta(hours=1)) == 0
        assert await store.remove_stale_temp_files(later) == 1
        assert backend.stored_names() == {f"{existing.key[:2]}/{existing.key}"}
    else:
        assert isinstance(backend, S3Backend)
        assert backend.stored_names() == {existing.key}
        uploads = backend.client._list_multipart_uploads(backend.config.bucket)
        assert len(uploads.uploads) == 1  # the killed put had started a multipart upload


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data
