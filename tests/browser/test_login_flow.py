"""Enrollment and login in real browsers: two officials of different departments enroll in
their own browser contexts (one through the link a dept_admin hands over, one by typing id
and code), each with a non-extractable WebCrypto key kept in IndexedDB; a reload logs in
again from IndexedDB; logout and key login work; and a device its dept_admin revokes
through the API is logged out at once, without a reload, and told why.
Every DPoP proof the console sends is checked on the way: its header, htm, htu, ath.

This module's gateway hands out access tokens of 12 seconds, so the console refreshes them
while it is used and its inbox event stream ends with each one (``event: end``) and has to be
reopened: deliveries still arrive live across those ends."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from gateway.console.links import CONSOLE_PATH
from tests.browser.harness import (
    NARROW,
    WIDE,
    Officials,
    enroll_in_console,
    screenshot,
    settle,
    start_browser_gateway,
)
from tests.conftest import Gateway, Session
from tests.seals.seal_corpus import reportlab_pdf

EDUCATION = "yl-jyj"  # 玉林市教育局
OFFICE = "yl-bgs"  # 玉林市人民政府办公室
TOKEN_SECONDS = 12


@pytest.fixture(scope="module")
def gateway(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory, browser_home: Path
) -> Iterator[Gateway]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEALHUB_ACCESS_TOKEN_SECONDS", str(TOKEN_SECONDS))  # read at start
        running = start_browser_gateway(module_db_url, tmp_path_factory.mktemp("gw"), browser_home)
    try:
        yield running
    finally:
        running.stop()


STORED_KEY = """
async () => {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open("sealhub");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const record = await new Promise((resolve, reject) => {
    const get = db.transaction("identity").objectStore("identity").get("current");
    get.onsuccess = () => resolve(get.result);
    get.onerror = () => reject(get.error);
  });
  let exported = "refused";
  try {
    await crypto.subtle.exportKey("jwk", record.privateKey);
    exported = "exported";
  } catch (error) {
    exported = error.name;
  }
  return {
    official: record.official,
    kid: record.kid,
    jwk: record.publicJwk,
    extractable: record.privateKey.extractable,
    algorithm: record.privateKey.algorithm,
    exported,
    cookies: document.cookie,
    local: Object.keys(localStorage).length,
  };
}
"""


def b64url_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def watch_proofs(page: Page, proofs: list[tuple[str, str, dict[str, Any], dict[str, Any]]]) -> None:
    """Collect (method, path, header, claims) of every DPoP proof the page sends."""

    def seen(request: Request) -> None:
        proof = request.headers.get("dpop")
        if proof:
            header, claims, _ = proof.split(".")
            path = urlsplit(request.url).path
            proofs.append((request.method, path, b64url_json(header), b64url_json(claims)))

    page.on("request", seen)


def stored_key(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(STORED_KEY)
    return found


def enroll_by_typing(page: Page, official: str, code: str) -> None:
    page.goto(CONSOLE_PATH + "#/enroll")
    settle(page)
    page.get_by_label("人员编号").fill(official)
    page.get_by_label("启用码").fill(code)
    page.get_by_role("button", name="启用并登录").click()
    page.wait_for_function("() => location.hash === '#/'", timeout=20_000)
    settle(page)


def keys_of(officials: Officials, department: str, official: str) -> list[dict[str, Any]]:
    admin = officials.login(department, ["dept_admin"], "部门管理员")
    answer = admin.get(f"/v1/officials/{official}/keys")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_two_officials_enroll_log_in_and_a_revoked_device_is_logged_out_at_once(
    new_context: Callable[..., BrowserContext],
    officials: Officials,
    gateway: Gateway,
) -> None:
    first = new_context(WIDE).new_page()
    second = new_context(NARROW).new_page()
    proofs: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    watch_proofs(first, proofs)
    reader, reader_code = officials.create(EDUCATION, ["clerk"], "教育局收发员")
    clerk, clerk_code = officials.create(OFFICE, ["clerk"], "办公室文书")

    enroll_in_console(first, officials, reader, reader_code)
    assert "#/enroll/" not in first.url and reader_code not in first.url
    enroll_by_typing(second, clerk, clerk_code)

    # Each context holds its own official's key, non-extractable, nothing in cookies or
    # localStorage; the gateway lists exactly that public key as a browser device.
    for page, official, department in ((first, reader, EDUCATION), (second, clerk, OFFICE)):
        key = stored_key(page)
        assert key["official"] == official
        assert key["extractable"] is False
        assert key["exported"] == "InvalidAccessError"
        assert key["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
        assert key["cookies"] == "" and key["local"] == 0
        listed = keys_of(officials, department, official)
        assert [(k["kid"], k["status"]) for k in listed] == [(key["kid"], "active")]
        assert listed[0]["jwk"] == key["jwk"]
        assert listed[0]["device_kind"] == "browser"

    # The proofs: the browser's public key in the header, htu = public origin + path (no
    # query), the access token's hash on all but the token request, a new jti each time.
    jwk = stored_key(first)["jwk"]
    assert len(proofs) >= 3
    for method, path, header, claims in proofs:
        assert header == {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}
        assert (claims["htm"], claims["htu"]) == (method, gateway.base_url + path)
        assert ("ath" in claims) is (path != "/v1/auth/token"), path
    assert len({claims["jti"] for *_, claims in proofs}) == len(proofs)

    # The shell names the official and its department; the navigation is there.
    header = first.locator("header")
    expect(header).to_contain_text("教育局收发员")
    expect(header).to_contain_text("玉林市教育局")
    expect(second.locator("header")).to_contain_text("玉林市人民政府办公室")
    expect(first.get_by_role("navigation", name="主导航")).to_contain_text("收文")
    screenshot(first, "login-dashboard")
    screenshot(second, "login-dashboard")

    # English on demand, and back; <html lang> follows.
    first.get_by_role("button", name="English").click()
    expect(first.get_by_role("heading", level=1)).to_have_text("Dashboard")
    assert first.evaluate("() => document.documentElement.lang") == "en"
    first.get_by_role("button", name="中文").click()
    expect(first.get_by_role("heading", level=1)).to_have_text("工作台")

    # A reload logs in again from IndexedDB (refresh token), no enrollment needed.
    first.reload()
    settle(first)
    expect(first.get_by_role("heading", level=1)).to_have_text("工作台")

    # Logout, then the one-click key login.
    second.get_by_role("button", name="退出登录").click()
    expect(second.get_by_role("heading", level=1)).to_have_text("登录")
    screenshot(second, "login")
    second.get_by_role("button", name="使用本设备密钥登录").click()
    expect(second.get_by_role("heading", level=1)).to_have_text("工作台")

    # The reader's dept_admin revokes the reader's browser key: the open console ends the
    # session at once (the inbox stream ends), in the same document, and says why.
    first.evaluate("() => { window.sealhubSameDocument = true; }")
    kid = stored_key(first)["kid"]
    admin = officials.login(EDUCATION, ["dept_admin"], "教育局管理员")
    revoked = admin.request("DELETE", f"/v1/officials/{reader}/keys/{kid}")
    assert revoked.status_code in (200, 204), revoked.text
    expect(first.get_by_role("heading", level=1)).to_have_text("登录", timeout=5_000)
    expect(first.get_by_role("alert")).to_contain_text(re.compile("revoked|吊销"))
    assert first.evaluate("() => window.sealhubSameDocument") is True
    expect(first.locator("header")).not_to_contain_text("教育局收发员")
    # The revoked key is forgotten: this browser has to enroll again.
    expect(first.get_by_role("link", name="启用本设备")).to_be_visible()

    # The other official, in another department, is not affected.
    second.reload()
    settle(second)
    expect(second.get_by_role("heading", level=1)).to_have_text("工作台")


def send_to(sender: Session, department: str, title: str) -> None:
    meta = {
        "title": title,
        "doc_number": "玉政办发〔2026〕88号",
        "urgency": "normal",
        "classification": "internal",
        "recipients": [department],
    }
    files = {
        "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
        "file": ("document.pdf", reportlab_pdf(title=title), "application/pdf"),
    }
    answer = sender.post("/v1/documents", files=files)
    assert answer.status_code == 201, answer.text


def test_the_live_inbox_outlives_its_access_tokens(
    new_context: Callable[..., BrowserContext], officials: Officials
) -> None:
    page = new_context(WIDE).new_page()
    grants: list[str] = []
    page.on(
        "request",
        lambda r: grants.append(r.post_data or "") if r.url.endswith("/v1/auth/token") else None,
    )
    reader, code = officials.create(EDUCATION, ["clerk"], "教育局值班员")
    enroll_in_console(page, officials, reader, code)
    page.evaluate("() => { window.sealhubSameDocument = true; }")
    pending = page.locator('[data-count="待签收"]')
    expect(pending).to_have_text("0")

    # Two token lifetimes pass: the stream opened with the first token has ended and was
    # opened again with a refreshed one.
    page.wait_for_timeout(2 * TOKEN_SECONDS * 1000 + 1000)
    assert any("grant_type=refresh_token" in grant for grant in grants), grants
    officials.seal(OFFICE)
    sender = officials.login(OFFICE, ["seal_keeper", "clerk"], "办公室用印员")
    send_to(sender, EDUCATION, "关于做好寒假安全工作的通知")
    expect(pending).to_have_text("1", timeout=10_000)
    expect(page.locator(".notices")).to_contain_text("关于做好寒假安全工作的通知")
    assert page.evaluate("() => window.sealhubSameDocument") is True
    expect(page.get_by_role("heading", level=1)).to_have_text("工作台")
