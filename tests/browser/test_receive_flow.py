"""收文 in a real browser, at 1280 and 375 px: a leader of the receiving department enrolls,
is made to set up a passkey (its role needs one) and logs in with it; documents another
department sends through the API appear on 工作台 and in 收文 without a reload; one opens
with its PDF drawn by pdf.js and its seal shown valid by POST /v1/verify, and is signed for
with a passkey step-up; another is returned with a reason. Both receipt JWS made by WebCrypto
verify with python-jose against the public JWK the gateway holds for the browser's key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jose import jws as jose_jws
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.harness import (
    NARROW,
    WIDE,
    Officials,
    add_virtual_authenticator,
    authenticator_credentials,
    enroll_in_console,
    screenshot,
    settle,
    verify_es256,
)
from tests.conftest import Session
from tests.seals.seal_corpus import reportlab_pdf

SENDER = "yl-bgs"  # 玉林市人民政府办公室
READER = "yl-jyj"  # 玉林市教育局

PAINTED_PIXELS = """
() => {
  const canvas = document.querySelector('canvas[data-rendered="true"]');
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) inked += 1;
  }
  return inked;
}
"""


@pytest.fixture(scope="module")
def sender(officials: Officials) -> Session:
    officials.seal(SENDER)
    return officials.login(SENDER, ["seal_keeper", "clerk"], "办公室用印员")


def send(sender: Session, title: str, doc_number: str) -> dict[str, Any]:
    meta = {
        "title": title,
        "doc_number": doc_number,
        "urgency": "very_urgent",
        "classification": "internal",
        "recipients": [READER],
        "deadline": "2026-12-31T18:00:00+08:00",
    }
    files = {
        "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
        "file": ("document.pdf", reportlab_pdf(pages=2, title=title), "application/pdf"),
    }
    answer = sender.post("/v1/documents", files=files)
    assert answer.status_code == 201, answer.text
    sent: dict[str, Any] = answer.json()
    return sent


def enroll_with_passkey_setup(page: Page, officials: Officials, official: str, code: str) -> None:
    """The link enrolls the key; a leader's first login must set up a passkey, then logs in
    with it."""
    enroll_in_console(page, officials, official, code, lands_on="#/passkey-setup")
    expect(page.get_by_role("navigation", name="主导航")).to_have_count(0)
    screenshot(page, "passkey-setup")
    page.get_by_role("button", name="设置通行密钥").click()
    page.wait_for_function("() => location.hash === '#/'", timeout=20_000)
    settle(page)


def browser_key_jwk(officials: Officials, official: str) -> dict[str, Any]:
    admin = officials.login(READER, ["dept_admin"], "教育局管理员")
    keys = admin.get(f"/v1/officials/{official}/keys").json()["items"]
    assert [k["device_kind"] for k in keys] == ["browser"]
    jwk: dict[str, Any] = keys[0]["jwk"]
    return jwk


def open_from_inbox(page: Page, title: str) -> str:
    """Click the document in 收文; answers the delivery id the link carries."""
    page.get_by_role("link", name=title).click()
    page.wait_for_function("() => location.hash.startsWith('#/documents/')")
    query = parse_qs(urlsplit(page.url.split("#", 1)[1]).query)
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    return query["delivery"][0]


def receipt_request(page: Page, delivery: str, action: str, click: Callable[[], None]) -> Any:
    suffix = "receipt" if action == "receive" else "reject"
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/{delivery}/{suffix}")
    ) as answer:
        click()
    response = answer.value
    assert response.status in (200, 201), response.text()
    return response.request.post_data_json


def check_receipt_jws(
    body: dict[str, Any], jwk: dict[str, Any], delivery: str, sha256: str, action: str
) -> dict[str, Any]:
    token = body["signature"]
    header = jose_jws.get_unverified_header(token)
    assert header["typ"] == "sealhub-receipt+jwt"
    assert header["alg"] == "ES256"
    claims = verify_es256(token, jwk)
    assert claims["delivery"] == delivery
    assert claims["sha256"] == sha256
    assert claims["action"] == action
    assert isinstance(claims["iat"], int) and isinstance(claims["jti"], str)
    return claims


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_documents_arrive_live_open_verified_and_are_signed_for_or_returned(
    new_context: Callable[..., BrowserContext], officials: Officials, sender: Session, width: int
) -> None:
    page = new_context(width).new_page()
    authenticator = add_virtual_authenticator(page)
    reader, code = officials.create(READER, ["clerk", "leader"], f"教育局副局长{width}")
    enroll_with_passkey_setup(page, officials, reader, code)
    [credential] = authenticator_credentials(page, authenticator)
    assert credential["rpId"] == "localhost" and credential["isResidentCredential"]
    jwk = browser_key_jwk(officials, reader)
    page.evaluate("() => { window.sealhubSameDocument = true; }")

    # 工作台 counts the new delivery as it arrives (the inbox event stream).
    pending = page.locator('[data-count="待签收"]')
    expect(pending).not_to_have_text("—")
    before = int(pending.inner_text())
    first_title = f"关于开展校园安全专项检查的通知{width}"
    first = send(sender, first_title, f"玉政办发〔2026〕{width}号")
    expect(pending).to_have_text(str(before + 1), timeout=10_000)
    expect(page.locator(".notices")).to_contain_text(f"新收文：{first_title}")

    # 收文 shows the next one without a reload, marked 特急.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="收文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("收文")
    second_title = f"关于报送2026年度教育统计数据的函{width}"
    second = send(sender, second_title, f"玉政办函〔2026〕{width}号")
    row = page.get_by_role("row").filter(has_text=second_title)
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("特急")
    expect(row).to_contain_text("待签收")
    screenshot(page, "receive-inbox")

    # The document view: PDF drawn into a canvas, SHA-256 checked, the seal valid.
    delivery = open_from_inbox(page, first_title)
    canvas = page.locator('canvas[data-rendered="true"]').first
    expect(canvas).to_be_visible(timeout=15_000)
    assert page.evaluate(PAINTED_PIXELS) > 500, "the PDF page was not painted"
    expect(page.get_by_text("文件 SHA-256 与平台记录一致。")).to_be_visible()
    expect(page.locator('[data-seal-valid="true"]')).to_have_count(1, timeout=15_000)
    expect(page.locator('[data-seal-valid="false"]')).to_have_count(0)
    expect(page.locator('[data-seal-valid="true"]')).to_contain_text("玉林市人民政府办公室")
    expect(page.get_by_role("link", name="下载 PDF")).to_have_attribute(
        "href", re.compile("^blob:")
    )
    settle(page)
    screenshot(page, "receive-document")

    # 签收, with the passkey step-up bound to the receipt JWS.
    body = receipt_request(
        page, delivery, "receive", lambda: page.get_by_role("button", name="签收").click()
    )
    assert body["passkey"]["type"] == "public-key"
    assert body["passkey"]["id"] == credential["credentialId"].rstrip("=").replace(
        "+", "-"
    ).replace("/", "_")
    claims = check_receipt_jws(body, jwk, delivery, first["sha256"], "receive")
    assert claims["reason"] == ""
    expect(page.get_by_text("本单位已办理：已签收")).to_be_visible()
    receipt = sender.get(f"/v1/deliveries/{delivery}/receipt")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["state"] == "received"
    expect(page.locator(".trail")).to_contain_text("签收")

    # 退回 with a reason, signed too.
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="收文").click()
    returned = open_from_inbox(page, second_title)
    reason = "附件缺少统计表，请补充后重新发送。"
    expect(page.get_by_role("button", name="退回")).to_be_disabled()
    page.get_by_label("退回理由").fill(reason)
    body = receipt_request(
        page, returned, "reject", lambda: page.get_by_role("button", name="退回").click()
    )
    claims = check_receipt_jws(body, jwk, returned, second["sha256"], "reject")
    assert claims["reason"] == reason
    expect(page.get_by_text("本单位已办理：已退回")).to_be_visible()
    document = sender.get(f"/v1/documents/{second['id']}").json()
    [decided] = [d for d in document["deliveries"] if d["id"] == returned]
    assert (decided["state"], decided["reason"]) == ("rejected", reason)

    # The tabs of 收文 list them where they now belong; all of it in one document.
    page.goto(page.url.split("#")[0] + "#/inbox?state=received")
    expect(page.get_by_role("row").filter(has_text=first_title)).to_be_visible()
    page.get_by_role("link", name="已退回").click()
    expect(page.get_by_role("row").filter(has_text=second_title)).to_contain_text("已退回")
    assert page.evaluate("() => window.sealhubSameDocument") is True
