"""Shared fixtures: one real PostgreSQL per test session, a fresh database per module,
and real gateway processes serving HTTPS.

``TEST_DATABASE_URL`` points the suite at an existing server; otherwise pgserver starts
one in a short temporary directory (socket paths must stay under ~100 bytes).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from storage.migrate import migrate

pytest_plugins = ["tests.s3server"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TEMPLATE_DB = "sealhub_test_template"


def database_url_for(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from pgserver.postgres_server import get_server

    root = tempfile.mkdtemp(prefix="shpg-", dir="/tmp")
    os.chmod(root, 0o755)
    server = get_server(Path(root), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> str:
    """A migrated database that every test database is copied from (fast, isolated)."""

    async def build() -> None:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await admin.close()
        await migrate(database_url_for(pg_server_url, TEMPLATE_DB))

    asyncio.run(build())
    return TEMPLATE_DB


def _create_database(pg_server_url: str, template: str) -> str:
    name = "t_" + secrets.token_hex(6)

    async def create() -> None:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await admin.close()

    asyncio.run(create())
    return database_url_for(pg_server_url, name)


@pytest.fixture(scope="module")
def module_db_url(pg_server_url: str, template_database: str) -> str:
    """A fresh, migrated database for one test module."""
    return _create_database(pg_server_url, template_database)


@pytest.fixture
def db_url(pg_server_url: str, template_database: str) -> str:
    """A fresh, migrated database for one test."""
    return _create_database(pg_server_url, template_database)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Gateway:
    """A real ``sealhub serve`` process and how to reach it."""

    base_url: str
    data_dir: Path
    database_url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "pki" / "ca.pem"

    def client(self, **kwargs: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        return httpx.Client(base_url=self.base_url, verify=context, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway(
    database_url: str, data_dir: Path, *, demo: bool = True, env: dict[str, str] | None = None
) -> Gateway:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
    ]
    if demo:
        command.append("--demo")
    process_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SEALHUB_LOG_FORMAT": "text",
        "SEALHUB_LOG_LEVEL": "warning",
        **(env or {}),
    }
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=process_env,
        cwd=REPO,
    )
    gateway = Gateway(f"https://127.0.0.1:{port}", data_dir, database_url, process)
    ready = threading.Event()

    def drain() -> None:
        # Keep reading so a chatty gateway never blocks on a full pipe.
        assert process.stdout is not None
        for line in process.stdout:
            gateway.output.append(line)
            if line.startswith("CA certificate:"):
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if ready.wait(60) and process.poll() is None:
        return gateway
    gateway.stop()
    raise RuntimeError("gateway did not start:\n" + "".join(gateway.output))


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway with the demo data per test module, on its own database."""
    running = start_gateway(module_db_url, tmp_path_factory.mktemp("gw"))
    try:
        yield running
    finally:
        running.stop()
