"""Shared fixtures: one real PostgreSQL per test session, a fresh database per module,
and real gateway processes serving HTTPS.

``TEST_DATABASE_URL`` points the suite at an existing server; otherwise pgserver starts
one in a short temporary directory (socket paths must stay under ~100 bytes).

Under pytest-xdist every worker is its own session: its own server (or, on a configured
server, its own template database), moto server and temporary directories.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from storage.migrate import migrate

pytest_plugins = ["tests.s3server", "tests.softhsm"]

REPO = Path(__file__).resolve().parent.parent
# One template per xdist worker (gw0, gw1, ...): workers may share a configured server.
TEMPLATE_DB = "sealhub_test_template" + (
    "_" + os.environ["PYTEST_XDIST_WORKER"] if "PYTEST_XDIST_WORKER" in os.environ else ""
)
# A test server need not survive a power cut: commits and CREATE DATABASE skip fsync.
FAST_TEST_SERVER = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def database_url_for(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def app_url_for(admin_url: str) -> str:
    """The same database as the application login ``sealhub_app`` (what a gateway gets)."""
    from storage.db import APP_ROLE, with_login

    return with_login(admin_url, APP_ROLE)


def gateway_database_env(admin_url: str) -> dict[str, str]:
    """A gateway's two logins: the application's for serving, the admin's for migrations."""
    return {"DATABASE_URL": app_url_for(admin_url), "DATABASE_OWNER_URL": admin_url}


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
        url = server.get_uri()
        asyncio.run(_tune(url))
        yield url
    finally:
        server.cleanup()
        # Gigabytes of databases by now: deleting them took 9 to 13 s at the end of a
        # session, which nothing needs to wait for: a detached ``rm`` does it.
        subprocess.run(
            ["sh", "-c", 'rm -rf "$1" >/dev/null 2>&1 &', "sh", root],
            check=True,
            start_new_session=True,
        )


async def _tune(server_url: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        for name, value in FAST_TEST_SERVER.items():
            await admin.execute(f"ALTER SYSTEM SET {name} = {value}")
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()


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
    """A real ``sealhub serve`` process and how to reach it. ``database_url`` is the test's
    admin login (for fixtures); the process itself serves as ``sealhub_app``."""

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
    database_url: str,
    data_dir: Path,
    *,
    demo: bool = True,
    env: dict[str, str] | None = None,
    port: int | None = None,
    wrapper: Sequence[str] = (),
) -> Gateway:
    """A ``sealhub serve`` process; pass *port* to restart one at the same public URL.

    *wrapper* is a command line that runs the server as its last arguments (e.g. ``unshare``).
    """
    port = port or free_port()
    command = [
        *wrapper,
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
        **gateway_database_env(database_url),
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


# --- logged-in officials --------------------------------------------------------------------


def create_official_in_db(
    database_url: str, department: str, roles: list[str], name: str = "测试官员"
) -> tuple[str, str]:
    """(official id, enrollment code), written straight into the database as the server's
    ``sealhub official create`` does (local access is the trust anchor)."""
    from datetime import UTC, datetime

    from gateway.identity import service as identity
    from storage.audit_outbox import OutboxSink
    from storage.db import connect

    async def create() -> tuple[str, str]:
        connection = await connect(database_url)
        try:
            created = await identity.create_official(
                connection,
                name=name,
                department=department,
                roles=roles,
                now=datetime.now(UTC),
                audit=OutboxSink(),
                actor=None,
                via="test",
            )
        finally:
            await connection.close()
        return created.official.id, created.enrollment_code

    return asyncio.run(create())


class Session:
    """An official logged in over HTTPS: every request carries ``Authorization: DPoP`` and a
    fresh DPoP proof signed by the official's key. Use like an httpx client::

        session = login_as(gateway, "yl-jyj", ["clerk"])
        session.get("/v1/me").json()["department"] == "yl-jyj"
    """

    def __init__(self, gateway: Gateway, official_id: str, key: object) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from keys.jws import jwk_thumbprint

        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.gateway = gateway
        self.official_id = official_id
        self.key = key
        self.kid = jwk_thumbprint(key.public_key())
        self.client = gateway.client()
        self.access_token = ""
        self.refresh_token = ""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def proof(
        self, method: str, path: str, *, access_token: str | None = None, **claims: object
    ) -> str:
        """A DPoP proof for ``method path`` (``htu`` = the public URL + path)."""
        from tests.proofs import dpop_proof

        return dpop_proof(
            self.key, method, self.gateway.base_url + path, access_token=access_token, **claims
        )

    def headers(self, method: str, path: str) -> dict[str, str]:
        return {
            "Authorization": f"DPoP {self.access_token}",
            "DPoP": self.proof(method, path, access_token=self.access_token),
        }

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {**self.headers(method, path), **dict(kwargs.pop("headers", None) or {})}  # type: ignore[call-overload]
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    # --- the login steps, usable one by one by tests of the login itself ---

    def enroll(self, enrollment_code: str) -> httpx.Response:
        from tests.proofs import enrollment_proof

        proof = enrollment_proof(self.key, self.official_id, enrollment_code)
        return self.client.post(f"/v1/officials/{self.official_id}/keys", json={"proof": proof})

    def challenge(self) -> str:
        response = self.client.post("/v1/auth/challenge", json={"subject": self.official_id})
        assert response.status_code == 200, response.text
        nonce: str = response.json()["nonce"]
        return nonce

    def assertion(self, nonce: str, **claims: object) -> str:
        from tests.proofs import login_assertion

        audience = self.gateway.base_url + "/v1/auth/token"
        return login_assertion(self.key, self.kid, self.official_id, audience, nonce, **claims)

    def token_request(self, form: dict[str, str], *, dpop: str | None = None) -> httpx.Response:
        proof = dpop or self.proof("POST", "/v1/auth/token")
        return self.client.post("/v1/auth/token", data=form, headers={"DPoP": proof})

    def login(self) -> httpx.Response:
        response = self.token_request(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self.assertion(self.challenge()),
            }
        )
        if response.status_code == 200:
            self._keep(response)
        return response

    def refresh(self, refresh_token: str | None = None) -> httpx.Response:
        response = self.token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token or self.refresh_token}
        )
        if response.status_code == 200:
            self._keep(response)
        return response

    def _keep(self, response: httpx.Response) -> None:
        body = response.json()
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]


def new_session(gateway: Gateway, official_id: str) -> Session:
    """A session for *official_id* with a fresh key, not yet enrolled nor logged in."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return Session(gateway, official_id, ec.generate_private_key(ec.SECP256R1()))


def login_as(
    gateway: Gateway, department: str, roles: list[str], name: str = "测试官员"
) -> Session:
    """A new official of *department* with *roles*, key enrolled, logged in."""
    official_id, code = create_official_in_db(gateway.database_url, department, roles, name)
    session = new_session(gateway, official_id)
    enrolled = session.enroll(code)
    assert enrolled.status_code == 201, enrolled.text
    logged_in = session.login()
    assert logged_in.status_code == 200, logged_in.text
    return session
