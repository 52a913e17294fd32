"""The restore drill: a real gateway on its embedded PostgreSQL, backed up with
``sealhub backup``, restored with ``sealhub restore --to TIME``, then checked with
``sealhub audit verify`` against the checkpoint an inspector cosigned. A second restore to
before that checkpoint must be reported as a rollback, and the gateway must not start on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.signed_note import add_signature, verifier_key
from tests.conftest import REPO, Gateway, Session, free_port, new_session, start_gateway
from tests.exchange.conftest import meta_for, send
from tests.seals.seal_corpus import reportlab_pdf

EMBEDDED = {"DATABASE_URL": "", "DATABASE_OWNER_URL": ""}  # empty: the embedded server
WITNESS = "inspector.example/witness"


def sealhub(data_dir: Path, *args: str, port: int = 0) -> subprocess.CompletedProcess[str]:
    """One ``sealhub`` command on *data_dir* (embedded PostgreSQL), as an operator runs it
    (with the gateway's port, hence its public URL and log origin, when one is given)."""
    env = {**os.environ, **EMBEDDED, "SEALHUB_LOG_LEVEL": "warning", "SEALHUB_LOG_FORMAT": "text"}
    if port:
        env["SEALHUB_PORT"] = str(port)
    command = [sys.executable, "-m", "gateway", "--data-dir", str(data_dir), *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def serve(data_dir: Path, port: int, *, demo: bool = False) -> Gateway:
    return start_gateway("embedded", data_dir, demo=demo, env=EMBEDDED, port=port)


def official(gateway: Gateway, department: str, roles: str) -> Session:
    """Created by ``sealhub official create`` (local access), enrolled and logged in."""
    created = sealhub(
        gateway.data_dir, "official", "create", "--department", department, "--name", "演练",
        "--roles", roles, "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout.strip().splitlines()[-1])
    session = new_session(gateway, body["id"])
    assert session.enroll(body["enrollment_code"]).status_code == 201
    assert session.login().status_code == 200
    return session


def moved_to(session: Session, gateway: Gateway) -> Session:
    """The same logged-in session against a restarted gateway process."""
    session.client.close()
    session.gateway = gateway
    session.client = gateway.client()
    return session


def now_rfc3339() -> str:
    time.sleep(0.3)  # commits on either side are clearly before or after
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.3)
    return moment


def sent(keeper: Session, number: int, pdf: bytes) -> str:
    response = send(keeper, meta_for(["yl-jtj"], f"玉办发〔2026〕{number}号"), pdf)
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def cosign_covering(inspector: Session, document_id: str, path: Path) -> int:
    """The inspector's witness cosigns the first checkpoint that covers every audit entry
    about *document_id*, and keeps its own copy of the cosigned note in *path*; returns the
    checkpoint's tree size."""
    witness = Ed25519PrivateKey.generate()
    deadline = time.monotonic() + 20
    while True:
        entries = inspector.get("/v1/audit/entries", params={"document": document_id})
        assert entries.status_code == 200, entries.text
        last = max((entry["index"] for entry in entries.json()["items"]), default=None)
        checkpoint = inspector.get("/v1/audit/checkpoint")
        if last is not None and checkpoint.status_code == 200:
            body = checkpoint.json()
            if body["tree_size"] > last:
                break
        assert time.monotonic() < deadline, "no checkpoint covers the document"
        time.sleep(0.5)
    note = add_signature(body["note"], WITNESS, witness)
    key = verifier_key(WITNESS, witness.public_key())
    cosigned = inspector.post("/v1/audit/cosign", json={"note": note, "verifier_key": key})
    assert cosigned.status_code == 200, cosigned.text
    path.write_text(note, "utf-8")
    size: int = body["tree_size"]
    return size


def test_restore_to_a_time_then_a_rollback_behind_the_cosigned_checkpoint(tmp_path: Path) -> None:
    data_dir, port, pdf = tmp_path / "data", free_port(), reportlab_pdf(pages=1)
    inspector_copy, state = tmp_path / "inspector.note", tmp_path / "verify-state.json"

    # The first backup turns WAL archiving on (the embedded server is not running yet).
    first = sealhub(data_dir, "backup")
    assert first.returncode == 0, first.stderr
    gateway = serve(data_dir, port, demo=True)
    try:
        admin_a = official(gateway, "yl", "admin")
        admin_b = official(gateway, "yl", "admin")
        requested = admin_a.post("/v1/departments/yl-bgs/seal-requests", json={"purpose": "公文"})
        assert requested.status_code == 201, requested.text
        approved = admin_b.post(f"/v1/seal-requests/{requested.json()['id']}/approve")
        assert approved.status_code == 201, approved.text
        keeper = official(gateway, "yl-bgs", "seal_keeper,clerk")
        inspector = official(gateway, "yl", "inspector")
        doc1 = sent(keeper, 1, pdf)
        before_cosigned = now_rfc3339()  # drill 2 goes back to here
        doc2 = sent(keeper, 2, pdf)
        cosigned_size = cosign_covering(inspector, doc2, inspector_copy)
        assert len(list((data_dir / "audit" / "cosigned").glob("*.note"))) == 1

        second = sealhub(data_dir, "backup")  # while the gateway serves
        assert second.returncode == 0, second.stderr
        doc3 = sent(keeper, 3, pdf)
        target = now_rfc3339()
        doc4 = sent(keeper, 4, pdf)
    finally:
        gateway.stop()

    # Drill 1: back to `target`, after the cosigned checkpoint.
    restored = sealhub(data_dir, "restore", "--to", target)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    gateway = serve(data_dir, port)
    try:
        keeper = moved_to(keeper, gateway)
        for present in (doc1, doc2, doc3):
            assert keeper.get(f"/v1/documents/{present}").status_code == 200, present
        assert keeper.get(f"/v1/documents/{present}/content").content.startswith(b"%PDF")
        assert keeper.get(f"/v1/documents/{doc4}").status_code == 404
        verified = sealhub(
            data_dir,
            "audit",
            "verify",
            "--state",
            str(state),
            "--checkpoint",
            str(inspector_copy),
            port=port,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith("OK:"), verified.stdout
    finally:
        gateway.stop()
        keeper.close()

    # Drill 2: back to before the checkpoint the inspector cosigned: a rollback, loudly.
    rolled_back = sealhub(data_dir, "restore", "--to", before_cosigned)
    assert rolled_back.returncode == 3, rolled_back.stdout + rolled_back.stderr
    assert f"cosigned the log at tree size {cosigned_size}" in rolled_back.stdout
    assert "ROLLBACK" in rolled_back.stdout and "refuses to start" in rolled_back.stderr
    verified = sealhub(
        data_dir, "audit", "verify", "--state", str(tmp_path / "fresh.json"), port=port
    )
    assert verified.returncode == 3, verified.stdout + verified.stderr
    assert f"tree size {cosigned_size}" in verified.stdout
    assert "ROLLBACK DETECTED" in verified.stdout
    against_inspector = sealhub(
        data_dir,
        "audit",
        "verify",
        "--state",
        str(state),
        "--checkpoint",
        str(inspector_copy),
        port=port,
    )
    assert against_inspector.returncode == 3, against_inspector.stdout
    with pytest.raises(RuntimeError, match="behind a cosigned checkpoint") as refused:
        serve(data_dir, port)
    assert f"tree size {cosigned_size}" in str(refused.value)
    for session in (admin_a, admin_b, inspector):
        session.close()
