"""No Docker engine runs here: check the compose file provides what the config needs."""

from __future__ import annotations

import yaml

from gateway.config import load_settings
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


def _compose() -> dict[str, object]:
    document = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text("utf-8"))
    assert isinstance(document, dict)
    return document


def test_compose_has_two_gateways_postgres_minio_and_a_proxy() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    gateways = [name for name in services if name.startswith("gateway")]
    assert len(gateways) == 2
    assert {"postgres", "minio", "proxy"} <= services.keys()
    assert (REPO / "docker" / "haproxy.cfg").is_file()
    assert (REPO / "docker" / "Dockerfile").is_file()


def test_every_gateway_gets_a_valid_production_configuration() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in ("gateway-1", "gateway-2"):
        environment = services[name]["environment"]
        assert environment.keys() >= REQUIRED_IN_PRODUCTION, name
        # Substitute the variables an operator must supply, then load as the gateway would.
        resolved = {
            key: str(value)
            .replace(
                "${SEALHUB_MASTER_KEY:?set SEALHUB_MASTER_KEY (base64 of 32 random bytes)}",
                "A" * 43 + "=",
            )
            .replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "pw")
            .replace("${MINIO_PASSWORD:?set MINIO_PASSWORD}", "pw")
            for key, value in environment.items()
        }
        assert not any("${" in value for value in resolved.values()), resolved
        settings = load_settings(resolved)
        assert settings.s3 is not None and settings.database_url
        assert settings.public_url.startswith("https://")


def test_haproxy_sends_proxy_v2_from_the_address_the_gateways_trust() -> None:
    """Behind the proxy every client would otherwise have the proxy's address."""
    import ipaddress

    servers = [
        line.split()
        for line in (REPO / "docker" / "haproxy.cfg").read_text("utf-8").splitlines()
        if line.strip().startswith("server ")
    ]
    assert len(servers) == 2
    for words in servers:
        assert "send-proxy-v2" in words and "check-send-proxy" in words, words
    services = _compose()["services"]
    assert isinstance(services, dict)
    proxy_address = ipaddress.ip_address(services["proxy"]["networks"]["default"]["ipv4_address"])
    for name in ("gateway-1", "gateway-2"):
        trusted = load_settings(
            {"SEALHUB_TRUSTED_PROXIES": services[name]["environment"]["SEALHUB_TRUSTED_PROXIES"]}
        ).trusted_proxies
        assert trusted and all(proxy_address in network for network in trusted), name
