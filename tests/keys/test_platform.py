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
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keys import pki
from keys.master import MasterKey
from keys.platform import PlatformPki, PlatformPkiError, ensure_platform_pki

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
    private = platform.pki_dir / "private"
    assert private.stat().st_mode & 0o777 == 0o700
    wrapped = sorted(private.iterdir())
    assert len(wrapped) == 5
    for path in wrapped:
        assert path.stat().st_mode & 0o777 == 0o600
    scalars = [
        ck.key.private_numbers().private_value.to_bytes(32, "big")
        for ck in (platform.seal_ca, platform.tls_ca, platform.tsa, platform.tls_server)
    ]
    everything = b"".join(p.read_bytes() for p in platform.pki_dir.rglob("*") if p.is_file())
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
