"""The platform PKI on disk: first start, later starts, renewal, HTTPS with the result."""

from __future__ import annotations

import asyncio
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keys import crl, pki
from keys.keystore import jwk_thumbprint
from keys.master import MasterKey
from keys.platform import (
    PlatformPki,
    PlatformPkiError,
    ensure_platform_pki,
    load_exported_root_key,
)
from keys.tsa import TimeStampAuthority, respond, token_from_response

from .conftest import OpenSsl


def _ensure(
    data_dir: Path, master_key: MasterKey, hostnames: list[str], **kw: object
) -> PlatformPki:
    return ensure_platform_pki(
        data_dir,
        public_url=str(kw.get("public_url", "https://gateway.test:8443")),
        hostnames=hostnames,
        master_key=master_key,
        now=kw.get("now") or datetime.now(UTC),  # type: ignore[arg-type]
    )


def _pems(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_first_start_writes_root_chain_and_wrapped_keys(platform: PlatformPki) -> None:
    assert _pems(platform.ca_pem_path) == [platform.root_cert]
    assert _pems(platform.chain_pem_path) == [
        platform.seal_ca.cert,
        platform.tls_ca.cert,
        platform.tsa.cert,
    ]
    assert platform.has_root_key
    assert (platform.pki_dir / "private").stat().st_mode & 0o777 == 0o700
    keystore_dir = platform.pki_dir.parent / "keystore"
    assert sorted(p.name for p in keystore_dir.iterdir()) == [
        "pki%3Aroot",
        "pki%3Aseal-ca",
        "pki%3Atls-ca",
        "tls-server",
        "tsa",
    ]
    for path in keystore_dir.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0
    scalars = [
        ck.key.private_numbers().private_value.to_bytes(32, "big")
        for ck in (platform.seal_ca, platform.tls_ca, platform.tsa, platform.tls_server)
    ]
    everything = b"".join(p.read_bytes() for p in platform.pki_dir.parent.rglob("*") if p.is_file())
    for scalar in scalars:
        assert scalar not in everything
        assert scalar.hex() not in repr(platform) + repr(platform.seal_ca) + str(platform.tsa)
    assert b"PRIVATE KEY" not in everything
    assert pki.crl_distribution_url(platform.tls_server.cert) == (
        "https://gateway.test:8443/v1/pki/crl/tls-ca"
    )


def test_later_start_loads_the_same_hierarchy(
    tmp_path: Path, master_key: MasterKey, platform: PlatformPki
) -> None:
    again = _ensure(tmp_path / "data", master_key, ["localhost", "127.0.0.1"])
    assert again.root_cert == platform.root_cert
    assert again.tls_server.cert == platform.tls_server.cert
    assert again.seal_ca.key.private_numbers() == platform.seal_ca.key.private_numbers()


def test_wrong_master_key_is_refused(tmp_path: Path, platform: PlatformPki) -> None:
    with pytest.raises(PlatformPkiError, match="does not open"):
        _ensure(tmp_path / "data", MasterKey.generate(), ["localhost", "127.0.0.1"])


def test_tls_certificate_reissued_for_new_hostnames_or_near_expiry(
    tmp_path: Path, master_key: MasterKey, platform: PlatformPki
) -> None:
    renamed = _ensure(tmp_path / "data", master_key, ["gw.example.gov.cn", "127.0.0.1"])
    assert renamed.root_cert == platform.root_cert
    assert renamed.tls_server.cert != platform.tls_server.cert
    assert pki.subject_alternative_names(renamed.tls_server.cert) == {
        "gw.example.gov.cn",
        "127.0.0.1",
    }
    assert _pems(renamed.tls_cert_pem_path)[0] == renamed.tls_server.cert
    later = datetime.now(UTC) + timedelta(days=340)
    renewed = _ensure(tmp_path / "data", master_key, ["gw.example.gov.cn", "127.0.0.1"], now=later)
    assert renewed.tls_server.cert.not_valid_after_utc > later + timedelta(days=300)
    stable = _ensure(tmp_path / "data", master_key, ["gw.example.gov.cn", "127.0.0.1"], now=later)
    assert stable.tls_server.cert == renewed.tls_server.cert


def test_concurrent_first_starts_agree(tmp_path: Path, master_key: MasterKey) -> None:
    results: list[PlatformPki] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(_ensure(tmp_path / "data", master_key, ["localhost"]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r.root_cert.serial_number for r in results}) == 1
    assert len({r.tls_server.cert.serial_number for r in results}) == 1


def test_openssl_verifies_server_and_seal_against_root_and_chain(
    tmp_path: Path, platform: PlatformPki, openssl: OpenSsl
) -> None:
    seal = pki.issue_seal_certificate(
        platform.seal_ca.key,
        platform.seal_ca.cert,
        pki.new_private_key().public_key(),
        department_name_zh="玉林市公安局",
        department_code="450900-020",
        seal_id="seal-42",
        crl_url=platform.crl_url(pki.SEAL_CA_NAME),
        now=datetime.now(UTC),
    )
    seal_pem = tmp_path / "seal.pem"
    seal_pem.write_bytes(seal.public_bytes(serialization.Encoding.PEM))
    for leaf, purpose in (
        (platform.cert_path("tls-server"), "sslserver"),
        (seal_pem, "any"),
        (platform.cert_path("tsa"), "timestampsign"),
    ):
        result = openssl(
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            platform.ca_pem_path,
            "-untrusted",
            platform.chain_pem_path,
            leaf,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{leaf}: OK"
    # Without the chain the leaf does not reach the root.
    result = openssl("verify", "-CAfile", platform.ca_pem_path, seal_pem)
    assert result.returncode != 0


async def _serve_and_fetch(platform: PlatformPki, client_ctx: ssl.SSLContext, host: str) -> str:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="sealhub")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=platform.ssl_context())
    await site.start()
    try:
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = server.sockets[0].getsockname()[1]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"https://127.0.0.1:{port}/", ssl=client_ctx, server_hostname=host) as r,
        ):
            return await r.text()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_https_server_trusted_by_a_client_that_knows_only_ca_pem(
    platform: PlatformPki, host: str
) -> None:
    client_ctx = ssl.create_default_context(cafile=str(platform.ca_pem_path))
    assert await _serve_and_fetch(platform, client_ctx, host) == "sealhub"
    assert not list((platform.pki_dir / "private").glob(".tls-*"))  # temp key file removed


