"""The exchange from two departments' points of view, with the SDK alone: 用印 and send in
one department, inbox, download, 签收 in another; the receipt and the audit log are then
verified offline against the platform CA and the pinned log key."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sealhub_sdk import (
    AsyncClient,
    AuthenticationError,
    Client,
    Conflict,
    DeviceKey,
    InvalidRequest,
    NotFound,
    verify_checkpoint_timestamp,
    verify_countersigned_receipt,
    verify_pdf_locally,
)

from tests.conftest import Gateway, create_official_in_db
from tests.sdk.conftest import simple_pdf

SENDER, RECIPIENT = "yl-jyj", "yl-fgw"


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
        "keeper": enrolled(gateway, SENDER, ["seal_keeper"]),
        "clerk": enrolled(gateway, RECIPIENT, ["clerk"]),
        "outsider": enrolled(gateway, "yl-bgs", ["clerk"]),
    }
    request = clients["admin1"].request_seal(SENDER)
    seal = clients["admin2"].approve_seal_request(request.id)
    assert seal.department == SENDER and seal.status == "active"
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("docs") / "通知.pdf"
    path.write_bytes(simple_pdf(pages=3))
    return path


def test_send_fetch_sign_for_and_verify(
    gateway: Gateway, officials: dict[str, Client], pdf: Path, tmp_path: Path
) -> None:
    progress: list[tuple[int, int]] = []
    sent = officials["keeper"].send(
        pdf,
        title="关于开展安全生产检查的通知",
        recipients=[RECIPIENT],
        doc_number="玉教发〔2026〕7号",
        urgency="urgent",
        classification="internal",
        progress=lambda done, total: progress.append((done, total)),
    )
    assert sent.status == "dispatched" and sent.deliveries == 1 and sent.sha256
    assert progress[-1] == (pdf.stat().st_size, pdf.stat().st_size)

    clerk = officials["clerk"]
    item = next(i for i in clerk.watch(wait=5) if i.document.id == sent.id)
    assert item.document.title == "关于开展安全生产检查的通知"
    assert item.document.sender == SENDER

    download = clerk.download(sent.id, tmp_path / "received.pdf", expected_sha256=sent.sha256)
    assert download.sha256 == sent.sha256
    assert hashlib.sha256(Path(download.path).read_bytes()).hexdigest() == sent.sha256

    report = verify_pdf_locally(download.path, ca_pem=gateway.ca_path.read_bytes())
    assert report.valid, report
    assert report.seals and report.seals[0].covers_whole_document

    receipt = clerk.sign_for(item.id, sha256=download.sha256)
    assert receipt.state == "received"
    checked = verify_countersigned_receipt(
        receipt.countersigned,
        ca_pem=gateway.ca_path.read_bytes(),
        expected_delivery=item.id,
        expected_sha256=download.sha256,
        official_key=clerk._core.key.public_key,  # type: ignore[union-attr]
    )
    assert checked.action == "receive"
    assert checked.audit_index == receipt.audit_index

    # The sender sees the same countersigned receipt; a third department sees nothing.
    assert officials["keeper"].receipt(item.id).countersigned == receipt.countersigned
    with pytest.raises(NotFound):
        officials["outsider"].download(sent.id, tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()

    # Signing for it again is a conflict, not a second receipt.
    with pytest.raises((Conflict, InvalidRequest)):
        clerk.sign_for(item.id, sha256=download.sha256)

    # The receipt's audit entry is in the log the pinned key signs.
    # (the department sees its own entries; the log key would be pinned out of band)
    log_key = clerk.audit_log_key()
    assert receipt.audit_index is not None
    entry = clerk.verify_audit_entry(receipt.audit_index, [log_key])
    assert entry.type == "delivery.received"
    stamped = verify_checkpoint_timestamp(
        clerk.audit_checkpoint(), ca_pem=gateway.ca_path.read_bytes()
    )
    assert stamped.hash_algorithm == "sha256"
    mine = list(clerk.audit_entries(document=sent.id))
    assert receipt.audit_index in [e.index for e in mine]


def test_withdraw_and_resend(officials: dict[str, Client], pdf: Path, tmp_path: Path) -> None:
    keeper, clerk = officials["keeper"], officials["clerk"]
    sent = keeper.send(
        pdf, title="撤回测试", recipients=[RECIPIENT], doc_number="玉教发〔2026〕10号"
    )
    keeper.withdraw(sent.id)
    assert sent.id not in {i.document.id for i in clerk.inbox().items}
    with pytest.raises(NotFound):
        clerk.download(sent.id, tmp_path / "gone.pdf")

    again = keeper.send(
        pdf, title="补发测试", recipients=[RECIPIENT], doc_number="玉教发〔2026〕11号"
    )
    keeper.resend(again.id, ["yl-bgs"])
    outsider = officials["outsider"]
    item = next(i for i in outsider.inbox().items if i.document.id == again.id)
    assert item.state == "pending"


def test_async_client_exchange(
    gateway: Gateway, officials: dict[str, Client], pdf: Path, tmp_path: Path
) -> None:
    keeper, clerk = officials["keeper"], officials["clerk"]

    def clone(client: Client) -> AsyncClient:
        core = client._core
        return AsyncClient(
            gateway.base_url, ca_file=gateway.ca_path, key=core.key, official_id=core.official_id
        )

    async def flow() -> tuple[str, str]:
        async with clone(keeper) as sender, clone(clerk) as receiver:
            await sender.login()
            await receiver.login()
            sent = await sender.send(
                pdf, title="异步发送", recipients=[RECIPIENT], doc_number="玉教发〔2026〕12号"
            )
            async for item in receiver.watch(wait=5):
                if item.document.id == sent.id:
                    break
            download = await receiver.download(sent.id, tmp_path / "async.pdf")
            receipt = await receiver.sign_for(item.id, sha256=download.sha256)
            assert (await sender.receipt(item.id)).countersigned == receipt.countersigned
            return download.sha256, str(sent.sha256)

    got, expected = asyncio.run(flow())
    assert got == expected


def test_reject_with_reason(officials: dict[str, Client], pdf: Path, tmp_path: Path) -> None:
    sent = officials["keeper"].send(
        pdf, title="退回测试", recipients=[RECIPIENT], doc_number="玉教发〔2026〕8号"
    )
    clerk = officials["clerk"]
    page = clerk.inbox(state="pending")
    item = next(i for i in page.items if i.document.id == sent.id)
    download = clerk.download(sent.id, tmp_path / "r.pdf")
    receipt = clerk.reject(item.id, sha256=download.sha256, reason="附件缺失，请补充。")
    assert receipt.state == "rejected"
    assert sent.sha256 is not None


def test_sign_for_other_bytes_is_refused(officials: dict[str, Client], pdf: Path) -> None:
    sent = officials["keeper"].send(
        pdf, title="错误摘要", recipients=[RECIPIENT], doc_number="玉教发〔2026〕9号"
    )
    clerk = officials["clerk"]
    item = next(i for i in clerk.inbox().items if i.document.id == sent.id)
    with pytest.raises(AuthenticationError) as refused:
        clerk.sign_for(item.id, sha256=hashlib.sha256(b"not the document").hexdigest())
    assert refused.value.code == "invalid_signature"
