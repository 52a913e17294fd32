"""Issue 16: /metrics only to configured addresses or with the bearer secret. Over HTTPS
against a real gateway that lists no local address, so only the token opens it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Gateway, start_gateway

TOKEN = "metrics-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        demo=False,
        env={"SEALHUB_METRICS_ADDRESSES": "10.9.9.9/32", "SEALHUB_METRICS_TOKEN": TOKEN},
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN],
    ids=["none", "wrong", "prefix", "longer", "other-scheme", "no-scheme"],
)
def test_metrics_are_refused_without_the_address_or_the_token(
    gateway: Gateway, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with gateway.client() as http:
        refused = http.get("/metrics", headers=headers)
    assert refused.status_code == 403, refused.text[:200]
    assert refused.json()["code"] == "forbidden"
    assert "sealhub_http_requests_total" not in refused.text


def test_metrics_are_served_with_the_token(gateway: Gateway) -> None:
    with gateway.client() as http:
        served = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert served.status_code == 200
    assert "sealhub_http_requests_total" in served.text
