"""Every console screen, as an official who may see it, at 1280 and 375 px wide: a screenshot
under ``test-artifacts/screens/``, no serious or critical axe-core violation, no horizontal
scroll on the phone width, no console error or CSP violation (the ``new_context`` fixture).

The module sets up one department with something on every screen: a received document, a
draft waiting for the browser official's 签发, one awaiting its seal, one it sent, and a
seal request waiting for a second admin.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from keys.jws import TYP_APPROVAL, sign_jws
from tests.browser.harness import (
    NARROW,
    PLATFORM,
    WIDE,
    Officials,
    axe,
    describe_violations,
    enroll_in_console,
    horizontal_overflow,
    open_screen,
    screenshot,
)
from tests.conftest import Session
from tests.seals.seal_corpus import reportlab_pdf

READER = "yl-jyj"  # the browser officials' department
SENDER = "yl-bgs"  # sends it a document
PENDING_SEAL_FOR = "yl-kjj"  # a seal request the platform admin sees waiting
DEPARTMENT_ROLES = ["clerk", "leader", "seal_keeper", "dept_admin"]


@dataclass
class Scene:
    # One browser official per width of each kind: an enrollment code works once.
    department_officials: dict[int, tuple[str, str]]
    platform_admins: dict[int, tuple[str, str]]
    received: str
    delivery: str
    to_approve: str
    awaiting_seal: str


def send(session: Session, meta: dict[str, Any], pdf: bytes) -> dict[str, Any]:
    files = {
        "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
        "file": ("document.pdf", pdf, "application/pdf"),
    }
    answer = session.post("/v1/documents", files=files)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def meta(recipients: list[str], doc_number: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": "关于做好2026年度安全生产检查工作的通知",
        "doc_number": doc_number,
        "urgency": "urgent",
        "classification": "internal",
        "recipients": recipients,
        "deadline": "2026-12-31T18:00:00+08:00",
        **extra,
    }


def approve(session: Session, document: dict[str, Any]) -> None:
    signature = sign_jws(
        {
            "document": document["id"],
            "draft_sha256": document["draft_sha256"],
            "step": 0,
            "decision": "approve",
            "opinion": "同意",
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        session.key,
        typ=TYP_APPROVAL,
    )
    answer = session.post(
        f"/v1/documents/{document['id']}/approvals", json={"signature": signature}
    )
    assert answer.status_code in (200, 201), answer.text


@pytest.fixture(scope="module")
def scene(officials: Officials) -> Scene:
    # Console logins of leaders, seal keepers and admins need a passkey by default; these
    # screens are about layout and accessibility, the passkey flows are tested elsewhere.
    officials.set_passkey_required(READER, False)
    officials.set_passkey_required(PLATFORM, False)
    officials.seal(SENDER)
    officials.seal(READER)
    pdf = reportlab_pdf(pages=2)
    people = {
        width: officials.create(READER, DEPARTMENT_ROLES, f"教育局办公室主任{width}")
        for width in (WIDE, NARROW)
    }
    admins = {
        width: officials.create(PLATFORM, ["admin"], f"平台管理员{width}")
        for width in (WIDE, NARROW)
    }

    sender = officials.login(SENDER, ["seal_keeper", "clerk"], "办公室用印员")
    received = send(sender, meta([READER], "玉政办发〔2026〕31号"), pdf)
    reader = officials.login(READER, ["clerk"], "教育局收发员")
    inbox = reader.get("/v1/inbox").json()["items"]
    delivery = next(item for item in inbox if item["document"]["id"] == received["id"])

    drafter = officials.login(READER, ["clerk"], "教育局拟稿人")
    sign_off = {"name": "签发", "mode": "any", "assignees": [p[0] for p in people.values()]}
    to_approve = send(
        drafter, meta([SENDER], "玉教发〔2026〕7号", workflow={"steps": [sign_off]}), pdf
    )
    leader = officials.login(READER, ["leader"], "教育局副局长")
    chain = {"steps": [{"name": "签发", "mode": "any", "assignees": [leader.official_id]}]}
    sealing = send(drafter, meta([SENDER], "玉教发〔2026〕8号", workflow=chain), pdf)
    approve(leader, sealing)
    keeper = officials.login(READER, ["seal_keeper", "clerk"], "教育局用印员")
    send(keeper, meta([SENDER], "玉教发〔2026〕9号"), pdf)  # on 已发

    requested = officials.admins()[0].post(
        f"/v1/departments/{PENDING_SEAL_FOR}/seal-requests", json={"purpose": "公文专用章"}
    )
    assert requested.status_code == 201, requested.text
    return Scene(
        department_officials=people,
        platform_admins=admins,
        received=received["id"],
        delivery=delivery["id"],
        to_approve=to_approve["id"],
        awaiting_seal=sealing["id"],
    )


def department_screens(scene: Scene) -> list[tuple[str, str]]:
    """(screenshot name, route) of what an official with every department role sees."""
    return [
        ("dashboard", "#/"),
        ("inbox", "#/inbox"),
        ("inbox-received", "#/inbox?state=received"),
        ("document", f"#/documents/{scene.received}?delivery={scene.delivery}"),
        ("send", "#/send"),
        ("sent", "#/sent"),
        ("todo", "#/todo"),
        ("todo-document", f"#/todo/{scene.to_approve}"),
        ("seal", "#/seal"),
        ("seal-document", f"#/seal/{scene.awaiting_seal}"),
        ("devices", "#/devices"),
        ("dept-admin-officials", "#/admin/officials"),
        ("dept-admin-webhooks", "#/admin/webhooks"),
    ]


PLATFORM_SCREENS = [
    ("admin-officials", "#/admin/officials"),
    ("admin-seals", "#/admin/seals"),
    ("admin-webhooks", "#/admin/webhooks"),
    ("admin-departments", "#/admin/departments"),
]

NOT_FOUND = {"页面不存在", "No such page"}  # the shell's heading for an unknown route
ANONYMOUS_SCREENS = [("enroll", "#/enroll"), ("login", "#/login")]


def check_screens(page: Page, screens: list[tuple[str, str]], width: int) -> None:
    """Visit each screen and collect every problem, so one run reports all of them."""
    problems: list[str] = []
    for name, route in screens:
        open_screen(page, route)
        shown = page.evaluate("() => location.hash")
        heading = page.locator("h1").first.inner_text().strip()
        if shown.split("?")[0] != route.split("?")[0]:
            problems.append(f"{route}: the console showed {shown} instead")
        elif heading in NOT_FOUND:
            problems.append(f"{route}: the console has no such screen ({heading})")
        screenshot(page, name)
        violations = axe(page)
        if violations:
            problems.append(f"{route}: axe-core\n{describe_violations(violations)}")
        if width == NARROW and (overflow := horizontal_overflow(page)) > 0:
            problems.append(f"{route}: {overflow} px of horizontal scroll at {width} px")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_department_screens(
    new_context: Callable[..., BrowserContext], officials: Officials, scene: Scene, width: int
) -> None:
    page = new_context(width).new_page()
    enroll_in_console(page, officials, *scene.department_officials[width])
    check_screens(page, department_screens(scene), width)


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_platform_admin_screens(
    new_context: Callable[..., BrowserContext], officials: Officials, scene: Scene, width: int
) -> None:
    page = new_context(width).new_page()
    enroll_in_console(page, officials, *scene.platform_admins[width])
    check_screens(page, PLATFORM_SCREENS, width)


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_screens_before_enrollment(new_context: Callable[..., BrowserContext], width: int) -> None:
    page = new_context(width).new_page()
    for name, route in ANONYMOUS_SCREENS:
        open_screen(page, route)
        screenshot(page, name)
        violations = axe(page)
        assert not violations, f"{route}:\n{describe_violations(violations)}"
        if width == NARROW:
            assert horizontal_overflow(page) <= 0, route
