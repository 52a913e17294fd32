"""No Docker engine runs here: check the compose file provides what the config needs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml

from gateway.config import load_settings
from storage.db import APP_ROLE, OWNER_ROLE
from tests.conftest import REPO

REQUIRED_IN_PRODUCTION = {
    "SEALHUB_PUBLIC_URL",
    "SEALHUB_MASTER_KEY",
    "DATABASE_URL",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET",
    "SEALHUB_HOST",
    "SEALHUB_DATA_DIR",
}


OPERATOR_SECRETS = {
    "${SEALHUB_MASTER_KEY:?set SEALHUB_MASTER_KEY (base64 of 32 random bytes)}": "A" * 43 + "=",
    "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}": "pw",
    "${SEALHUB_OWNER_DB_PASSWORD:?set SEALHUB_OWNER_DB_PASSWORD}": "owner-pw",
    "${SEALHUB_APP_DB_PASSWORD:?set SEALHUB_APP_DB_PASSWORD}": "app-pw",
    "${MINIO_PASSWORD:?set MINIO_PASSWORD}": "pw",
}


GATEWAYS = ("gateway-1", "gateway-2", "gateway-3")


def _resolved(environment: dict[str, object]) -> dict[str, str]:
    """The variables an operator must supply, substituted as compose would."""
    resolved = {}
    for key, value in environment.items():
        text = str(value)
        for placeholder, secret in OPERATOR_SECRETS.items():
            text = text.replace(placeholder, secret)
        resolved[key] = text
    assert not any("${" in value for value in resolved.values()), resolved
    return resolved


def _compose() -> dict[str, object]:
    document = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text("utf-8"))
    assert isinstance(document, dict)
    return document


def test_compose_has_three_gateways_postgres_minio_and_a_proxy() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    gateways = sorted(name for name in services if name.startswith("gateway"))
    assert gateways == list(GATEWAYS)
    assert {"postgres", "minio", "proxy"} <= services.keys()
    assert services["proxy"]["depends_on"] == list(GATEWAYS)
    proxied = (REPO / "docker" / "haproxy.cfg").read_text()
    for name in GATEWAYS:
        assert f"server {name} {name}:8443 send-proxy-v2" in proxied, name
    assert (REPO / "docker" / "haproxy.cfg").is_file()
    assert (REPO / "docker" / "Dockerfile").is_file()


def test_postgres_archives_every_wal_segment_once_for_point_in_time_recovery() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    postgres = services["postgres"]
    flags, values = postgres["command"][1::2], postgres["command"][2::2]
    assert set(flags) == {"-c"}
    settings = dict(value.split("=", 1) for value in values)
    assert postgres["command"][0] == "postgres"
    assert settings["archive_mode"] == "on" and settings["wal_level"] == "replica"
    archive = settings["archive_command"]
    # Never overwrite a segment already archived; a half-copied file is never taken for one.
    assert archive.startswith("test ! -f ") and "%f.tmp" in archive and " mv " in archive
    assert any(v.endswith(":/var/lib/postgresql/wal-archive") for v in postgres["volumes"])


def test_every_gateway_gets_a_valid_production_configuration() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in GATEWAYS:
        environment = services[name]["environment"]
        assert environment.keys() >= REQUIRED_IN_PRODUCTION, name
        settings = load_settings(_resolved(environment))
        assert settings.s3 is not None and settings.database_url
        assert settings.public_url.startswith("https://")


def test_gateways_log_in_as_the_application_login_and_only_migrate_sees_the_owner() -> None:
    """Issue 16 item 5: the gateways' login is not the owner and never learns its password."""
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in GATEWAYS:
        settings = load_settings(_resolved(services[name]["environment"]))
        assert settings.database_url is not None
        assert urlsplit(settings.database_url).username == APP_ROLE, name
        assert settings.database_owner_url is None, name
        assert "owner-pw" not in repr(services[name]), name
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    settings = load_settings(_resolved(migrate["environment"]))
    assert settings.database_owner_url is not None
    assert urlsplit(settings.database_owner_url).username == OWNER_ROLE


def test_postgres_creates_both_logins_and_neither_is_a_superuser() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_USER"] not in (APP_ROLE, OWNER_ROLE)
    mounts = [str(volume) for volume in postgres["volumes"]]
    [init] = [m for m in mounts if "/docker-entrypoint-initdb.d/" in m]
    script = (REPO / "docker" / init.split(":")[0].removeprefix("./")).read_text("utf-8")
    for role in (OWNER_ROLE, APP_ROLE):
        created = re.search(rf"CREATE ROLE {role} LOGIN ([^;]*);", script)
        assert created is not None, role
        assert "NOSUPERUSER" in created[1] and "NOCREATEROLE" in created[1], role
    # The application login is granted nothing that makes it the owner.
    assert not re.search(rf"GRANT {OWNER_ROLE}\b", script)


def test_haproxy_sends_proxy_v2_from_the_address_the_gateways_trust() -> None:
    """Behind the proxy every client would otherwise have the proxy's address."""
    import ipaddress

    servers = [
        line.split()
        for line in (REPO / "docker" / "haproxy.cfg").read_text("utf-8").splitlines()
        if line.strip().startswith("server ")
    ]
    assert len(servers) == len(GATEWAYS)
    for words in servers:
        assert "send-proxy-v2" in words and "check-send-proxy" in words, words
    services = _compose()["services"]
    assert isinstance(services, dict)
    proxy_address = ipaddress.ip_address(services["proxy"]["networks"]["default"]["ipv4_address"])
    for name in GATEWAYS:
        trusted = load_settings(
            {"SEALHUB_TRUSTED_PROXIES": services[name]["environment"]["SEALHUB_TRUSTED_PROXIES"]}
        ).trusted_proxies
        assert trusted and all(proxy_address in network for network in trusted), name
