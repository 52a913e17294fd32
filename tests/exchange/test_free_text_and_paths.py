"""Issue 16: the 退回 reason follows the free-text rule of every official record, and no
server filesystem path reaches a client in an error. Over HTTPS against a real gateway."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import meta_for, send
from tests.exchange.test_exchange_flow import inbox_item, receipt_jws


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (401, "文号有误\u202e回退"),
        (402, "格式\u0000错误"),
        (403, "退回\u200f原因"),
        (404, "x\u0085y"),
    ],
    ids=["rtl-override", "nul", "rlm", "c1-control"],
)
def test_a_return_reason_with_control_or_bidi_characters_is_refused(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes, number: int, reason: str
) -> None:
    sent = send(
        seal_keeper,
        meta_for(["yl-jyj"], f"玉政办发〔2026〕{number}号"),
        sample_pdf,
    )
    assert sent.status_code == 201, sent.text
    document = sent.json()
    with login_as(gateway, "yl-jyj", ["clerk"]) as clerk:
        delivery = inbox_item(clerk, document["id"])["id"]
        jws = receipt_jws(clerk, delivery, document["sha256"], action="reject", reason=reason)
        refused = clerk.post(f"/v1/deliveries/{delivery}/reject", json={"signature": jws})
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "invalid_request"
        # Nothing was decided: the delivery still waits, and a clean reason is accepted.
        assert inbox_item(clerk, document["id"])["state"] in ("pending", "fetched")
        clean = receipt_jws(clerk, delivery, document["sha256"], action="reject", reason="文号有误")
        returned = clerk.post(f"/v1/deliveries/{delivery}/reject", json={"signature": clean})
        assert returned.status_code == 200, returned.text


def test_no_server_path_appears_in_an_error(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    """The object store's directory disappears (a failed mount): the 503 says so without
    telling the client where the server keeps its data."""
    root = gateway.data_dir / "objects"
    moved = root.with_name("objects.away")
    root.rename(moved)
    try:
        failed = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕399号"), sample_pdf)
    finally:
        moved.rename(root)
    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "storage_unavailable"
    assert str(gateway.data_dir) not in failed.text
    assert not re.search(r"(?<![\w:/])/(?:[\w.-]+/)+", failed.json()["detail"]), failed.text
    assert Path(root).is_dir()
