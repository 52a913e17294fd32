"""Over HTTPS with a real gateway: an overdue delivery raises an alert that inspectors and the
concerned department see (nobody else), its dept_admin may add a note but only an inspector
acknowledges or closes it, and signing for the delivery closes it; a send with a revoked
seal raises an alert; stats by visibility."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from storage.db import connect
from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.exchange.test_exchange_flow import inbox_item, receipt_jws
from tests.supervision.conftest import SIGN_FOR_NORMAL_HOURS, SIGN_FOR_URGENT_HOURS
from tests.workflow.conftest import approval_jws

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """Poll *probe* until it answers (the evaluator runs every half second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def make_overdue(gateway: Gateway, document_id: str, recipient: str) -> str:
    """Time passes for one delivery: its due time moves into the past. Returns its id."""

    async def update() -> str:
        connection = await connect(gateway.database_url)
        try:
            delivery: Any = await connection.fetchval(
                "UPDATE deliveries SET due_at = now() - interval '1 minute'"
                " WHERE document = $1::uuid AND recipient = $2 RETURNING id",
                document_id,
                recipient,
            )
        finally:
            await connection.close()
        return str(delivery)

    return asyncio.run(update())


def alerts(session: Session, query: str = "") -> list[dict[str, Any]]:
    response = session.get("/v1/supervision/alerts" + query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def alert_for(session: Session, delivery: str, state: str | None = None) -> dict[str, Any] | None:
    for alert in alerts(session, "?rule=delivery_overdue&limit=500"):
        if alert["details"].get("delivery") == delivery and state in (None, alert["state"]):
            return alert
    return None


def test_overdue_delivery_alert_visibility_acknowledgement_and_closing(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jyj", "yl-gaj"], "玉政办发〔2026〕201号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    document = sent.json()
    delivery = make_overdue(gateway, document["id"], "yl-jyj")
    with (
        login_as(gateway, "yl", ["inspector"], name="监察员") as inspector,
        login_as(gateway, "yl-jyj", ["clerk"], name="教育局收文员") as clerk,
        login_as(gateway, "yl-jyj", ["dept_admin"], name="教育局管理员") as jyj_admin,
        login_as(gateway, "yl-gaj", ["clerk", "dept_admin"], name="公安局管理员") as outsider,
    ):
        alert = eventually(lambda: alert_for(inspector, delivery), "the overdue alert")
        assert alert["state"] == "open"
        assert alert["department"] == "yl-jyj"
        assert alert["subject"] == f"delivery:{delivery}"
        assert alert["details"]["doc_number"] == "玉政办发〔2026〕201号"
        assert alert["details"]["sender"] == "yl-bgs"
        # The concerned department sees it; another department does not, and may not ask.
        assert alert_for(clerk, delivery) is not None
        assert alert_for(outsider, delivery) is None
        asked = outsider.get("/v1/supervision/alerts?department=yl-jyj")
        assert asked.status_code == 404
        assert all(a["department"] == "yl-gaj" for a in alerts(outsider, "?limit=500"))
        # The sender's delivery to yl-gaj is not overdue.
        assert all(a["details"].get("recipient") != "yl-gaj" for a in alerts(inspector))

        # The department supervised may explain itself in a note, never take the alert off
        # the inspectors' list: acknowledging and closing are for inspectors only.
        path = f"/v1/supervision/alerts/{alert['id']}/acknowledge"
        close = f"/v1/supervision/alerts/{alert['id']}/close"
        notes = f"/v1/supervision/alerts/{alert['id']}/notes"
        for caller in (jyj_admin, clerk):
            refused = caller.post(path, json={})
            assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        for caller in (jyj_admin, clerk):
            refused = caller.post(close, json={"note": "已处理"})
            assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert outsider.post(notes, json={"note": "路过"}).status_code == 404
        assert clerk.post(notes, json={"note": "已签收"}).status_code == 403
        noted = jyj_admin.post(notes, json={"note": "已督促收文员签收"})
        assert noted.status_code == 200, noted.text
        assert noted.json()["state"] == "open"
        assert [n["note"] for n in noted.json()["notes"]] == ["已督促收文员签收"]
        assert noted.json()["notes"][0]["by"] == jyj_admin.official_id
        acknowledged = inspector.post(path, json={"note": "已知悉"})
        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["state"] == "acknowledged"
        assert acknowledged.json()["acknowledged_by"] == inspector.official_id
        assert inspector.post(path).json()["acknowledged_by"] == inspector.official_id
        # Still one alert for this delivery, however many passes ran meanwhile.
        mine = [a for a in alerts(inspector, "?limit=500") if a["subject"] == alert["subject"]]
        assert len(mine) == 1

        # 签收: the receipt arrives and the evaluator closes the alert.
        item = inbox_item(clerk, document["id"])
        assert item["id"] == delivery
        receipt = receipt_jws(clerk, delivery, document["sha256"])
        signed = clerk.post(f"/v1/deliveries/{delivery}/receipt", json={"signature": receipt})
        assert signed.status_code == 200, signed.text
        closed = eventually(lambda: alert_for(inspector, delivery, "closed"), "the closing")
        assert closed["close_reason"] == "cause_gone" and closed["closed_at"] is not None
        assert alert_for(inspector, delivery, "open") is None
        late = inspector.post(path, json={})
        assert late.status_code == 409 and late.json()["code"] == "alert_closed"
        late = jyj_admin.post(notes, json={"note": "补充说明"})
        assert late.status_code == 409 and late.json()["code"] == "alert_closed"
        assert alerts(inspector, "?state=closed&rule=delivery_overdue")
        assert inspector.get("/v1/supervision/alerts?state=bogus").status_code == 400

        # Each change is in the audit log, visible to the department concerned.
        def logged() -> list[str] | None:
            response = clerk.get("/v1/audit/entries?department=yl-jyj&limit=500")
            types = [
                entry["type"]
                for entry in response.json()["items"]
                if (entry["details"] or {}).get("alert") == alert["id"]
            ]
            return types if len(types) == 4 else None

        assert eventually(logged, "the audit entries") == [
            "supervision.alert_opened",
            "supervision.alert_noted",
            "supervision.alert_acknowledged",
            "supervision.alert_closed",
        ]


def test_only_an_inspector_closes_an_alert_and_notes_follow_the_text_rule(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕251号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    delivery = make_overdue(gateway, sent.json()["id"], "yl-jyj")
    with (
        login_as(gateway, "yl", ["inspector"], name="监察员") as inspector,
        login_as(gateway, "yl-jyj", ["dept_admin"], name="教育局管理员") as jyj_admin,
    ):
        alert = eventually(lambda: alert_for(inspector, delivery), "the overdue alert")
        close = f"/v1/supervision/alerts/{alert['id']}/close"
        notes = f"/v1/supervision/alerts/{alert['id']}/notes"
        assert jyj_admin.post(close, json={"note": "已处理"}).status_code == 403
        # A note is free text in the record: the bidi override trick and controls are refused.
        for bad in ("已\u202e处理", "a\x00b", "", "x" * 501):
            refused = jyj_admin.post(notes, json={"note": bad})
            assert refused.status_code == 400 and refused.json()["code"] == "invalid_request"
            refused = inspector.post(close, json={"note": bad})
            assert refused.status_code == 400 and refused.json()["code"] == "invalid_request"
        closed = inspector.post(close, json={"note": "经核实，已电话督办"})
        assert closed.status_code == 200, closed.text
        assert closed.json()["state"] == "closed"
        assert closed.json()["close_reason"] == "closed_by_inspector"
        again = inspector.post(close, json={"note": "再次关闭"})
        assert again.status_code == 409 and again.json()["code"] == "alert_closed"


def test_sending_with_a_revoked_seal_raises_an_alert(
    gateway: Gateway, admins: tuple[Session, Session], sample_pdf: bytes
) -> None:
    seal = issue_seal(admins, "yl-tjj")
    first, second = admins
    asked = first.post(
        f"/v1/seals/{seal['id']}/revoke",
        json={"reason": "印章密钥疑似泄露", "reason_code": "key_compromise"},
    )
    assert asked.status_code == 201, asked.text
    assert second.post(f"/v1/seal-requests/{asked.json()['id']}/approve").status_code == 200
    with (
        login_as(gateway, "yl-tjj", ["seal_keeper"]) as keeper,
        login_as(gateway, "yl", ["inspector"]) as inspector,
    ):
        refused = send(keeper, meta_for(["yl"], "玉统发〔2026〕9号"), sample_pdf)
        assert refused.status_code == 409 and refused.json()["code"] == "seal_revoked"

        def seal_alert() -> dict[str, Any] | None:
            found = alerts(inspector, "?rule=revoked_seal_use&state=open")
            return next((a for a in found if a["subject"] == f"seal:{seal['id']}"), None)

        alert = eventually(seal_alert, "the revoked-seal alert")
        assert alert["department"] == "yl-tjj" and alert["details"]["attempts"] == 1
        assert [a["id"] for a in alerts(keeper, "?rule=revoked_seal_use")] == [alert["id"]]


def stats(session: Session, query: str) -> httpx.Response:
    return session.get("/v1/supervision/stats" + query)


def test_stats_visibility(gateway: Gateway, seal_keeper: Session, sample_pdf: bytes) -> None:
    sent = send(seal_keeper, meta_for(["yl-kjj"], "玉政办发〔2026〕202号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    with (
        login_as(gateway, "yl", ["inspector"]) as inspector,
        login_as(gateway, "yl-kjj", ["clerk"]) as clerk,
        login_as(gateway, "yl-gaj", ["clerk"]) as outsider,
    ):
        item = inbox_item(clerk, sent.json()["id"])
        receipt = receipt_jws(clerk, item["id"], sent.json()["sha256"])
        assert (
            clerk.post(f"/v1/deliveries/{item['id']}/receipt", json={"signature": receipt})
        ).status_code == 200

        own = stats(clerk, "")
        assert own.status_code == 200, own.text
        (kjj,) = own.json()["departments"]
        assert kjj["department"] == "yl-kjj"
        assert (kjj["received"], kjj["signed_for"], kjj["judged"], kjj["on_time"]) == (1, 1, 1, 1)
        assert kjj["on_time_rate"] == 1.0 and kjj["median_seconds_to_sign_for"] >= 0

        assert stats(outsider, "?department=yl-kjj").status_code == 404
        seen = stats(inspector, "?department=yl-kjj").json()["departments"]
        assert seen == [kjj]
        everyone = {d["department"]: d for d in stats(inspector, "").json()["departments"]}
        assert everyone["yl-kjj"] == kjj and everyone["yl-bgs"]["sent"] >= 1
        window = stats(
            inspector, "?department=yl-kjj&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z"
        )
        assert window.json()["departments"][0]["received"] == 0
        bad = stats(inspector, "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"


def test_openapi_documents_the_supervision_endpoints(gateway: Gateway) -> None:
    with gateway.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    listed = paths["/v1/supervision/alerts"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"state", "rule", "department", "cursor"}
    assert "post" in paths["/v1/supervision/alerts/{id}/acknowledge"]
    stats_parameters = paths["/v1/supervision/stats"]["get"]["parameters"]
    assert {p["name"] for p in stats_parameters} == {"department", "from", "to"}


def _due_after_sending(seal_keeper: Session, document_id: str) -> dict[str, timedelta]:
    """Each delivery's due time minus its creation, by recipient."""
    shown = seal_keeper.get(f"/v1/documents/{document_id}")
    assert shown.status_code == 200, shown.text
    return {
        d["recipient"]: datetime.fromisoformat(d["due_at"])
        - datetime.fromisoformat(d["created_at"])
        for d in shown.json()["deliveries"]
    }


def test_sign_for_windows_come_from_the_settings(seal_keeper: Session, sample_pdf: bytes) -> None:
    """The gateway runs with SEALHUB_SIGN_FOR_URGENT_HOURS=6 and ..._NORMAL_HOURS=0.25."""
    urgent = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕211号"), sample_pdf)
    assert urgent.status_code == 201, urgent.text
    assert _due_after_sending(seal_keeper, urgent.json()["id"]) == {
        "yl-jyj": timedelta(hours=float(SIGN_FOR_URGENT_HOURS))
    }
    normal_meta = meta_for(["yl-jyj"], "玉政办发〔2026〕212号", urgency="normal")
    normal = send(seal_keeper, normal_meta, sample_pdf)
    assert normal.status_code == 201, normal.text
    resent = seal_keeper.post(
        f"/v1/documents/{normal.json()['id']}/resend", json={"recipients": ["yl-gaj"]}
    )
    assert resent.status_code == 200, resent.text
    window = timedelta(hours=float(SIGN_FOR_NORMAL_HOURS))
    assert _due_after_sending(seal_keeper, normal.json()["id"]) == {
        "yl-jyj": window,
        "yl-gaj": window,
    }
    # 用印 after 签发 dispatches with the same windows.
    with login_as(seal_keeper.gateway, "yl-bgs", ["leader"], name="签发领导") as leader:
        workflow = {"steps": [{"name": "签发", "mode": "any", "assignees": [leader.official_id]}]}
        meta = meta_for(["yl-jyj"], "玉政办发〔2026〕214号", workflow=workflow)
        drafted = send(seal_keeper, meta, sample_pdf)
        assert drafted.status_code == 201, drafted.text
        draft = drafted.json()
        signature = approval_jws(leader, draft["id"], draft["draft_sha256"], 0, "approve", "签发")
        approved = leader.post(
            f"/v1/documents/{draft['id']}/approvals", json={"signature": signature}
        )
        assert approved.status_code == 200, approved.text
    assert seal_keeper.post(f"/v1/documents/{draft['id']}/seal").status_code == 200
    assert _due_after_sending(seal_keeper, draft["id"]) == {
        "yl-jyj": timedelta(hours=float(SIGN_FOR_URGENT_HOURS))
    }
    # A deadline wins over the window.
    deadline = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    with_deadline = meta_for(
        ["yl-jyj"], "玉政办发〔2026〕213号", deadline=deadline.isoformat().replace("+00:00", "Z")
    )
    dated = send(seal_keeper, with_deadline, sample_pdf)
    assert dated.status_code == 201, dated.text
    shown = seal_keeper.get(f"/v1/documents/{dated.json()['id']}").json()
    assert [datetime.fromisoformat(d["due_at"]) for d in shown["deliveries"]] == [deadline]
