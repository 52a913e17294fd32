"""The core job end to end over HTTPS: send sealed, fan out, fetch, sign for, countersign."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jose import jws as plain_jws

from keys.jws import TYP_RECEIPT, sign_jws
from storage.db import connect
from tests.conftest import REPO, Gateway, Session, login_as
from tests.exchange.conftest import SENDER, issue_seal, meta_for, send

COUNTIES = ["yl.bb", "yl.bl", "yl.fm", "yl.lc", "yl.rx", "yl.xy", "yl.yz"]
BUREAUS = [
    "yl-fgw",
    "yl-jyj",
    "yl-kjj",
    "yl-gxj",
    "yl-gaj",
    "yl-mzj",
    "yl-sfj",
    "yl-czj",
    "yl-rsj",
    "yl-zrj",
]


def receipt_jws(
    session: Session, delivery: str, sha256: str, action: str = "receive", reason: str = ""
) -> str:
    return sign_jws(
        {
            "delivery": delivery,
            "sha256": sha256,
            "action": action,
            "reason": reason,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        session.key,
        typ=TYP_RECEIPT,
    )


def inbox_item(session: Session, document_id: str) -> dict[str, Any]:
    items = session.get("/v1/inbox?limit=500").json()["items"]
    matches = [item for item in items if item["document"]["id"] == document_id]
    assert len(matches) == 1, items
    return matches[0]


def check_countersigned(
    gateway: Gateway, countersigned: str, receipt: str, tmp_path: Path
) -> dict[str, Any]:
    """Offline, with a plain JOSE library and openssl: what a recipient's auditor would do."""
    header = json.loads(base64.urlsafe_b64decode(countersigned.split(".")[0] + "=="))
    assert header["typ"] == "sealhub-countersign+jwt"
    assert header["alg"] == "ES256"
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    root = x509.load_pem_x509_certificate(gateway.ca_path.read_bytes())
    # x5c leads to the platform root: leaf signed by the seal CA, seal CA by the root.
    chain[0].verify_directly_issued_by(chain[1])
    chain[1].verify_directly_issued_by(root)
    leaf_key = (
        chain[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims: dict[str, Any] = json.loads(plain_jws.verify(countersigned, leaf_key, ["ES256"]))
    assert claims["receipt"] == receipt
    assert isinstance(claims["audit_index"], int)
    (tmp_path / "receipt.jws").write_text(receipt)
    (tmp_path / "token.tst").write_bytes(base64.b64decode(claims["tst"]))
    (tmp_path / "chain.pem").write_bytes((gateway.data_dir / "pki" / "chain.pem").read_bytes())
    verified = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            str(tmp_path / "receipt.jws"),
            "-in",
            str(tmp_path / "token.tst"),
            "-token_in",
            "-CAfile",
            str(gateway.ca_path),
            "-untrusted",
            str(tmp_path / "chain.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
    return claims


def test_fanout_to_counties_and_bureaus_each_signs_for_it(
    gateway: Gateway,
    seal_keeper: Session,
    sample_pdf: bytes,
    pdfsig: Callable[[bytes], str],
    tmp_path: Path,
) -> None:
    sent = send(
        seal_keeper,
        meta_for(["all-county-governments", *BUREAUS], "玉政办发〔2026〕18号", cc=["yl-jyj"]),
        sample_pdf,
    )
    assert sent.status_code == 201, sent.text
    document = sent.json()
    assert document["status"] == "dispatched"
    assert document["deliveries"] == len(COUNTIES) + len(BUREAUS)
    assert document["sha256"] != document["draft_sha256"]

    signed_by: dict[str, str] = {}
    for department in COUNTIES + BUREAUS:
        with login_as(gateway, department, ["clerk"], name=f"{department}收文员") as clerk:
            item = inbox_item(clerk, document["id"])
            assert item["state"] == "pending"
            assert item["document"]["sender"] == SENDER
            content = clerk.get(f"/v1/documents/{document['id']}/content")
            assert content.status_code == 200
            assert hashlib.sha256(content.content).hexdigest() == document["sha256"]
            if department in (COUNTIES[0], BUREAUS[-1]):
                report = pdfsig(content.content)
                assert "Signature is Valid." in report, report
                assert "Certificate is Trusted." in report, report
                assert "Total document signed" in report, report
            assert inbox_item(clerk, document["id"])["state"] == "fetched"
            receipt = receipt_jws(clerk, item["id"], document["sha256"])
            answer = clerk.post(f"/v1/deliveries/{item['id']}/receipt", json={"signature": receipt})
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "received"
            if department == COUNTIES[0]:
                claims = check_countersigned(
                    gateway, answer.json()["countersigned"], receipt, tmp_path
                )
                assert claims["audit_index"] == answer.json()["audit_index"]
            signed_by[department] = clerk.official_id

    view = seal_keeper.get(f"/v1/documents/{document['id']}").json()
    by_recipient = {d["recipient"]: d for d in view["deliveries"]}
    assert set(by_recipient) == set(COUNTIES) | set(BUREAUS)  # cc yl-jyj is already a recipient
    for department, official in signed_by.items():
        assert by_recipient[department]["state"] == "received"
        assert by_recipient[department]["decided_by"] == official
        assert by_recipient[department]["decided_at"] is not None

    refused = seal_keeper.post(f"/v1/documents/{document['id']}/withdraw")
    assert refused.status_code == 409
    assert refused.json()["code"] == "conflict"


def test_a_department_not_addressed_sees_nothing(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕19号"), sample_pdf).json()
    delivery = seal_keeper.get(f"/v1/documents/{sent['id']}").json()["deliveries"][0]["id"]
    with login_as(gateway, "yl-swj", ["clerk", "dept_admin"]) as outsider:
        items = outsider.get("/v1/inbox").json()["items"]
        assert all(item["document"]["id"] != sent["id"] for item in items)
        for path in (
            f"/v1/documents/{sent['id']}",
            f"/v1/documents/{sent['id']}/content",
            f"/v1/deliveries/{delivery}/receipt",
        ):
            response = outsider.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
        forged = receipt_jws(outsider, delivery, sent["sha256"])
        response = outsider.post(f"/v1/deliveries/{delivery}/receipt", json={"signature": forged})
        assert response.status_code == 404
        assert outsider.post(f"/v1/documents/{sent['id']}/withdraw").status_code == 404


def test_receipt_must_match_delivery_bytes_and_signer(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-kjj"], "玉政办发〔2026〕20号"), sample_pdf).json()
    with (
        login_as(gateway, "yl-kjj", ["clerk"]) as clerk,
        login_as(gateway, "yl-kjj", ["clerk"]) as colleague,
    ):
        item = inbox_item(clerk, sent["id"])
        wrong_hash = receipt_jws(clerk, item["id"], "0" * 64)
        assert (
            clerk.post(
                f"/v1/deliveries/{item['id']}/receipt", json={"signature": wrong_hash}
            ).status_code
            == 401
        )
        by_other_key = receipt_jws(colleague, item["id"], sent["sha256"])
        assert (
            clerk.post(
                f"/v1/deliveries/{item['id']}/receipt", json={"signature": by_other_key}
            ).status_code
            == 401
        )
        reject = receipt_jws(
            clerk, item["id"], sent["sha256"], action="reject", reason="文号有误，请更正后重发"
        )
        answer = clerk.post(f"/v1/deliveries/{item['id']}/reject", json={"signature": reject})
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "rejected"
        again = receipt_jws(clerk, item["id"], sent["sha256"])
        late = clerk.post(f"/v1/deliveries/{item['id']}/receipt", json={"signature": again})
        assert late.status_code == 409
    view = seal_keeper.get(f"/v1/documents/{sent['id']}").json()
    assert view["deliveries"][0]["reason"] == "文号有误，请更正后重发"


def test_withdraw_before_receipt_and_resend(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-gxj"], "玉政办发〔2026〕21号"), sample_pdf).json()
    added = seal_keeper.post(
        f"/v1/documents/{sent['id']}/resend", json={"recipients": ["yl-gxj", "yl-gaj"]}
    )
    assert added.status_code == 200, added.text
    assert added.json()["added"] == ["yl-gaj"]
    with login_as(gateway, "yl-gaj", ["clerk"]) as clerk:
        assert inbox_item(clerk, sent["id"])["state"] == "pending"
        withdrawn = seal_keeper.post(f"/v1/documents/{sent['id']}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
        assert clerk.get(f"/v1/documents/{sent['id']}/content").status_code == 404
        items = clerk.get("/v1/inbox").json()["items"]
        assert all(item["document"]["id"] != sent["id"] for item in items)


def test_withdraw_and_resend_retried_with_one_key_answer_as_the_first_time(
    seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-lyj"], "玉政办发〔2026〕924号"), sample_pdf).json()
    resend_key = {"Idempotency-Key": uuid.uuid4().hex}
    path = f"/v1/documents/{sent['id']}"
    first = seal_keeper.post(f"{path}/resend", json={"recipients": ["yl-tjj"]}, headers=resend_key)
    again = seal_keeper.post(f"{path}/resend", json={"recipients": ["yl-tjj"]}, headers=resend_key)
    assert first.status_code == again.status_code == 200
    assert first.json()["added"] == again.json()["added"] == ["yl-tjj"]
    other = seal_keeper.post(f"{path}/resend", json={"recipients": ["yl-zjj"]}, headers=resend_key)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")

    withdraw_key = {"Idempotency-Key": uuid.uuid4().hex}
    first = seal_keeper.post(f"{path}/withdraw", headers=withdraw_key)
    again = seal_keeper.post(f"{path}/withdraw", headers=withdraw_key)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json() == again.json() == {"id": sent["id"], "status": "withdrawn"}
    without_key = seal_keeper.post(f"{path}/withdraw")
    assert without_key.status_code == 409, without_key.text


def test_same_idempotency_key_creates_one_document(seal_keeper: Session, sample_pdf: bytes) -> None:
    meta = meta_for(["yl-mzj"], "玉政办发〔2026〕22号")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = send(seal_keeper, meta, sample_pdf, headers=key)
    second = send(seal_keeper, meta, sample_pdf, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    changed = send(seal_keeper, {**meta, "title": "另一个标题"}, sample_pdf, headers=key)
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_conflict"
    duplicate = send(seal_keeper, meta, sample_pdf)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "doc_number_taken"


def test_long_poll_wakes_when_a_document_arrives(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    with login_as(gateway, "yl-sfj", ["system"]) as system:
        cursor = system.get("/v1/inbox").json()["next_cursor"]
        result: dict[str, Any] = {}

        def wait() -> None:
            started = time.monotonic()
            result["response"] = system.get(f"/v1/inbox?wait=30&cursor={cursor}")
            result["waited"] = time.monotonic() - started

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(1.0)
        sent = send(seal_keeper, meta_for(["yl-sfj"], "玉政办发〔2026〕23号"), sample_pdf).json()
        waiter.join(timeout=40)
        items = result["response"].json()["items"]
        assert [item["document"]["id"] for item in items] == [sent["id"]]
        assert 1.0 <= result["waited"] < 20


def test_range_requests(gateway: Gateway, seal_keeper: Session, sample_pdf: bytes) -> None:
    sent = send(seal_keeper, meta_for(["yl-rsj"], "玉政办发〔2026〕24号"), sample_pdf).json()
    path = f"/v1/documents/{sent['id']}/content"
    whole = seal_keeper.get(path).content
    head = seal_keeper.get(path, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206
    assert head.content == whole[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{len(whole)}"
    tail = seal_keeper.get(path, headers={"Range": "bytes=-10"})
    assert tail.content == whole[-10:]
    half = len(whole) // 2
    middle = seal_keeper.get(path, headers={"Range": f"bytes={half}-{len(whole) - 1}"})
    assert middle.content == whole[half:]
    beyond = seal_keeper.get(path, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416


def _stored_objects(gateway: Gateway) -> set[Path]:
    return {p for p in (gateway.data_dir / "objects").rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("meta_change", "pdf", "status", "code"),
    [
        ({"classification": "secret"}, None, 422, "classified_not_allowed"),
        ({"classification": "机密"}, None, 422, "classified_not_allowed"),
        ({"recipients": ["no-such-unit"]}, None, 422, "recipient_unknown"),
        ({"urgency": "whenever"}, None, 400, "invalid_request"),
        ({"title": "a\x00b"}, None, 400, "invalid_request"),
        ({"deadline": "2020-01-01T00:00:00Z"}, None, 400, "invalid_request"),
        ({}, b"hello, not a pdf", 415, "not_a_pdf"),
        ({}, b"%PDF-1.7\n1 0 obj <<", 422, "pdf_malformed"),
    ],
)
def test_refusals_store_nothing(
    gateway: Gateway,
    seal_keeper: Session,
    sample_pdf: bytes,
    meta_change: dict[str, object],
    pdf: bytes | None,
    status: int,
    code: str,
) -> None:
    before = _stored_objects(gateway)
    meta = {**meta_for(["yl-zrj"], f"玉政办发〔2026〕{uuid.uuid4().int % 10**6}号"), **meta_change}
    response = send(seal_keeper, meta, pdf if pdf is not None else sample_pdf)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert _stored_objects(gateway) == before


def test_file_before_meta_and_roles(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    files = [
        ("file", ("d.pdf", sample_pdf, "application/pdf")),
        ("meta", (None, json.dumps(meta_for(["yl-jyj"], "x-1")), "application/json")),
    ]
    response = seal_keeper.post("/v1/documents", files=files)
    assert response.status_code == 400
    assert "meta" in response.json()["detail"]
    with login_as(gateway, SENDER, ["clerk"]) as clerk:
        refused = send(clerk, meta_for(["yl-jyj"], "玉政办发〔2026〕99号"), sample_pdf)
        assert refused.status_code == 403
        assert refused.json()["code"] == "seal_requires_approval"


def test_revoked_seal_no_longer_seals(
    gateway: Gateway, admins: tuple[Session, Session], sample_pdf: bytes
) -> None:
    seal = issue_seal(admins, "yl-tjj")
    with login_as(gateway, "yl-tjj", ["seal_keeper"]) as keeper:
        assert send(keeper, meta_for(["yl"], "玉统发〔2026〕1号"), sample_pdf).status_code == 201
        first, second = admins
        asked = first.post(
            f"/v1/seals/{seal['id']}/revoke",
            json={"reason": "印章密钥疑似泄露", "reason_code": "key_compromise"},
        )
        assert asked.status_code == 201, asked.text
        assert first.post(f"/v1/seal-requests/{asked.json()['id']}/approve").status_code == 403
        done = second.post(f"/v1/seal-requests/{asked.json()['id']}/approve")
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "revoked"
        refused = send(keeper, meta_for(["yl"], "玉统发〔2026〕2号"), sample_pdf)
        assert refused.status_code == 409
        assert refused.json()["code"] == "seal_revoked"
        crl_der = keeper.get("/v1/pki/crl/seal-ca").content
        revoked = x509.load_der_x509_crl(crl_der)
        serial = x509.load_pem_x509_certificate(seal["certificate_pem"].encode()).serial_number  # type: ignore[attr-defined]
        assert revoked.get_revoked_certificate_by_serial_number(serial) is not None


def test_a_repeated_receipt_answers_as_the_first_time_and_keys_are_honoured(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes, tmp_path: Path
) -> None:
    """A client whose answer was lost simply sends the same receipt again; the gateway also
    finishes a countersignature it never stored (it stopped after the decision's commit)."""
    meta = meta_for(["yl-czj", "yl-zrj"], "玉政办发〔2026〕25号")
    answer = send(seal_keeper, meta, sample_pdf)
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    with (
        login_as(gateway, "yl-czj", ["clerk"]) as clerk,
        login_as(gateway, "yl-zrj", ["clerk"]) as other_clerk,
    ):
        item = inbox_item(clerk, sent["id"])
        path = f"/v1/deliveries/{item['id']}/receipt"
        receipt = receipt_jws(clerk, item["id"], sent["sha256"])
        key = {"Idempotency-Key": uuid.uuid4().hex}
        first = clerk.post(path, json={"signature": receipt}, headers=key)
        assert first.status_code == 200, first.text
        assert clerk.post(path, json={"signature": receipt}, headers=key).json() == first.json()
        assert clerk.post(path, json={"signature": receipt}).json() == first.json()
        # The same key with another receipt is a conflict; another receipt without a key
        # finds the delivery decided; the same receipt cannot turn into a rejection.
        another = receipt_jws(clerk, item["id"], sent["sha256"])
        conflict = clerk.post(path, json={"signature": another}, headers=key)
        assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
        late = clerk.post(path, json={"signature": another})
        assert late.status_code == 409 and late.json()["code"] == "conflict"
        turned = clerk.post(f"/v1/deliveries/{item['id']}/reject", json={"signature": receipt})
        assert turned.status_code == 409

        # The gateway stopped between the decision's commit and storing the countersignature.
        other = inbox_item(other_clerk, sent["id"])
        other_receipt = receipt_jws(other_clerk, other["id"], sent["sha256"])
        other_path = f"/v1/deliveries/{other['id']}/receipt"
        made = other_clerk.post(other_path, json={"signature": other_receipt})
        assert made.status_code == 200, made.text
        _forget_countersignature(gateway, other["id"])
        assert other_clerk.get(other_path).status_code == 200
        _forget_countersignature(gateway, other["id"])
        repeated = other_clerk.post(other_path, json={"signature": other_receipt})
        assert repeated.status_code == 200, repeated.text
        assert repeated.json()["audit_index"] == made.json()["audit_index"]
        claims = check_countersigned(
            gateway, repeated.json()["countersigned"], other_receipt, tmp_path
        )
        assert claims["received_at"] == _claims(made.json()["countersigned"])["received_at"]
        assert (
            other_clerk.get(other_path).json()["countersigned"]
            == (repeated.json()["countersigned"])
        )

    decided = [
        row
        for row in audit_details(gateway, "delivery.received")
        if row["delivery"] in (item["id"], other["id"])
    ]
    assert len(decided) == 2  # one event per decision, however often it was asked


def _claims(jws: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(plain_jws.get_unverified_claims(jws))
    return claims


def _forget_countersignature(gateway: Gateway, delivery: str) -> None:
    async def forget() -> None:
        connection = await connect(gateway.database_url)
        try:
            await connection.execute(
                "UPDATE deliveries SET countersigned = NULL WHERE id = $1::uuid", delivery
            )
        finally:
            await connection.close()

    asyncio.run(forget())


def audit_details(gateway: Gateway, event_type: str) -> list[dict[str, Any]]:
    """Details of *event_type* events, sequenced or still in the outbox."""

    async def read() -> list[dict[str, Any]]:
        connection = await connect(gateway.database_url)
        try:
            rows = await connection.fetch(
                "SELECT details FROM audit_outbox WHERE type = $1 UNION ALL"
                " SELECT convert_from(details, 'UTF8')::jsonb FROM audit_log WHERE type = $1",
                event_type,
            )
        finally:
            await connection.close()
        return [dict(row["details"]) for row in rows]

    return asyncio.run(read())


def test_withdraw_waits_for_a_receipt_in_flight_and_then_refuses(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    """撤回 racing 签收: the withdrawal must not overwrite a receipt that commits first."""
    answer = send(seal_keeper, meta_for(["yl-jtj"], "玉政办发〔2026〕26号"), sample_pdf)
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    with login_as(gateway, "yl-jtj", ["clerk"]) as clerk:
        delivery = inbox_item(clerk, sent["id"])["id"]

    async def race() -> httpx.Response:
        connection = await connect(gateway.database_url)
        try:
            receipt_in_flight = connection.transaction()
            await receipt_in_flight.start()
            await connection.execute(
                "UPDATE deliveries SET state = 'received', decided_at = now() WHERE id = $1::uuid",
                delivery,
            )
            withdraw = asyncio.create_task(
                asyncio.to_thread(seal_keeper.post, f"/v1/documents/{sent['id']}/withdraw")
            )
            await asyncio.sleep(1.0)  # time for the withdrawal to reach the delivery's lock
            assert not withdraw.done()
            await receipt_in_flight.commit()
            return await withdraw
        finally:
            await connection.close()

    withdrawn = asyncio.run(race())
    assert withdrawn.status_code == 409, withdrawn.text
    view = seal_keeper.get(f"/v1/documents/{sent['id']}").json()
    assert view["status"] == "dispatched"
    assert [d["state"] for d in view["deliveries"]] == ["received"]


def test_receipts_decided_before_migration_0011_are_found_again(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    """Migration 0011 finds the decision event of receipts made before it (from the log or
    the outbox), so a lost countersignature of theirs can still be finished."""
    answer = send(seal_keeper, meta_for(["yl-slj"], "玉政办发〔2026〕27号"), sample_pdf)
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    with login_as(gateway, "yl-slj", ["clerk"]) as clerk:
        delivery = inbox_item(clerk, sent["id"])["id"]
        receipt = receipt_jws(clerk, delivery, sent["sha256"])
        path = f"/v1/deliveries/{delivery}/receipt"
        made = clerk.post(path, json={"signature": receipt})
        assert made.status_code == 200, made.text
        migration = REPO / "storage" / "migrations" / "0011_delivery_decision_event.sql"
        backfill = migration.read_text().split("ALTER TABLE deliveries ADD COLUMN")[1]
        backfill = backfill.split(";", 1)[1]  # the statements after the ALTER

        async def as_before_0011() -> Any:
            connection = await connect(gateway.database_url)
            try:
                await connection.execute(
                    "UPDATE deliveries SET decision_event = NULL, countersigned = NULL"
                    " WHERE id = $1::uuid",
                    delivery,
                )
                assert clerk.get(path).status_code == 404  # no event known: nothing to finish
                await connection.execute(backfill)
                return await connection.fetchval(
                    "SELECT decision_event FROM deliveries WHERE id = $1::uuid", delivery
                )
            finally:
                await connection.close()

        assert asyncio.run(as_before_0011()) is not None
        again = clerk.get(path)
        assert again.status_code == 200, again.text
        claims = _claims(again.json()["countersigned"])
        assert claims["audit_index"] == made.json()["audit_index"]
        assert claims["action"] == "receive" and claims["receipt"] == receipt