async def test_https_client_refuses_wrong_name_and_unknown_root(
    platform: PlatformPki, tmp_path: Path
) -> None:
    client_ctx = ssl.create_default_context(cafile=str(platform.ca_pem_path))
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _serve_and_fetch(platform, client_ctx, "evil.test")
    other = tmp_path / "other.pem"
    _, other_root = pki.new_root_ca("Other", now=datetime.now(UTC))
    other.write_bytes(other_root.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _serve_and_fetch(platform, ssl.create_default_context(cafile=str(other)), "localhost")


def test_tls_context_refuses_tls_1_1(platform: PlatformPki) -> None:
    assert platform.ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_renewal_replaces_the_old_server_key(
    tmp_path: Path, master_key: MasterKey, platform: PlatformPki
) -> None:
    renewed = _ensure(tmp_path / "data", master_key, ["other.test"])
    infos = renewed.keystore.infos("tls-server")
    assert [i.kid for i in infos] == [jwk_thumbprint(renewed.tls_server.key.public_key())]
    assert renewed.tls_server.key.public_key() != platform.tls_server.key.public_key()


def test_root_key_export_then_the_platform_keeps_working(
    tmp_path: Path, master_key: MasterKey, platform: PlatformPki, openssl: OpenSsl
) -> None:
    exported = tmp_path / "offline" / "root-key.pem"
    passphrase = b"correct horse battery staple"
    with pytest.raises(PlatformPkiError, match="passphrase"):
        platform.export_root_key(exported, b"short")
    after = platform.export_root_key(exported, passphrase)
    assert not after.has_root_key
    assert exported.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in exported.read_bytes()
    back = load_exported_root_key(exported, passphrase)
    assert platform.root_key is not None
    assert back.private_numbers() == platform.root_key.private_numbers()
    with pytest.raises(PlatformPkiError, match="passphrase"):
        load_exported_root_key(exported, b"wrong passphrase!!")
    # The key store no longer holds the root key, not even on disk.
    assert after.keystore.infos("pki:root") == []
    root_scalar = platform.root_key.private_numbers().private_value.to_bytes(32, "big")
    assert not list((tmp_path / "data" / "keystore" / "pki%3Aroot").glob("*.json"))
    with pytest.raises(PlatformPkiError, match="already exported"):
        after.export_root_key(tmp_path / "again.pem", passphrase)

    # A restart (new process) works without the root key: HTTPS, renewal, seals, TSA, CRLs.
    restarted = _ensure(tmp_path / "data", master_key, ["localhost", "renamed.test"])
    assert not restarted.has_root_key
    assert restarted.root_cert == platform.root_cert
    assert "renamed.test" in pki.subject_alternative_names(restarted.tls_server.cert)
    assert isinstance(restarted.ssl_context(), ssl.SSLContext)
    seal = restarted.issue_seal_certificate(
        pki.new_private_key().public_key(),
        department_name_zh="玉林市审计局",
        department_code="450900-044",
        seal_id="after-export",
        now=datetime.now(UTC),
    )
    assert seal.issuer == restarted.seal_ca.cert.subject
    seal_pem = tmp_path / "seal.pem"
    seal_pem.write_bytes(seal.public_bytes(serialization.Encoding.PEM))
    result = openssl(
        "verify", "-CAfile", restarted.ca_pem_path, "-untrusted", restarted.chain_pem_path, seal_pem
    )
    assert result.stdout.strip() == f"{seal_pem}: OK", result.stderr
    tsa = TimeStampAuthority(cert=restarted.tsa.cert, key=restarted.tsa.key)
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": bytes(32),
            },
            "cert_req": True,
        }
    )
    assert token_from_response(respond(tsa, request.dump(), serial_number=1, now=datetime.now(UTC)))
    seal_crl = restarted.build_crl(
        pki.SEAL_CA_NAME,
        [crl.RevokedCertificate(seal.serial_number, datetime.now(UTC))],
        now=datetime.now(UTC),
    )
    assert crl.load_crl(seal_crl).get_revoked_certificate_by_serial_number(seal.serial_number)
    root_crl = crl.load_crl(restarted.root_crl())
    assert root_crl.is_signature_valid(back.public_key())
    assert root_crl.next_update_utc is not None
    assert root_crl.next_update_utc > datetime.now(UTC) + timedelta(days=300)
    with pytest.raises(PlatformPkiError):
        restarted.build_crl("root", [], now=datetime.now(UTC))
    everything = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert root_scalar not in everything


def test_root_crl_written_at_setup_and_parsed_by_openssl(
    platform: PlatformPki, openssl: OpenSsl
) -> None:
    result = openssl("crl", "-inform", "DER", "-in", platform.root_crl_path, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "sealhub Root CA" in result.stdout
    assert "No Revoked Certificates." in result.stdout
