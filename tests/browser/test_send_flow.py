"""发文 in real browsers, at 1280 and 375 px: a seal keeper of one department fills the 发文
form (its validation messages first), picks the recipient by searching the directory, and
uploads the PDF with the progress bar moving (the upload is throttled through the DevTools
protocol, so the bar is seen between 0 and 100 %); the gateway seals and dispatches it. A
leader of the receiving department, its 收文 open, sees it arrive without a reload, opens
it and signs for it with a passkey step-up; its receipt JWS verifies with python-jose. The
sender then sees the receipt, with its time, in 已发."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.harness import (
    NARROW,
    WIDE,
    Officials,
    add_virtual_authenticator,
    enroll_in_console,
    screenshot,
    settle,
    verify_es256,
)
from tests.browser.test_receive_flow import enroll_with_passkey_setup
from tests.largepdf import write_large_pdf

SENDER = "yl-jyj"  # 玉林市教育局
READER = "yl-fgw"  # 玉林市发展和改革委员会
READER_NAME = "玉林市发展和改革委员会"
UPLOAD_BYTES_PER_SECOND = 400 * 1024
PDF_BYTES = 1_600_000  # about four seconds at that rate
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

# Every value the progress bar takes while the upload runs, recorded in the page itself.
WATCH_PROGRESS = """
() => {
  window.sealhubProgress = [];
  new MutationObserver(() => {
    const bar = document.getElementById("send-progress");
    if (bar) window.sealhubProgress.push(Number(bar.value));
  }).observe(document.body, {subtree: true, childList: true, attributes: true});
}
"""


@pytest.fixture(scope="module")
def setup(officials: Officials) -> None:
    officials.seal(SENDER)
    officials.set_passkey_required(SENDER, False)  # this flow's passkey is the reader's


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="主导航").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def throttle_uploads(page: Page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": UPLOAD_BYTES_PER_SECOND,
        },
    )


def officials_jwk(officials: Officials, department: str, official: str) -> dict[str, Any]:
    admin = officials.login(department, ["dept_admin"], "单位管理员")
    [key] = admin.get(f"/v1/officials/{official}/keys").json()["items"]
    assert key["device_kind"] == "browser"
    jwk: dict[str, Any] = key["jwk"]
    return jwk


def fill_and_send(page: Page, title: str, doc_number: str, pdf: Path) -> dict[str, Any]:
    """The 发文 form, validation first; answers the gateway's answer to the upload."""
    page.get_by_role("button", name="用印并发送").click()
    summary = page.get_by_role("alert").filter(has_text="请先更正以下问题")
    expect(summary).to_contain_text("请填写标题")
    expect(summary).to_contain_text("请至少选择一个主送单位")
    expect(summary).to_contain_text("请选择 PDF 文件")
    expect(page.get_by_label("标题")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("标题").fill(title)
    page.get_by_label("发文字号").fill(doc_number)
    page.get_by_label("紧急程度").select_option("urgent")
    page.get_by_label("办理期限（可选）").fill("2026-12-31T18:00")
    page.get_by_label("搜索单位或分发组").fill("发展和改革")
    choose = page.get_by_role("button", name=f"{READER_NAME}：主送")
    choose.focus()
    page.keyboard.press("Enter")  # the picker works from the keyboard
    expect(choose).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".picker-chosen").first).to_contain_text(READER_NAME)
    page.get_by_label("选择 PDF 文件").set_input_files(str(pdf))
    screenshot(page, "send-filled")

    page.evaluate(WATCH_PROGRESS)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/v1/documents"), timeout=60_000
    ) as answer:
        page.get_by_role("button", name="用印并发送").click()
        expect(page.get_by_label("上传进度")).to_be_visible()
        screenshot(page, "send-uploading")
    assert answer.value.status == 201, answer.value.text()
    seen = page.evaluate("() => window.sealhubProgress")
    assert any(0 < value < 100 for value in seen), f"the bar never moved: {seen}"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    expect(page.get_by_role("status").filter(has_text="已用印并分发给 1 个单位")).to_be_visible()
    sent: dict[str, Any] = answer.value.json()
    assert sent["status"] == "dispatched"
    return sent


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_sent_with_progress_signed_for_live_and_the_receipt_seen_in_sent(
    new_context: Callable[..., BrowserContext],
    officials: Officials,
    setup: None,
    tmp_path: Path,
    width: int,
) -> None:
    # The reader: a leader, so its console login needs a passkey; 收文 stays open.
    reader_page = new_context(width).new_page()
    add_virtual_authenticator(reader_page)
    reader, code = officials.create(READER, ["clerk", "leader"], f"发改委副主任{width}")
    enroll_with_passkey_setup(reader_page, officials, reader, code)
    reader_jwk = officials_jwk(officials, READER, reader)
    nav(reader_page, "收文")
    reader_page.evaluate("() => { window.sealhubSameDocument = true; }")

    # The sender: a seal keeper, sealing and sending at once (no approval chain).
    page = new_context(width).new_page()
    sender, sender_code = officials.create(SENDER, ["seal_keeper", "clerk"], f"教育局用印员{width}")
    enroll_in_console(page, officials, sender, sender_code)
    nav(page, "发文")
    throttle_uploads(page)
    pdf = tmp_path / "通知.pdf"
    write_large_pdf(pdf, PDF_BYTES)
    title = f"关于做好2026年冬季校园安全工作的通知{width}"
    sent = fill_and_send(page, title, f"玉教发〔2026〕{width}号", pdf)

    # The reader's 收文 shows it without a reload; 签收 with the passkey step-up.
    row = reader_page.get_by_role("row").filter(has_text=title)
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_contain_text("加急")
    assert reader_page.evaluate("() => window.sealhubSameDocument") is True
    reader_page.get_by_role("link", name=title).click()
    expect(reader_page.get_by_role("heading", level=1)).to_have_text(title)
    expect(reader_page.locator('[data-seal-valid="true"]')).to_have_count(1, timeout=20_000)
    with reader_page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/receipt")
    ) as answer:
        reader_page.get_by_role("button", name="签收").click()
    assert answer.value.status in (200, 201), answer.value.text()
    body = answer.value.request.post_data_json
    assert isinstance(body, dict), body
    assert body["passkey"]["type"] == "public-key"
    claims = verify_es256(body["signature"], reader_jwk)
    assert (claims["sha256"], claims["action"]) == (sent["sha256"], "receive")
    expect(reader_page.get_by_text("本单位已办理：已签收")).to_be_visible()

    # The sender's 已发: the document, its delivery received, with the time.
    nav(page, "已发")
    card = page.locator(f'li[data-document="{sent["id"]}"]')
    expect(card).to_contain_text(title)
    expect(card).to_contain_text("1/1 已签收", timeout=15_000)
    card.get_by_role("button", name="各单位状态").click()
    delivery = card.locator(f'[data-recipient="{READER}"]')
    expect(delivery).to_have_attribute("data-state", "received", timeout=15_000)
    expect(delivery).to_have_text(READER_NAME)
    expect(card.get_by_role("row").filter(has_text=READER_NAME)).to_contain_text("已签收")
    expect(card.locator("time").last).to_have_attribute("datetime", ISO_TIME)
    settle(page)
    screenshot(page, "sent-receipt")
