"""Fixtures for the audit log tests: a platform PKI on disk, the log signer, pools and helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from gateway.audit import sequencer
from gateway.audit.sequencer import checkpoint_key
from keys.master import load_or_create_master_key
from keys.platform import PlatformPki, ensure_platform_pki
from storage import audit_log
from storage.audit_outbox import AuditEvent, record_event
from storage.db import DbConnection, connect, create_pool
from tests.conftest import REPO, app_url_for

ORIGIN = "gateway.test:8443/audit"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def platform(data_dir: Path) -> PlatformPki:
    master = load_or_create_master_key(data_dir / "secrets" / "master.key", None)
    return ensure_platform_pki(
        data_dir,
        public_url="https://gateway.test:8443",
        hostnames=["localhost"],
        master_key=master,
    )


@pytest.fixture
def signer(platform: PlatformPki) -> audit_log.CheckpointSigner:
    return audit_log.CheckpointSigner(
        origin=ORIGIN,
        key=checkpoint_key(platform.keystore),
        timestamper=platform.timestamper,
    )


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    # As the gateway connects: the application login, not the test's superuser.
    app_pool = await create_pool(app_url_for(db_url), min_size=1, max_size=4)
    try:
        yield app_pool
    finally:
        await app_pool.close()


@pytest.fixture
async def owner(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(db_url)
    try:
        yield connection
    finally:
        await connection.close()


def event(n: int, *, department: str | None = "dept-a", kind: str = "document.sent") -> AuditEvent:
    return AuditEvent(
        kind,
        T0 + timedelta(seconds=n),
        actor_official=f"official-{n % 3}",
        actor_jkt="jkt-" + str(n),
        department=department,
        document=f"doc-{n}",
        details={"n": n, "名称": "玉林市人民政府", "nested": {"ok": True, "x": 1.5}},
    )


async def add_events(pool: asyncpg.Pool, count: int, *, start: int = 0) -> None:
    async with pool.acquire() as connection:
        for n in range(start, start + count):
            async with connection.transaction():
                await record_event(connection, event(n))


async def sequence(connection: DbConnection) -> int:
    assert await audit_log.try_acquire_sequencer(connection)
    try:
        return await sequencer.sequence_pending(connection, batch=7)
    finally:
        await audit_log.release_sequencer(connection)


async def grow(
    pool: asyncpg.Pool, signer: audit_log.CheckpointSigner, count: int, *, start: int
) -> audit_log.StoredCheckpoint:
    """Add events, sequence them and sign a checkpoint of the new tree."""
    await add_events(pool, count, start=start)
    async with pool.acquire() as connection:
        await sequence(connection)
        made = await sequencer.make_checkpoint(connection, signer, datetime.now(UTC))
    assert made is not None
    return made


def run_verify(
    db_url: str, data_dir: Path, state: Path, log_key: str
) -> subprocess.CompletedProcess[str]:
    """The real command line, in its own process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "audit",
            "verify",
            "--data-dir",
            str(data_dir),
            "--state",
            str(state),
            "--log-key",
            log_key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": db_url},
        check=False,
    )
