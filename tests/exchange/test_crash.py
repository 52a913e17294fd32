"""kill -9 of the gateway during 100 concurrent sends: after a restart every send that got
201 is complete, nothing is half-made, and the audit log still verifies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from storage.db import connect
from tests.conftest import REPO, Session, login_as, start_gateway
from tests.exchange.conftest import issue_seal, meta_for, send

SENDS = 100


def test_kill_9_during_concurrent_sends_leaves_no_half_made_document(
    db_url: str, tmp_path: Path, sample_pdf: bytes
) -> None:
    data_dir = tmp_path / "gw"
    gateway = start_gateway(db_url, data_dir, demo=True)
    port = gateway.base_url.rsplit(":", 1)[1]
    admins = (login_as(gateway, "yl", ["admin"]), login_as(gateway, "yl", ["admin"]))
    issue_seal(admins, "yl-bgs")
    keeper = login_as(gateway, "yl-bgs", ["seal_keeper"])
    created: dict[str, dict[str, object]] = {}
    lock = threading.Lock()
    started = threading.Event()

    def one(number: int) -> None:
        session = Session(gateway, keeper.official_id, keeper.key)
        session.access_token = keeper.access_token
        # A hundred seals queue for two workers on a busy machine: be patient.
        session.client.timeout = httpx.Timeout(300)
        meta = meta_for(["yl-jyj", "all-county-governments"], f"玉政办发〔2026〕{1000 + number}号")
        started.set()
        try:
            response = send(
                session, meta, sample_pdf, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        except httpx.HTTPError:
            return  # the gateway died under this request: it never got its 201
        finally:
            session.close()
        if response.status_code == 201:
            with lock:
                created[response.json()["id"]] = response.json()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(SENDS)]
    for thread in threads:
        thread.start()
    started.wait(30)
    deadline = time.monotonic() + 240
    while len(created) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait()
    for thread in threads:
        thread.join(60)
    acknowledged = dict(created)
    assert 10 <= len(acknowledged) < SENDS, len(acknowledged)

    restarted = start_gateway(db_url, data_dir, demo=False, port=int(port))
    try:
        keeper.client.close()
        keeper.client = restarted.client()
        keeper.gateway = restarted
        for document_id, answer in acknowledged.items():
            view = keeper.get(f"/v1/documents/{document_id}")
            assert view.status_code == 200, view.text
            assert view.json()["status"] == "dispatched"
            assert len(view.json()["deliveries"]) == answer["deliveries"] == 8
            content = keeper.get(f"/v1/documents/{document_id}/content").content
            assert hashlib.sha256(content).hexdigest() == answer["sha256"]

        async def half_made() -> tuple[int, int]:
            connection = await connect(db_url)
            try:
                without_deliveries = await connection.fetchval(
                    "SELECT count(*) FROM documents d WHERE NOT EXISTS"
                    " (SELECT 1 FROM deliveries x WHERE x.document = d.id)"
                )
                total = await connection.fetchval("SELECT count(*) FROM documents")
            finally:
                await connection.close()
            return int(without_deliveries), int(total)

        orphans, total = asyncio.run(half_made())
        assert orphans == 0
        assert total >= len(acknowledged)
        # Every committed document's objects are readable (object first, database second).
        for document_id in acknowledged:
            assert keeper.get(f"/v1/documents/{document_id}/content").status_code == 200

        log_key = keeper.get("/v1/audit/log-key").json()["verifier_key"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the restarted sequencer catches up
            checkpoint = keeper.get("/v1/audit/checkpoint").json()
            pending = asyncio.run(_outbox_size(db_url))
            if pending == 0 and checkpoint["tree_size"] > 0:
                break
            time.sleep(0.5)
        verified = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "audit",
                "verify",
                "--data-dir",
                str(data_dir),
                "--state",
                str(tmp_path / "audit-state.json"),
                "--log-key",
                log_key,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            cwd=REPO,
            env={**os.environ, "DATABASE_URL": db_url, "SEALHUB_LOG_LEVEL": "warning"},
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        restarted.stop()
        for session in (*admins, keeper):
            session.close()


async def _outbox_size(db_url: str) -> int:
    connection = await connect(db_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM audit_outbox"))
    finally:
        await connection.close()
