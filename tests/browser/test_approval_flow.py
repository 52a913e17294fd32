"""An approval chain done entirely in browsers: a clerk drafts a document in 发文 with the
chain 核稿 (one reviewer) → 会签 (two countersigners, all of them) → 签发 (a leader); each
opens it in 待办, sees the draft drawn and the chain so far, and decides with a
sealhub-approval+jwt made by WebCrypto (the leader's 签发 with a passkey step-up); a seal
keeper then sees it in 用印 with the seal image over the page where the gateway will put it,
and seals it with a sealhub-seal+jwt and a passkey step-up. 补发 then takes the leader's
sealhub-resend+jwt: the leader (who may not send resends) signs it in 已发, the drafter
pastes it and sends. Every signature is verified with python-jose against the public key
the gateway holds for that browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Worker, expect

from tests.browser.harness import (
    Officials,
    add_virtual_authenticator,
    enroll_in_console,
    screenshot,
    settle,
    verify_es256,
)
from tests.browser.test_receive_flow import enroll_with_passkey_setup
from tests.conftest import Session
from tests.seals.seal_corpus import reportlab_pdf

DEPARTMENT = "yl-jyj"  # 玉林市教育局
RECIPIENT = "yl-fgw"
RECIPIENT_NAME = "玉林市发展和改革委员会"
MORE = "yl-bgs"  # 补发 reaches it too
MORE_NAME = "玉林市人民政府办公室"
TITLE = "关于印发《玉林市中小学校园安全管理办法》的通知"


@pytest.fixture(scope="module")
def manager(officials: Officials) -> Session:
    """The department's admin over the API: reads each browser key's public JWK."""
    officials.seal(DEPARTMENT)
    return officials.login(DEPARTMENT, ["dept_admin"], "教育局管理员")


def jwk_of(manager: Session, official: str) -> dict[str, Any]:
    [key] = manager.get(f"/v1/officials/{official}/keys").json()["items"]
    assert key["device_kind"] == "browser"
    jwk: dict[str, Any] = key["jwk"]
    return jwk


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="主导航").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def posted(page: Page, suffix: str, click: Callable[[], None]) -> dict[str, Any]:
    """Click, and answer the JSON body of the POST whose URL ends with *suffix* (2xx)."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(suffix)) as a:
        click()
    assert a.value.status in (200, 201), a.value.text()
    body = a.value.request.post_data_json
    assert isinstance(body, dict), body
    return body


def draft(page: Page, pdf: Path, names: dict[str, str]) -> dict[str, Any]:
    """发文 with the chain 核稿 → 会签 (all) → 签发; answers the gateway's answer."""
    nav(page, "发文")
    expect(page.get_by_text("发文须经审批流程")).to_be_visible()
    page.get_by_label("标题").fill(TITLE)
    page.get_by_label("发文字号").fill("玉教发〔2026〕21号")
    page.get_by_label("搜索单位或分发组").fill("发展和改革")
    page.get_by_role("button", name=f"{RECIPIENT_NAME}：主送").click()
    page.get_by_label("选择 PDF 文件").set_input_files(str(pdf))

    add = page.get_by_role("button", name="在签发前增加一步")
    add.click()
    add.click()
    steps = page.locator("fieldset.step")
    expect(steps).to_have_count(3)
    # Only leaders are offered for 签发, never the drafter.
    sign_off = steps.nth(2)
    expect(sign_off.get_by_role("checkbox")).to_have_count(1)
    sign_off.get_by_label(names["leader"]).check()
    steps.nth(0).get_by_label(names["reviewer"]).check()
    countersign = steps.nth(1)
    countersign.get_by_label("环节").select_option("会签")
    countersign.get_by_label("方式").select_option("all")
    countersign.get_by_label(names["first"]).check()
    countersign.get_by_label(names["second"]).check()
    expect(countersign.locator("legend").first).to_have_text("第2步: 会签")
    screenshot(page, "send-chain")

    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/v1/documents")
    ) as answer:
        page.get_by_role("button", name="送审批").click()
    assert answer.value.status == 201, answer.value.text()
    expect(page.get_by_role("status").filter(has_text="已送审批")).to_be_visible()
    sent: dict[str, Any] = answer.value.json()
    assert sent["status"] == "in_approval"
    return sent


