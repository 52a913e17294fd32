"""PKI material over HTTPS, checked with openssl; the root key can leave the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import REPO, Gateway, start_gateway


def openssl(*args: str, data: bytes | None = None) -> str:
    result = subprocess.run(
        ["openssl", *args], input=data, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_root_and_chain_are_served_as_on_disk(gateway: Gateway, tmp_path: Path) -> None:
    with gateway.client() as client:
        root = client.get("/v1/pki/ca.pem")
        chain = client.get("/v1/pki/chain.pem")
    assert root.headers["content-type"].startswith("application/x-pem-file")
    assert root.content == gateway.ca_path.read_bytes()
    assert chain.content == (gateway.data_dir / "pki" / "chain.pem").read_bytes()
    names = [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(chain.content)]
    assert len(names) == 3
    # Every issuing CA in the chain verifies against the root that was served.
    (tmp_path / "root.pem").write_bytes(root.content)
    for certificate in x509.load_pem_x509_certificates(chain.content):
        single = tmp_path / "one.pem"
        single.write_bytes(certificate.public_bytes(Encoding.PEM))
        assert ": OK" in openssl("verify", "-CAfile", str(tmp_path / "root.pem"), str(single))


@pytest.mark.parametrize("ca", ["root", "seal-ca", "tls-ca"])
def test_crls_parse_and_verify_with_openssl(gateway: Gateway, ca: str, tmp_path: Path) -> None:
    with gateway.client() as client:
        response = client.get(f"/v1/pki/crl/{ca}")
        chain = client.get("/v1/pki/chain.pem").content
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    (tmp_path / "crl.der").write_bytes(response.content)
    (tmp_path / "cas.pem").write_bytes(gateway.ca_path.read_bytes() + chain)
    text = openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        str(tmp_path / "crl.der"),
        "-noout",
        "-text",
        "-CAfile",
        str(tmp_path / "cas.pem"),
    )
    assert "Next Update" in text
    assert "No Revoked Certificates" in text


def test_certificates_point_at_the_crl_endpoint(gateway: Gateway) -> None:
    tls = x509.load_pem_x509_certificates((gateway.data_dir / "pki" / "chain.pem").read_bytes())
    for certificate in tls:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        url = points[0].full_name[0].value
        assert url == gateway.base_url + "/v1/pki/crl/root"


def test_unknown_ca_is_404(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/v1/pki/crl/evil-ca")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_gateway_keeps_working_after_the_root_key_is_exported(db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "gw"
    first = start_gateway(db_url, data_dir, demo=False)
    port = first.base_url.rsplit(":", 1)[1]
    first.stop()
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    exported = tmp_path / "root-key.pem"
    env = {**os.environ, "DATABASE_URL": db_url, "SEALHUB_PORT": port}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "pki",
            "export-root",
            "--data-dir",
            str(data_dir),
            "--out",
            str(exported),
            "--passphrase-file",
            str(secret),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert exported.stat().st_mode & 0o077 == 0
    assert b"ENCRYPTED PRIVATE KEY" in exported.read_bytes()
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "pki",
            "export-root",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "second.pem"),
            "--passphrase-file",
            str(secret),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert again.returncode == 2
    assert "already exported" in again.stderr

    second = start_gateway(db_url, data_dir, demo=False, env={"SEALHUB_PORT": port})
    try:
        with second.client() as client:
            assert client.get("/readyz").status_code == 200
            assert client.get("/v1/pki/crl/seal-ca").status_code == 200
            assert client.get("/v1/pki/crl/root").status_code == 200
    finally:
        second.stop()
