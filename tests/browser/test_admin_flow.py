"""管理 in real browsers: a dept_admin creates a clerk in the console and is shown its
enrollment link (and a QR code of it); the link opened in a fresh browser context enrolls
the official, which lands logged in on 工作台; the admin then sees its key (and reads the
page in English). A new leader
takes two managers: the first one's creation waits as a four-eyes request, which the
second dept_admin approves in its own console, receiving the link the leader enrolls with
(setting up its passkey, as its role requires). Seals take two platform admins too: one asks
in its console, the other finds the request in its own console's pending list and approves
it there; a revocation the second one asks for, the first declines from the list."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.harness import (
    PLATFORM,
    Officials,
    add_virtual_authenticator,
    enroll_in_console,
    open_screen,
    screenshot,
    settle,
)
from tests.browser.test_receive_flow import enroll_with_passkey_setup

DEPARTMENT = "yl-bgs"  # 玉林市人民政府办公室
LINK = re.compile(r"^https://localhost:\d+/console/#/enroll/([0-9a-f-]{36})/([A-Za-z0-9_-]+)$")


def open_officials(page: Page) -> None:
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="管理").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("人员")


def create(page: Page, name: str, roles: list[str]) -> None:
    form = page.locator("form").filter(has=page.get_by_role("heading", name="新增人员"))
    form.get_by_label("姓名").fill(name)
    for role in ("文书", "领导", "用印员", "业务系统"):
        box = form.get_by_label(role, exact=True)
        if role in roles:
            box.check()
        else:
            box.uncheck()
    form.get_by_role("button", name="创建").click()


def handed_over(page: Page) -> tuple[str, str, str]:
    """The link shown after a code was issued: (link, official id, code)."""
    handover = page.locator("section.handover")
    expect(handover).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^登记链接"))).to_be_focused()
    expect(handover.get_by_role("img", name="登记链接二维码")).to_be_visible()
    link = handover.get_by_role("textbox", name="登记链接").input_value()
    found = LINK.match(link)
    assert found, link
    return link, found[1], found[2]


def test_dept_admin_creates_an_official_who_enrolls_from_the_link(
    new_context: Callable[..., BrowserContext], officials: Officials
) -> None:
    admin = new_context().new_page()
    enroll_in_console(
        admin, officials, *officials.create(DEPARTMENT, ["dept_admin"], "办公室管理员")
    )
    open_officials(admin)
    create(admin, "", ["文书"])
    expect(admin.get_by_text("请填写姓名")).to_be_visible()
    create(admin, "办公室收发员", ["文书"])
    link, official, _ = handed_over(admin)
    settle(admin)
    screenshot(admin, "admin-handover")
    card = admin.locator(f'li[data-official="{official}"]')
    expect(card).to_contain_text("未登记密钥")

    # The link in a fresh browser: the console enrolls and logs the official in.
    newcomer = new_context().new_page()
    newcomer.goto(link)
    newcomer.wait_for_function("() => !location.hash.startsWith('#/enroll/')")
    newcomer.get_by_role("button", name="启用并登录").click()
    newcomer.wait_for_function("() => location.hash === '#/'", timeout=20_000)
    expect(newcomer.locator(".shell-name")).to_have_text("办公室收发员")
    assert official not in newcomer.url and "enroll" not in newcomer.url

    # The admin sees its browser key under 设备.
    admin.get_by_role("link", name="印章").click()
    admin.get_by_role("link", name="人员").click()
    card = admin.locator(f'li[data-official="{official}"]')
    expect(card).to_contain_text("已登记密钥")
    card.get_by_role("button", name="设备").click()
    expect(card.locator('[data-status="active"]')).to_contain_text("浏览器")

    # The same page in English (the admin screens carry both languages).
    admin.get_by_role("button", name="English").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Officials")
    expect(admin.get_by_role("button", name="Create")).to_be_visible()
    expect(card.locator('[data-status="active"]')).to_contain_text("Browser")


def test_a_new_leader_takes_a_second_manager_in_the_console(
    new_context: Callable[..., BrowserContext], officials: Officials
) -> None:
    first = new_context().new_page()
    enroll_in_console(first, officials, *officials.create(DEPARTMENT, ["dept_admin"], "管理员甲"))
    second = new_context().new_page()
    enroll_in_console(second, officials, *officials.create(DEPARTMENT, ["dept_admin"], "管理员乙"))

    open_officials(first)
    create(first, "办公室副主任", ["文书", "领导"])
    expect(first.get_by_role("status").filter(has_text="须另一位管理员批准")).to_be_visible()
    expect(first.locator("section.handover")).to_have_count(0)

    open_officials(second)
    request = second.locator("li[data-request]").filter(has_text="办公室副主任")
    expect(request).to_contain_text("领导")
    request.get_by_role("button", name="批准").click()
    _, official, code = handed_over(second)
    expect(second.locator(f'li[data-official="{official}"]')).to_contain_text("办公室副主任")

    leader = new_context().new_page()
    add_virtual_authenticator(leader)
    enroll_with_passkey_setup(leader, officials, official, code)
    expect(leader.locator(".shell-name")).to_have_text("办公室副主任")


def platform_admin(
    new_context: Callable[..., BrowserContext], officials: Officials, name: str
) -> tuple[Page, str]:
    """A platform admin in a browser of its own (with the passkey its role requires)."""
    page = new_context().new_page()
    add_virtual_authenticator(page)
    official, code = officials.create(PLATFORM, ["admin"], name)
    enroll_with_passkey_setup(page, officials, official, code)
    return page, official


def pending_request(page: Page, text: str) -> Locator:
    return page.locator("li[data-seal-request]").filter(has_text=text)


def test_a_second_admin_approves_a_seal_request_from_the_pending_list(
    new_context: Callable[..., BrowserContext], officials: Officials
) -> None:
    first, first_id = platform_admin(new_context, officials, "平台管理员甲")
    second, second_id = platform_admin(new_context, officials, "平台管理员乙")

    open_screen(first, "#/admin/seals")
    first.get_by_label("单位", exact=True).select_option(DEPARTMENT)
    form = first.locator("form").filter(has=first.get_by_role("heading", name="申请新印章"))
    form.get_by_label("用途").fill("合同专用章")
    form.get_by_role("button", name="提交申请").click()
    expect(form.get_by_role("status")).to_contain_text("等待另一位平台管理员批准")
    mine = pending_request(first, "合同专用章")
    expect(mine).to_contain_text("您提交的申请，等待另一位平台管理员批准")
    expect(mine.get_by_role("button", name="批准")).to_have_count(0)  # not its own

    open_screen(second, "#/admin/seals")
    request = pending_request(second, "合同专用章")
    expect(request.get_by_role("heading")).to_have_text("新印章：玉林市人民政府办公室 · 合同专用章")
    expect(request).to_contain_text("申请人：平台管理员甲")
    settle(second)
    screenshot(second, "admin-seal-requests")
    request.get_by_role("button", name="批准").click()
    expect(second.get_by_text("印章已生效")).to_be_visible()
    expect(request).to_have_count(0)
    second.get_by_label("单位", exact=True).select_option(DEPARTMENT)
    card = second.locator("li[data-seal]").filter(has_text="合同专用章")
    expect(card).to_contain_text("有效")

    # The second admin asks to revoke it; the first sees the seal's image and declines.
    card.get_by_role("button", name="申请吊销").click()
    card.get_by_label("吊销理由").fill("用途调整，暂不吊销")
    card.get_by_role("button", name="提交吊销申请").click()
    expect(card.get_by_role("status")).to_contain_text("已提交吊销申请")
    expect(pending_request(second, "用途调整")).to_contain_text("等待另一位平台管理员批准")

    open_screen(first, "#/admin/seals")
    revocation = pending_request(first, "用途调整")
    expect(revocation.get_by_role("heading")).to_have_text(
        "吊销印章：玉林市人民政府办公室 · 合同专用章"
    )
    expect(revocation).to_contain_text("申请人：平台管理员乙")
    expect(revocation.get_by_role("img", name="合同专用章印章图样")).to_be_visible()
    settle(first)
    screenshot(first, "admin-seal-revocation-request")
    revocation.get_by_role("button", name="拒绝").click()
    expect(first.get_by_text("已拒绝申请")).to_be_visible()
    expect(revocation).to_have_count(0)

    # What the server recorded: the approver and the decliner by name, the seal still active.
    api = officials.admins()[0]
    decided = {
        item["kind"]: item
        for status in ("approved", "declined")
        for item in api.get(f"/v1/seal-requests?status={status}&department={DEPARTMENT}").json()[
            "items"
        ]
    }
    assert decided["issue"]["requested_by"] == {"id": first_id, "name": "平台管理员甲"}
    assert decided["issue"]["decided_by"] == {"id": second_id, "name": "平台管理员乙"}
    assert decided["revoke"]["decided_by"] == {"id": first_id, "name": "平台管理员甲"}
    assert decided["revoke"]["seal"]["status"] == "active"
