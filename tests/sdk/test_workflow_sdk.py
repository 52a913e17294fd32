"""The approval workflow with the SDK alone: a clerk drafts with a workflow (核稿 then 签发),
the approvers download the draft and sign their decisions, a seal keeper seals (用印), and
the recipient signs for the sealed document; a rejection returns the draft to its drafter,
who submits a new version."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sealhub_sdk import AsyncClient, Client, Conflict, DeviceKey, SealhubError

from tests.conftest import Gateway, create_official_in_db
from tests.sdk.conftest import simple_pdf

SENDER, RECIPIENT = "yl-zjj", "yl-fgw"


def enrolled(gateway: Gateway, department: str, roles: list[str]) -> Client:
    official, code = create_official_in_db(gateway.database_url, department, roles)
    client = Client(
        gateway.base_url, ca_file=gateway.ca_path, key=DeviceKey.generate(), official_id=official
    )
    client.enroll(official, code)
    client.login()
    return client


@pytest.fixture(scope="module")
def officials(gateway: Gateway) -> Iterator[dict[str, Client]]:
    clients = {
        "admin1": enrolled(gateway, "yl", ["admin"]),
        "admin2": enrolled(gateway, "yl", ["admin"]),
        "clerk": enrolled(gateway, SENDER, ["clerk"]),
        "reviewer": enrolled(gateway, SENDER, ["clerk"]),
        "leader": enrolled(gateway, SENDER, ["leader"]),
        "keeper": enrolled(gateway, SENDER, ["seal_keeper"]),
        "recipient": enrolled(gateway, RECIPIENT, ["clerk"]),
    }
    request = clients["admin1"].request_seal(SENDER)
    clients["admin2"].approve_seal_request(request.id)
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drafts") / "草稿.pdf"
    path.write_bytes(simple_pdf(pages=2, title="Draft"))
    return path


def workflow(officials: dict[str, Client]) -> dict[str, object]:
    return {
        "steps": [
            {"name": "核稿", "assignees": [officials["reviewer"].me().id], "mode": "all"},
            {"name": "签发", "assignees": [officials["leader"].me().id], "mode": "all"},
        ]
    }


def test_draft_approve_seal_and_sign_for(
    officials: dict[str, Client], pdf: Path, tmp_path: Path
) -> None:
    sent = officials["clerk"].send(
        pdf,
        title="关于审批流程的通知",
        doc_number="玉住建发〔2026〕1号",
        recipients=[RECIPIENT],
        workflow=workflow(officials),
    )
    assert sent.status == "in_approval" and sent.sha256 is None
    assert sent.draft_sha256 == hashlib.sha256(pdf.read_bytes()).hexdigest()

    # A seal keeper cannot seal before the sign-off.
    with pytest.raises(Conflict, match="only a signed-off document can be sealed"):
        officials["keeper"].seal(sent.id)

    # Each approver reads the exact draft bytes and signs them.
    draft = officials["reviewer"].download(sent.id, tmp_path / "draft.pdf", draft=True)
    assert draft.sha256 == sent.draft_sha256
    review = officials["reviewer"].approve(
        sent.id, draft_sha256=draft.sha256, step=0, opinion="同意"
    )
    assert review["outcome"] == "step_completed" and review["status"] == "in_approval"
    sign_off = officials["leader"].approve(sent.id, draft_sha256=draft.sha256, step="签发")
    assert sign_off["outcome"] == "signed_off" and sign_off["status"] == "awaiting_seal"

    sealed = officials["keeper"].seal(sent.id)
    assert sealed.status == "dispatched" and sealed.sha256 and sealed.deliveries == 1
    with pytest.raises(Conflict):  # a second, separate seal call is refused
        officials["keeper"].seal(sent.id)

    document = officials["clerk"].document(sent.id)
    assert document.status == "dispatched" and document.sha256 == sealed.sha256

    recipient = officials["recipient"]
    item = next(i for i in recipient.inbox().items if i.document.id == sent.id)
    received = recipient.download(sent.id, tmp_path / "in.pdf", expected_sha256=sealed.sha256)
    receipt = recipient.sign_for(item.id, sha256=received.sha256)
    assert receipt.state == "received"

    # 补发 of the signed-off document: the leader's signed approval for exactly these.
    with pytest.raises(SealhubError, match="signed approval"):
        officials["clerk"].resend(sent.id, ["yl-gaj"])
    approval = officials["leader"].approve_resend(
        sent.id, sha256=sealed.sha256, recipients=["yl-gaj"]
    )
    resent = officials["clerk"].resend(sent.id, ["yl-gaj"], approval=approval)
    assert resent["added"] == ["yl-gaj"]


def test_rejection_returns_the_draft(
    officials: dict[str, Client], pdf: Path, tmp_path: Path
) -> None:
    sent = officials["clerk"].send(
        pdf,
        title="关于退回的通知",
        doc_number="玉住建发〔2026〕2号",
        recipients=[RECIPIENT],
        workflow=workflow(officials),
    )
    answer = officials["reviewer"].approve(
        sent.id,
        draft_sha256=sent.draft_sha256,
        step=0,
        decision="reject",
        opinion="文号有误",
    )
    assert answer["outcome"] == "returned" and answer["status"] == "returned"
    assert officials["clerk"].document(sent.id).status == "returned"

    # The drafter submits a corrected version; the chain starts again on its bytes.
    corrected = tmp_path / "改正稿.pdf"
    corrected.write_bytes(simple_pdf(pages=1, title="Corrected draft"))
    progress: list[tuple[int, int]] = []
    version = officials["clerk"].submit_version(
        sent.id, corrected, progress=lambda done, total: progress.append((done, total))
    )
    new_sha256 = hashlib.sha256(corrected.read_bytes()).hexdigest()
    assert version["version"] == 2 and version["status"] == "in_approval"
    assert version["draft_sha256"] == new_sha256
    assert progress[-1] == (corrected.stat().st_size,) * 2
    # An approval of the old bytes no longer counts; of the new ones it does.
    with pytest.raises(SealhubError):
        officials["reviewer"].approve(sent.id, draft_sha256=sent.draft_sha256, step=0)
    review = officials["reviewer"].approve(sent.id, draft_sha256=new_sha256, step=0)
    assert review["outcome"] == "step_completed"
    with pytest.raises(SealhubError):  # only the drafter submits versions
        officials["reviewer"].submit_version(sent.id, corrected)


def test_async_approve(gateway: Gateway, officials: dict[str, Client], pdf: Path) -> None:
    sent = officials["clerk"].send(
        pdf,
        title="关于异步审批的通知",
        doc_number="玉住建发〔2026〕3号",
        recipients=[RECIPIENT],
        workflow={
            "steps": [{"name": "签发", "assignees": [officials["leader"].me().id], "mode": "any"}]
        },
    )
    leader = officials["leader"]

    async def sign_off() -> object:
        async with AsyncClient(
            gateway.base_url,
            ca_file=gateway.ca_path,
            key=leader._core.key,
            official_id=leader._core.official_id,
        ) as client:
            await client.login()
            return await client.approve(sent.id, draft_sha256=sent.draft_sha256, step=0)

    answer = asyncio.run(sign_off())
    assert answer["status"] == "awaiting_seal"  # type: ignore[index]
    assert officials["keeper"].seal(sent.id).status == "dispatched"
