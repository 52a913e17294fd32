"""A gateway started with ``SEALHUB_KEYSTORE=pkcs11`` on a fresh softhsm2 token: over HTTPS
it logs officials in, seals (pdfsig accepts the seal), countersigns a receipt with its
time-stamp, and signs audit checkpoints, every one of those keys in the token and none in
its data directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.hsm import Pkcs11KeyStore
from keys.keystore import CHECKPOINT, RECEIPT, TOKEN, TSA, jwk_thumbprint, seal_purpose
from storage.signed_note import open_note, parse_verifier_key
from tests.conftest import REPO, Gateway, Session, login_as, start_gateway
from tests.exchange.conftest import meta_for, send
from tests.exchange.test_exchange_flow import check_countersigned, inbox_item, receipt_jws
from tests.softhsm import PIN, SoftHsm


@pytest.fixture(scope="module")
def token_label(softhsm: SoftHsm) -> str:
    return softhsm.fresh_token()


@pytest.fixture(scope="module")
def gateway(
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    softhsm: SoftHsm,
    token_label: str,
) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url, tmp_path_factory.mktemp("gw-hsm"), env=softhsm.env(token_label)
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def token(softhsm: SoftHsm, token_label: str) -> Iterator[Pkcs11KeyStore]:
    """The gateway's token, opened by this process (the gateway keeps its own session)."""
    opened = Pkcs11KeyStore(softhsm.module, token_label, PIN)
    yield opened
    opened.close()


def _latest_checkpoint(session: Session) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        checkpoint: dict[str, object] = session.get("/v1/audit/checkpoint").json()
        size = checkpoint.get("tree_size")
        if (isinstance(size, int) and size > 0) or time.monotonic() > deadline:
            return checkpoint
        time.sleep(0.3)


def test_the_gateway_seals_stamps_and_signs_with_keys_in_the_token(
    gateway: Gateway,
    seal_keeper: Session,
    sender_seal: dict[str, object],
    sample_pdf: bytes,
    pdfsig: Callable[[bytes], str],
    token: Pkcs11KeyStore,
    softhsm: SoftHsm,
    token_label: str,
    tmp_path: Path,
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕77号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    document = sent.json()
    with login_as(gateway, "yl-jyj", ["clerk"], name="收文员") as clerk:
        item = inbox_item(clerk, document["id"])
        content = clerk.get(f"/v1/documents/{document['id']}/content")
        assert content.status_code == 200
        report = pdfsig(content.content)
        assert "Signature is Valid." in report, report
        assert "Certificate is Trusted." in report, report
        assert "Total document signed" in report, report
        receipt = receipt_jws(clerk, item["id"], document["sha256"])
        answer = clerk.post(f"/v1/deliveries/{item['id']}/receipt", json={"signature": receipt})
        assert answer.status_code == 200, answer.text
        check_countersigned(gateway, answer.json()["countersigned"], receipt, tmp_path)
        jwks = clerk.get("/.well-known/jwks.json").json()
        checkpoint = _latest_checkpoint(clerk)
        log_key = clerk.get("/v1/audit/log-key").json()["verifier_key"]

    # Every signing key the gateway used is one of the token's.
    [seal_key] = token.infos(seal_purpose(str(sender_seal["id"])))
    for purpose in (TOKEN, RECEIPT, CHECKPOINT, TSA):
        assert len(token.infos(purpose)) == 1, purpose
    published = {key["kid"] for key in jwks["keys"]}
    assert published == {token.active_info(TOKEN).kid, token.active_info(RECEIPT).kid}
    for purpose in (TOKEN, RECEIPT, TSA, seal_purpose(str(sender_seal["id"]))):
        public = token.get_public(purpose, token.active_info(purpose).kid)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert jwk_thumbprint(public) == token.active_info(purpose).kid
    assert seal_key.algorithm == "ES256"

    verifier = parse_verifier_key(log_key)
    checkpoint_public = token.get_public(CHECKPOINT, token.active_info(CHECKPOINT).kid)
    assert isinstance(checkpoint_public, ed25519.Ed25519PublicKey)
    assert verifier.public_key == checkpoint_public
    assert isinstance(checkpoint["note"], str), checkpoint
    assert open_note(checkpoint["note"], [verifier]).signers == [verifier.name]

    # The data directory holds only the keys a token cannot serve.
    on_file = {unquote(p.name) for p in (gateway.data_dir / "keystore").iterdir() if p.is_dir()}
    assert on_file == {"pki:root", "pki:seal-ca", "pki:tls-ca", "tls-server"}

    # `sealhub audit verify` pins the log key it reads from the token (no --log-key).
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "audit",
            "verify",
            "--data-dir",
            str(gateway.data_dir),
            "--state",
            str(tmp_path / "audit-state.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env={
            **os.environ,
            **softhsm.env(token_label),
            "DATABASE_URL": gateway.database_url,
            "SEALHUB_PUBLIC_URL": gateway.base_url,  # the log's name comes from it
            "SEALHUB_LOG_LEVEL": "warning",
        },
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
