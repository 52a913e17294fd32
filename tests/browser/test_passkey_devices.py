"""我的设备 in a real browser, for an official whose browser key is older than its passkey (the
first passkey was set up after enrolling): removing its own passkey is confirmed by a current
one (challenge b64url(SHA-256("remove-passkey:" + id))), asked by the console's core after the
gateway's 403 ``passkey_required`` and verified by the gateway. Adding a second passkey (its
step-up by the first) is proven over HTTPS in tests/passkeys: in the browser it needs two
virtual authenticators whose presence must swap between create() and get(), a race that
failed once in a full run, so it is not a browser test."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.browser.harness import (
    Officials,
    PageProblems,
    add_virtual_authenticator,
    authenticator_credentials,
    settle,
)
from tests.browser.test_receive_flow import enroll_with_passkey_setup

DEPARTMENT = "yl-jyj"  # 玉林市教育局
REFUSED = r"status of 403 .*\[https://localhost:\d+/v1/(passkeys|officials/[^/]+/passkeys/[^/]+)\]$"


def b64url(standard: str) -> str:
    """CDP's base64 as the gateway's base64url (no padding)."""
    return base64.urlsafe_b64encode(base64.b64decode(standard)).decode().rstrip("=")


def client_challenge(assertion: dict[str, Any]) -> str:
    data = assertion["response"]["clientDataJSON"]
    client_data = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    challenge: str = client_data["challenge"]
    return challenge


def sha256_b64url(text: str) -> str:
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def leader_with_passkey(
    new_context: Callable[..., BrowserContext], officials: Officials, name: str
) -> tuple[Page, str, str]:
    """A leader enrolled in a fresh browser, its first passkey set up after its key and used
    to log in: (page, official id, authenticator holding the passkey)."""
    page = new_context().new_page()
    authenticator = add_virtual_authenticator(page)
    official, code = officials.create(DEPARTMENT, ["clerk", "leader"], name)
    enroll_with_passkey_setup(page, officials, official, code)
    return page, official, authenticator


def open_devices(page: Page) -> None:
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="我的设备").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的设备")
    settle(page)


def requests_to(page: Page, method: str, suffix: str) -> list[Request]:
    seen: list[Request] = []
    page.on(
        "request",
        lambda r: seen.append(r) if r.method == method and r.url.endswith(suffix) else None,
    )
    return seen


def test_an_official_removes_its_own_passkey_confirming_with_it(
    new_context: Callable[..., BrowserContext], officials: Officials, page_problems: PageProblems
) -> None:
    page_problems.allow(REFUSED)
    page, official, authenticator = leader_with_passkey(new_context, officials, "教育局副局长乙")
    [credential] = authenticator_credentials(page, authenticator)
    open_devices(page)
    card = page.locator("li[data-passkey]")
    expect(card).to_have_count(1)
    passkey = card.get_attribute("data-passkey")
    assert passkey

    deleted = requests_to(page, "DELETE", f"/passkeys/{passkey}")
    with page.expect_response(
        lambda r: r.request.method == "DELETE" and r.url.endswith(passkey) and r.ok
    ) as answer:
        card.get_by_role("button", name=f"删除通行密钥 {card.locator('h3').inner_text()}").click()
    assert answer.value.json()["status"] == "removed"
    expect(page.get_by_text("尚未添加通行密钥")).to_be_visible()

    assert len(deleted) == 2
    assert deleted[0].post_data is None
    step_up = deleted[1].post_data_json["passkey"]
    assert step_up["id"] == b64url(credential["credentialId"])
    assert client_challenge(step_up) == sha256_b64url(f"remove-passkey:{passkey}")

    manager = officials.login(DEPARTMENT, ["dept_admin"], "教育局管理员乙")
    [listed] = manager.get(f"/v1/officials/{official}/passkeys").json()["items"]
    assert listed["id"] == passkey and listed["status"] == "removed"
