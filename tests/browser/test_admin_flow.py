"""管理 in real browsers: a dept_admin creates a clerk in the console and is shown its
enrollment link (and a QR code of it); the link opened in a fresh browser context enrolls
the official, which lands logged in on 工作台; the admin then sees its key (and reads the
page in English). A new leader
takes two managers: the first one's creation waits as a four-eyes request, which the
second dept_admin approves in its own console, receiving the link the leader enrolls with
(setting up its passkey, as its role requires)."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.harness import (
    Officials,
    add_virtual_authenticator,
    enroll_in_console,
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
