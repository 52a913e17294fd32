"""The gateway over real HTTPS: TLS chain, service endpoints, directory, problem+json."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import pytest

from tests.conftest import Gateway, Session, login_as, start_gateway

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@pytest.fixture(scope="module")
def clerk(gateway: Gateway) -> Iterator[Session]:
    """The directory needs a token: a clerk of the education bureau reads it."""
    with login_as(gateway, "yl-jyj", ["clerk"]) as session:
        yield session


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    return body


def test_certificate_validates_against_the_data_dir_ca(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
    # openssl, an independent TLS client, agrees the chain and host name are valid.
    port = gateway.base_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-CAfile",
            str(gateway.ca_path),
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-brief",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Verification: OK" in result.stderr, result.stderr


def test_client_without_the_platform_ca_refuses_the_connection(gateway: Gateway) -> None:
    with (
        httpx.Client(verify=ssl.create_default_context()) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(gateway.base_url + "/healthz")


def test_tls_1_1_is_refused(gateway: Gateway) -> None:
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with httpx.Client(verify=context) as client, pytest.raises(httpx.ConnectError):
        client.get(gateway.base_url + "/healthz")


def test_directory_needs_a_token(gateway: Gateway) -> None:
    with gateway.client() as client:
        for path in ("/v1/departments", "/v1/departments/yl", "/v1/groups", "/v1/groups/x"):
            assert_problem(client.get(path), 401, "invalid_token")


def test_directory_lists_all_234_units_page_by_page(clerk: Session) -> None:
    seen: list[str] = []
    pages = 0
    url = "/v1/departments?limit=50"
    while True:
        body = clerk.get(url).json()
        pages += 1
        seen.extend(item["code"] for item in body["items"])
        if body["next_cursor"] is None:
            break
        url = f"/v1/departments?limit=50&cursor={body['next_cursor']}"
    assert pages == 5
    assert len(seen) == 234 == len(set(seen))
    assert seen == sorted(seen)


def test_directory_filters_and_keeps_chinese_unescaped(clerk: Session) -> None:
    counties = clerk.get("/v1/departments", params={"kind": "county", "limit": 500}).json()
    assert [d["code"] for d in counties["items"]] == sorted(
        ["yl.yz", "yl.fm", "yl.rx", "yl.lc", "yl.bb", "yl.xy", "yl.bl"]
    )
    children = clerk.get("/v1/departments", params={"parent": "yl.rx", "limit": 500}).json()
    assert len(children["items"]) == 28
    assert all(d["parent"] == "yl.rx" for d in children["items"])
    found = clerk.get("/v1/departments?q=" + quote("教育局")).json()["items"]
    assert {d["code"] for d in found} >= {"yl-jyj", "yl.rx-jyj"}
    response = clerk.get("/v1/departments/yl")
    assert "玉林市人民政府".encode() in response.content
    assert response.json()["name_en"] == "Yulin Municipal People's Government"
    group = clerk.get("/v1/groups/all-county-governments").json()
    assert len(group["members"]) == 7
    groups = clerk.get("/v1/groups").json()
    assert [g["code"] for g in groups["items"]] == ["all-county-governments"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/departments/no-such-unit", 404, "not_found"),
        ("/v1/groups/no-such-group", 404, "not_found"),
        ("/v1/nothing-here", 404, "not_found"),
        ("/v1/departments?limit=0", 400, "invalid_request"),
        ("/v1/departments?limit=x", 400, "invalid_request"),
        ("/v1/departments?cursor=%%%", 400, "invalid_cursor"),
        ("/v1/departments?cursor=WzFd", 400, "invalid_cursor"),
        ("/v1/departments?q=" + "长" * 300, 400, "invalid_request"),
        ("/v1/departments?q=a%00b", 400, "invalid_request"),
    ],
)
def test_malformed_requests_get_problem_json(
    clerk: Session, path: str, status: int, code: str
) -> None:
    body = assert_problem(clerk.get(path), status, code)
    assert "Traceback" not in str(body) and "/work" not in str(body)


def test_wrong_method_and_oversized_body(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert_problem(client.delete("/v1/departments"), 405, "method_not_allowed")
        huge = b"x" * (2 * 1024 * 1024)
        response = client.post(
            "/v1/auth/challenge", content=huge, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("application/problem+json")


def test_service_endpoints(gateway: Gateway, clerk: Session) -> None:
    with gateway.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert clerk.get("/v1/departments/yl").status_code == 200
        metrics = client.get("/metrics").text
        assert (
            'sealhub_http_requests_total{method="GET",route="/v1/departments/{code}",status="200"}'
            in metrics
        )
        spec = client.get("/openapi.json").json()
        assert spec["openapi"] == "3.1.0"
        assert {
            "/healthz",
            "/readyz",
            "/v1/departments",
            "/v1/departments/{code}",
            "/v1/groups",
            "/v1/groups/{code}",
        } <= spec["paths"].keys()
        request_id = client.get("/healthz", headers={"X-Request-Id": "test-req-123"})
        assert request_id.headers["x-request-id"] == "test-req-123"
        assert request_id.headers["x-content-type-options"] == "nosniff"


def test_readyz_is_503_when_the_database_is_gone(
    pg_server_url: str, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    running = start_gateway(db_url, tmp_path_factory.mktemp("gw-ready"), demo=False)
    try:
        with running.client() as client:
            assert client.get("/readyz").status_code == 200
            database = urlsplit(db_url).path.lstrip("/")

            async def cut_off() -> None:
                admin = await asyncpg.connect(pg_server_url)
                try:
                    await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                        database,
                    )
                finally:
                    await admin.close()

            asyncio.run(cut_off())
            assert_problem(client.get("/readyz"), 503, "not_ready")
            assert client.get("/healthz").status_code == 200
        # Its retry loops keep failing to reconnect; SIGTERM must still stop it (it used to
        # hang until killed: a cancellation racing a refused connection was lost).
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=10) == 0, "".join(running.output)[-3000:]
    finally:
        running.stop()