def decide(page: Page, document: str, opinion: str, button: str) -> dict[str, Any]:
    """Open the document from 待办, read the draft and the chain, sign the decision."""
    nav(page, "待办")
    card = page.locator(f'li[data-document="{document}"]')
    expect(card).to_contain_text(TITLE)
    card.get_by_role("link", name="审批").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.locator('canvas[data-rendered="true"]').first).to_be_visible(timeout=20_000)
    expect(page.locator(".chain-view")).to_contain_text("签发")
    page.get_by_label("意见").fill(opinion)
    body = posted(
        page,
        f"/v1/documents/{document}/approvals",
        lambda: page.get_by_role("button", name=button, exact=True).click(),
    )
    page.wait_for_function("() => location.hash === '#/todo'")
    return body


def check_approval(
    body: dict[str, Any], jwk: dict[str, Any], sent: dict[str, Any], step: int, opinion: str
) -> None:
    claims = verify_es256(body["signature"], jwk)
    assert claims["document"] == sent["id"]
    assert claims["draft_sha256"] == sent["draft_sha256"]
    assert (claims["step"], claims["decision"], claims["opinion"]) == (step, "approve", opinion)
    assert isinstance(claims["iat"], int) and isinstance(claims["jti"], str)


def test_review_countersign_sign_off_and_seal_all_in_browsers(
    new_context: Callable[..., BrowserContext],
    officials: Officials,
    manager: Session,
    tmp_path: Path,
) -> None:
    names = {
        "drafter": "教育局拟稿人",
        "reviewer": "教育局核稿人",
        "first": "教育局会签人甲",
        "second": "教育局会签人乙",
        "leader": "教育局局长",
        "keeper": "教育局用印员",
    }
    roles = {"leader": ["leader"], "keeper": ["seal_keeper"]}
    made = {
        who: officials.create(DEPARTMENT, roles.get(who, ["clerk"]), name)
        for who, name in names.items()
    }
    pages: dict[str, Page] = {}
    for who, (official, code) in made.items():
        page = new_context().new_page()
        if who in roles:  # leaders and seal keepers log in with a passkey
            add_virtual_authenticator(page)
            enroll_with_passkey_setup(page, officials, official, code)
        else:
            enroll_in_console(page, officials, official, code)
        pages[who] = page
    jwks = {who: jwk_of(manager, official) for who, (official, _) in made.items()}

    pdf = tmp_path / "办法.pdf"
    pdf.write_bytes(reportlab_pdf(pages=2, title=TITLE))
    sent = draft(pages["drafter"], pdf, names)

    # 核稿, then 会签 by both (mode all: the step stays open after the first).
    body = decide(pages["reviewer"], sent["id"], "核稿无误。", "同意")
    check_approval(body, jwks["reviewer"], sent, 0, "核稿无误。")
    body = decide(pages["first"], sent["id"], "同意印发。", "同意")
    check_approval(body, jwks["first"], sent, 1, "同意印发。")
    status = manager.get(f"/v1/documents/{sent['id']}").json()
    assert status["workflow"]["current_step"] == 1
    body = decide(pages["second"], sent["id"], "会签同意。", "同意")
    check_approval(body, jwks["second"], sent, 1, "会签同意。")

    # 签发 by the leader, with a passkey step-up bound to the approval JWS.
    leader = pages["leader"]
    nav(leader, "待办")
    leader.locator(f'li[data-document="{sent["id"]}"]').get_by_role("link", name="审批").click()
    expect(leader.locator(".trail li")).to_have_count(3)
    expect(leader.locator(".trail")).to_contain_text("会签同意。")
    settle(leader)
    screenshot(leader, "todo-sign-off")
    leader.get_by_label("意见").fill("同意，请印发。")
    body = posted(
        leader,
        f"/v1/documents/{sent['id']}/approvals",
        lambda: leader.get_by_role("button", name="签发", exact=True).click(),
    )
    assert body["passkey"]["type"] == "public-key"
    check_approval(body, jwks["leader"], sent, 2, "同意，请印发。")
    assert manager.get(f"/v1/documents/{sent['id']}").json()["status"] == "awaiting_seal"

    # 用印: the seal image over the page at the box the gateway reports, then the seal.
    keeper = pages["keeper"]
    workers: list[Worker] = []
    keeper.on("worker", lambda worker: workers.append(worker))
    nav(keeper, "用印")
    keeper.locator(f'li[data-document="{sent["id"]}"]').get_by_role("link", name="用印").click()
    preview = keeper.locator("figure.seal-preview svg")
    expect(preview.locator("image")).to_have_count(2, timeout=20_000)
    box_api = officials.login(DEPARTMENT, ["seal_keeper"], "用印员（接口）")
    [item] = [
        i
        for i in box_api.get("/v1/documents", params={"box": "awaiting_seal"}).json()["items"]
        if i["id"] == sent["id"]
    ]
    x1, y1, x2, y2 = item["seal"]["box"]
    height = item["seal"]["page_size"][1]
    stamp = preview.locator("image").nth(1)
    assert float(stamp.get_attribute("x") or "nan") == pytest.approx(x1)
    assert float(stamp.get_attribute("y") or "nan") == pytest.approx(height - y2)
    assert float(stamp.get_attribute("width") or "nan") == pytest.approx(x2 - x1)
    assert float(stamp.get_attribute("height") or "nan") == pytest.approx(y2 - y1)
    assert (stamp.get_attribute("href") or "").startswith("blob:")
    settle(keeper)
    screenshot(keeper, "seal-preview")
    body = posted(
        keeper,
        f"/v1/documents/{sent['id']}/seal",
        lambda: keeper.get_by_role("button", name="用印并分发").click(),
    )
    assert body["passkey"]["type"] == "public-key"
    claims = verify_es256(body["signature"], jwks["keeper"])
    assert (claims["document"], claims["draft_sha256"]) == (sent["id"], sent["draft_sha256"])
    keeper.wait_for_function(f"() => location.hash === '#/documents/{sent['id']}'")
    # The preview's page and the document view's pages come from one pdf.js worker.
    expect(keeper.locator('canvas[data-rendered="true"]').first).to_be_visible(timeout=15_000)
    assert [w.url.rsplit("/", 1)[-1] for w in workers] == ["pdf.worker.min.mjs"]

    document = manager.get(f"/v1/documents/{sent['id']}").json()
    assert document["status"] == "dispatched"
    assert [(a["step"], a["decision"]) for a in document["approvals"]] == [
        (0, "approve"),
        (1, "approve"),
        (1, "approve"),
        (2, "approve"),
    ]
    assert [d["recipient"] for d in document["deliveries"]] == [RECIPIENT]

    # 补发 after sign-off takes the leader's sealhub-resend+jwt; this leader may not send
    # resends itself, so it signs in 已发 and hands the approval to the drafter (a clerk).
    nav(leader, "已发")
    card = leader.locator(f'li[data-document="{sent["id"]}"]')
    card.get_by_role("button", name="补发").click()
    card.get_by_label("搜索单位或分发组").fill("人民政府办公室")
    card.get_by_role("button", name=f"{MORE_NAME}：主送").click()
    card.get_by_role("button", name="签批补发").click()
    approval = card.get_by_label("补发签批（请交给本单位文书）").input_value()
    claims = verify_es256(approval, jwks["leader"])
    assert (claims["document"], claims["sha256"]) == (sent["id"], document["sha256"])
    assert claims["recipients"] == [MORE]

    drafter = pages["drafter"]
    nav(drafter, "已发")
    card = drafter.locator(f'li[data-document="{sent["id"]}"]')
    card.get_by_role("button", name="补发").click()
    expect(card.get_by_role("note")).to_contain_text("须由本单位领导签批")
    card.get_by_label("领导的补发签批").fill(approval)
    expect(card.get_by_text(f"签批的补发单位：{MORE}")).to_be_visible()
    body = posted(
        drafter,
        f"/v1/documents/{sent['id']}/resend",
        lambda: card.get_by_role("button", name="确认补发").click(),
    )
    assert body == {"recipients": [MORE], "approval": approval}
    card.get_by_role("button", name="各单位状态").click()
    expect(card.locator(f'[data-recipient="{MORE}"]')).to_have_text(MORE_NAME)
