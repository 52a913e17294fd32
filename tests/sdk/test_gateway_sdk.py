"""The SDK against a real gateway (HTTPS, real PostgreSQL): TLS, directory, login, refresh,
revocation, retries. The gateway is the module's ``gateway`` fixture from tests/conftest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sealhub_sdk import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConfigurationError,
    Department,
    DeviceKey,
    NotFound,
    TransportError,
)

from tests.conftest import Gateway, create_official_in_db
from tests.sdk.conftest import SdkPlatform

DEMO_UNITS = 234


def client_for(
    gateway: Gateway, key: DeviceKey | None = None, official: str | None = None
) -> Client:
    return Client(gateway.base_url, ca_file=gateway.ca_path, key=key, official_id=official)


def enrolled_client(gateway: Gateway, department: str, roles: list[str]) -> Client:
    official, code = create_official_in_db(gateway.database_url, department, roles)
    client = client_for(gateway, DeviceKey.generate(), official)
    client.enroll(official, code)
    client.login()
    return client


@pytest.fixture(scope="module")
def reader(gateway: Gateway) -> Iterator[Client]:
    """Any logged-in official may read the directory."""
    client = enrolled_client(gateway, "yl-bgs", ["clerk"])
    yield client
    client.close()


def test_http_urls_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    with pytest.raises(ConfigurationError) as refused:
        Client("http://127.0.0.1:8443", ca_file=ca)
    assert refused.value.code == "insecure_url"


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Client("https://127.0.0.1:8443", ca_file=tmp_path / "absent.pem")
    assert refused.value.code == "ca_file_missing"


def test_tls_with_the_wrong_ca_fails_closed(
    gateway: Gateway, other_platform: SdkPlatform, tmp_path: Path
) -> None:
    wrong = tmp_path / "other-ca.pem"
    wrong.write_bytes(other_platform.root_pem)
    with Client(gateway.base_url, ca_file=wrong) as client, pytest.raises(TransportError) as failed:
        client.department("yl")
    assert failed.value.code == "tls_verification_failed"


def test_directory_pagination(reader: Client) -> None:
    client = reader
    if True:
        first = client.departments_page(limit=7)
        assert len(first.items) == 7
        assert first.next_cursor is not None
        units = list(client.departments(page_size=7))
        assert len(units) == DEMO_UNITS
        assert len({u.code for u in units}) == DEMO_UNITS
        assert units[:7] == list(first.items)
        children = list(client.departments(parent="yl", page_size=5))
        assert children and all(u.parent == "yl" for u in children)
        assert client.department("yl") == Department(
            "yl", "玉林市人民政府", "Yulin Municipal People's Government", None, "city"
        )
        with pytest.raises(NotFound) as missing:
            client.department("no-such-unit")
        assert missing.value.status == 404 and missing.value.request_id


def test_async_client_lists_the_same_directory(gateway: Gateway, reader: Client) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])

    async def listing() -> list[Department]:
        key = DeviceKey.generate()
        async with AsyncClient(
            gateway.base_url, ca_file=gateway.ca_path, key=key, official_id=official
        ) as client:
            await client.enroll(official, code)
            await client.login()
            assert (await client.me()).department == "yl-jyj"
            return [unit async for unit in client.departments(page_size=50)]

    assert asyncio.run(listing()) == list(reader.departments(page_size=500))


def test_ca_certificate_is_the_trusted_root(gateway: Gateway) -> None:
    with client_for(gateway) as client:
        assert client.ca_certificate() == gateway.ca_path.read_bytes()


def test_enroll_login_me(gateway: Gateway) -> None:
    with enrolled_client(gateway, "yl-jyj", ["clerk"]) as client:
        me = client.me()
        assert me.department == "yl-jyj"
        assert me.roles == ("clerk",)
        assert me.kid == client._core.key.thumbprint  # type: ignore[union-attr]


def test_enrollment_code_is_single_use(gateway: Gateway) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    with client_for(gateway, DeviceKey.generate(), official) as first:
        first.enroll(official, code)
    with (
        client_for(gateway, DeviceKey.generate(), official) as second,
        pytest.raises(AuthenticationError),
    ):
        second.enroll(official, code)


def test_expired_access_token_is_refreshed_transparently(gateway: Gateway) -> None:
    with enrolled_client(gateway, "yl-fgw", ["clerk"]) as client:
        tokens = client._core.tokens
        before = (tokens.access_token, tokens.refresh_token)
        tokens.expires_at = 0  # as if 15 minutes had passed
        assert client.me().department == "yl-fgw"
        assert (tokens.access_token, tokens.refresh_token) != before
        assert tokens.refresh_token != before[1]  # rotated


def test_rejected_access_token_is_refreshed_once(gateway: Gateway) -> None:
    with enrolled_client(gateway, "yl-fgw", ["clerk"]) as client:
        tokens = client._core.tokens
        old_refresh = tokens.refresh_token
        assert tokens.access_token is not None
        head, body, _ = tokens.access_token.split(".")
        tokens.access_token = f"{head}.{body}.AAAA"  # the gateway answers 401 invalid_token
        assert client.me().department == "yl-fgw"
        assert tokens.refresh_token != old_refresh


def test_revoked_key_ends_the_session(gateway: Gateway) -> None:
    admin = enrolled_client(gateway, "yl-jyj", ["dept_admin"])
    clerk = enrolled_client(gateway, "yl-jyj", ["clerk"])
    with admin, clerk:
        me = clerk.me()
        assert me.kid is not None
        admin.revoke_key(me.id, me.kid)
        with pytest.raises(AuthenticationError) as refused:
            clerk.me()
        assert refused.value.status == 401
        with pytest.raises(AuthenticationError):
            clerk.login()


def test_a_closed_client_says_so(gateway: Gateway) -> None:
    client = client_for(gateway)
    client.close()
    with pytest.raises(ConfigurationError) as closed:
        client.ca_certificate()
    assert closed.value.code == "client_closed"

    async def use_after_close() -> None:
        async with AsyncClient(gateway.base_url, ca_file=gateway.ca_path) as asynchronous:
            pass
        await asynchronous.ca_certificate()

    with pytest.raises(ConfigurationError) as closed:
        asyncio.run(use_after_close())
    assert closed.value.code == "client_closed"
