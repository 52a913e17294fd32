"""我的设备 in a real browser, for an official whose browser key is older than its passkey (the
first passkey was set up after enrolling): adding a second passkey is confirmed by the first
one (the registration's step-up, challenge b64url(SHA-256(ASCII of the registration
challenge))), and removing its own passkey is confirmed by a current one (challenge
b64url(SHA-256("remove-passkey:" + id))). Both step-ups are asked by the console's core after
the gateway's 403 ``passkey_required``; the gateway verifies them (201 and 200 here)."""

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
    on_credential_added,
    set_presence,
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


def test_a_second_passkey_is_confirmed_by_the_first(
    new_context: Callable[..., BrowserContext], officials: Officials, page_problems: PageProblems
) -> None:
    page_problems.allow(REFUSED)
    page, official, first = leader_with_passkey(new_context, officials, "教育局副局长甲")
    [old] = authenticator_credentials(page, first)
    # The new passkey is made by a security key (usb). The first passkey's authenticator
    # finds nobody present during the registration (else it would refuse it: its passkey is
    # excluded); once the security key stored the new passkey, the roles swap, before the
    # gateway's 403 makes the console ask for the step-up (a virtual authenticator reads
    # "present" when a request reaches it, so each request meets the settings of its time).
    set_presence(page, first, False)
    security_key = add_virtual_authenticator(page, transport="usb")

    def stored(_: dict[str, Any]) -> None:
        set_presence(page, security_key, False)
        set_presence(page, first, True)

    on_credential_added(page, stored)

    open_devices(page)
    posted = requests_to(page, "POST", "/v1/passkeys")
    page.get_by_label("通行密钥名称").fill("办公室安全密钥")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/v1/passkeys") and r.ok
    ) as answer:
        page.get_by_role("button", name="添加通行密钥").click()
    assert answer.value.status == 201, answer.value.text()
    added = answer.value.json()
    expect(page.locator(f'li[data-passkey="{added["id"]}"]')).to_contain_text("办公室安全密钥")

    # First without a step-up (refused: the key is older than the passkey), then with one
    # made by the first passkey over the registration challenge.
    assert len(posted) == 2
    refused, confirmed = (r.post_data_json for r in posted)
    assert "passkey" not in refused and refused["credential"] == confirmed["credential"]
    step_up = confirmed["passkey"]
    assert step_up["id"] == b64url(old["credentialId"])
    registration = client_challenge(confirmed["credential"])
    assert client_challenge(step_up) == sha256_b64url(registration)
    [new] = authenticator_credentials(page, security_key)
    assert added["credential"] == b64url(new["credentialId"])

    manager = officials.login(DEPARTMENT, ["dept_admin"], "教育局管理员甲")
    listed = manager.get(f"/v1/officials/{official}/passkeys").json()["items"]
    active = {p["credential"] for p in listed if p["status"] == "active"}
    assert active == {b64url(old["credentialId"]), added["credential"]}


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
