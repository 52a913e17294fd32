"""Three ``sealhub serve`` processes on one database, one data directory and one object store.

They share the data directory (master key, PKI, key store) exactly as the replicas of
docker/ share a volume, and one ``SEALHUB_PUBLIC_URL``: the origin is part of every DPoP
``htu``, token ``aud`` and of the audit log's checkpoint origin, so replicas behind one
load balancer must agree on it. The load generator connects to each process directly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from storage.db import connect
from tests.conftest import REPO, Gateway, app_url_for, free_port, start_gateway

PROCESSES = 3


@dataclass
class Cluster:
    gateways: list[Gateway]
    public_url: str
    data_dir: Path
    database_url: str  # the admin login (fixtures); the processes serve as sealhub_app

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "pki" / "ca.pem"

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()

    def logs(self) -> str:
        return "".join(
            f"--- process {n + 1} ---\n" + "".join(g.output) for n, g in enumerate(self.gateways)
        )


def start_cluster(
    database_url: str, data_dir: Path, *, store_env: dict[str, str] | None = None
) -> Cluster:
    """The first process creates the data directory and loads the demo; the others join it."""
    ports = [free_port() for _ in range(PROCESSES)]
    public_url = f"https://127.0.0.1:{ports[0]}"
    env = {"SEALHUB_PUBLIC_URL": public_url, **(store_env or {})}
    first = start_gateway(database_url, data_dir, demo=True, env=env, port=ports[0])
    gateways = [first]
    # The data directory exists now: the others start side by side.
    with ThreadPoolExecutor(PROCESSES - 1) as pool:
        joining = [
            pool.submit(start_gateway, database_url, data_dir, demo=False, env=env, port=port)
            for port in ports[1:]
        ]
        failure: BaseException | None = None
        for future in joining:
            try:
                gateways.append(future.result())
            except BaseException as exc:
                failure = exc
    if failure is not None:
        for started in gateways:
            started.stop()
        raise failure
    return Cluster(gateways, public_url, data_dir, database_url)


async def outbox_drained(database_url: str, within: float = 30.0) -> int:
    """Wait until the sequencer has moved every audit event into the log; the log's size."""
    connection = await connect(database_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await connection.fetchval("SELECT count(*) FROM audit_outbox"):
            if loop.time() > deadline:
                raise AssertionError("the audit outbox was not drained in time")
            await asyncio.sleep(0.2)
        size: int = await connection.fetchval("SELECT count(*) FROM audit_log")
        top = await connection.fetchval("SELECT max(idx) FROM audit_log")
        assert top == size - 1, f"audit log has gaps: {size} entries, top index {top}"
        return size
    finally:
        await connection.close()


def audit_verify(cluster: Cluster, state: Path) -> subprocess.CompletedProcess[str]:
    """``sealhub audit verify`` as an operator runs it on the server (its own process)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "audit",
            "verify",
            "--data-dir",
            str(cluster.data_dir),
            "--state",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={
            **os.environ,
            "DATABASE_URL": app_url_for(cluster.database_url),
            "SEALHUB_PUBLIC_URL": cluster.public_url,
        },
        check=False,
    )
