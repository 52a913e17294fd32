"""The console against a gateway that wants server DPoP nonces (``SEALHUB_DPOP_NONCE=
required``, RFC 9449 section 8): a clerk enrolls in the browser, whose first token request is
refused once with ``use_dpop_nonce`` and sent again with the nonce from ``DPoP-Nonce``;
every later proof carries it, so the inbox, a document (its PDF drawn, its seal verified)
and its receipt work without another refusal. The other side (admins issuing a seal, the
sender) is the Python SDK, which follows the nonce by itself."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Response, expect
from sealhub_sdk import Client, DeviceKey

from tests.browser.harness import (
    PLATFORM,
    Officials,
    PageProblems,
    console_official,
    settle,
    start_browser_gateway,
)
from tests.browser.test_receive_flow import PAINTED_PIXELS, open_from_inbox
from tests.conftest import Gateway
from tests.seals.seal_corpus import reportlab_pdf

SENDER = "yl-bgs"  # 玉林市人民政府办公室
READER = "yl-jyj"  # 玉林市教育局
REFUSED = r"status of 401 .*\[https://localhost:\d+/v1/auth/token\]$"


@pytest.fixture(scope="module")
def gateway(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory, browser_home: Path
) -> Iterator[Gateway]:
    running = start_browser_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        browser_home,
        env={"SEALHUB_DPOP_NONCE": "required"},
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sdk(gateway: Gateway, officials: Officials) -> Iterator[Callable[..., Client]]:
    """Officials logged in with the SDK (the tests' own HTTP sessions send no nonce)."""
    clients: list[Client] = []

    def login(department: str, roles: list[str], name: str) -> Client:
        official, code = officials.create(department, roles, name)
        client = Client(
            gateway.base_url,
            ca_file=gateway.ca_path,
            key=DeviceKey.generate(),
            official_id=official,
        )
        clients.append(client)
        client.enroll(official, code)
        client.login()
        return client

    yield login
    for client in clients:
        client.close()


def proof_claims(response: Response) -> dict[str, Any]:
    proof = response.request.headers["dpop"]
    payload = proof.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_the_console_follows_the_server_nonce(
    new_context: Callable[..., BrowserContext],
    officials: Officials,
    page_problems: PageProblems,
    sdk: Callable[..., Client],
    tmp_path: Path,
) -> None:
    page_problems.allow(REFUSED)
    first, second = sdk(PLATFORM, ["admin"], "管理员甲"), sdk(PLATFORM, ["admin"], "管理员乙")
    second.approve_seal_request(first.request_seal(SENDER).id)
    sender = sdk(SENDER, ["seal_keeper", "clerk"], "办公室用印员")

    page = new_context().new_page()
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if "/v1/" in r.url else None)
    console_official(page, officials, READER, ["clerk"], "教育局收发员")

    # The login: one refusal at the token endpoint, then the same request with its nonce.
    tokens = [r for r in answers if r.url.endswith("/v1/auth/token")]
    assert [r.status for r in tokens] == [401, 200]
    refused, accepted = tokens
    assert refused.json()["code"] == "use_dpop_nonce"
    assert "nonce" not in proof_claims(refused)
    nonce = refused.headers["dpop-nonce"]
    assert proof_claims(accepted)["nonce"] == nonce

    title = "关于做好2027年元旦春节期间安全工作的通知"
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(reportlab_pdf(pages=1, title=title))
    sent = sender.send(pdf, title=title, recipients=[READER], doc_number="玉政办发〔2026〕88号")
    assert sent.status == "dispatched"

    page.get_by_role("navigation", name="主导航").get_by_role("link", name="收文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("收文")
    expect(page.get_by_role("row").filter(has_text=title)).to_be_visible(timeout=10_000)
    open_from_inbox(page, title)
    expect(page.locator('canvas[data-rendered="true"]').first).to_be_visible(timeout=15_000)
    assert page.evaluate(PAINTED_PIXELS) > 500, "the PDF page was not painted"
    expect(page.locator('[data-seal-valid="true"]')).to_have_count(1, timeout=15_000)
    with page.expect_response(lambda r: r.url.endswith("/receipt")) as receipt:
        page.get_by_role("button", name="签收").click()
    assert receipt.value.status in (200, 201), receipt.value.text()
    settle(page)

    # Nothing else was refused, and every authenticated proof carried the server's nonce.
    assert [r.url for r in answers if r.status == 401] == [refused.url]
    later = [r for r in answers if r.request.headers.get("dpop") and r is not refused]
    assert len(later) > 5
    assert all(proof_claims(r).get("nonce") for r in later)
