"""One world of real objects for the security suites: department A sends and receives,
B is its correspondent, C is a stranger; every caller kind is logged in once per module."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keys.jws import TYP_RECEIPT, sign_jws
from tests.conftest import (
    Gateway,
    Session,
    create_official_in_db,
    login_as,
    new_session,
)
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.identity_support import admins, gaj_admin, jyj_admin  # noqa: F401 (fixtures)
from tests.seals.seal_corpus import reportlab_pdf

DEPT_A = "yl-bgs"
DEPT_B = "yl-fgw"
DEPT_C = "yl-kjj"
PLATFORM = "yl"
DEPARTMENT_ROLES = ("dept_admin", "clerk", "leader", "seal_keeper", "system")
CALLERS = ("anonymous", *DEPARTMENT_ROLES, "foreign", "admin", "inspector")


def doc_number() -> str:
    return f"玉政办发〔2026〕{uuid.uuid4().int % 10**8}号"


def receipt_jws(session: Session, delivery: str, sha256: str, action: str = "receive") -> str:
    return sign_jws(
        {
            "delivery": delivery,
            "sha256": sha256,
            "action": action,
            "reason": "",
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        session.key,
        typ=TYP_RECEIPT,
    )


def stored_objects(gateway: Gateway) -> set[Path]:
    return {p for p in (gateway.data_dir / "objects").rglob("*") if p.is_file()}


def count_rows(gateway: Gateway, sql: str) -> int:
    """A count straight from PostgreSQL, independent of what the API chooses to show."""
    from storage.db import connect

    async def count() -> int:
        connection = await connect(gateway.database_url)
        try:
            return int(await connection.fetchval(sql))
        finally:
            await connection.close()

    return asyncio.run(count())


def wait_for_checkpoint(gateway: Gateway, *, at_least: int, timeout: float = 30) -> None:
    """The sequencer signs checkpoints every few seconds; proofs need one that exists."""
    deadline = time.monotonic() + timeout
    with gateway.client() as client:
        while time.monotonic() < deadline:
            answer = client.get("/v1/audit/checkpoint")
            if answer.status_code == 200 and answer.json()["tree_size"] >= at_least:
                return
            time.sleep(0.5)
    raise AssertionError(f"no checkpoint of {at_least} entries within {timeout} s")


@dataclass
class World:
    """Real objects of department A and a session for every caller kind."""

    gateway: Gateway
    sessions: dict[str, Session]
    second_admin: Session
    sender_b: Session
    pdf: bytes
    params: dict[str, dict[str, str]] = field(default_factory=dict)

    def send_from_a(self) -> dict[str, str]:
        sent = send(self.sessions["seal_keeper"], meta_for([DEPT_B], doc_number()), self.pdf)
        assert sent.status_code == 201, sent.text
        return {"id": sent.json()["id"]}

    def delivery_to_a(self) -> tuple[str, str]:
        """(delivery id, sealed sha256) of a fresh document B sent to A."""
        sent = send(self.sender_b, meta_for([DEPT_A], doc_number()), self.pdf)
        assert sent.status_code == 201, sent.text
        document = self.sender_b.get(f"/v1/documents/{sent.json()['id']}").json()
        (delivery,) = [d for d in document["deliveries"] if d["recipient"] == DEPT_A]
        return delivery["id"], document["sha256"]

    def official_of_a(self, *, enrolled: bool = False) -> dict[str, str]:
        official, code = create_official_in_db(self.gateway.database_url, DEPT_A, ["clerk"])
        params = {"id": official}
        if enrolled:
            with new_session(self.gateway, official) as session:
                answer = session.enroll(code)
                assert answer.status_code == 201, answer.text
                params["kid"] = session.kid
        return params

    def seal_request_for_a(self) -> dict[str, str]:
        """A pending issuance request made by the second admin (so ``admin`` may approve)."""
        made = self.second_admin.post(
            f"/v1/departments/{DEPT_A}/seal-requests", json={"purpose": "公文专用章"}
        )
        assert made.status_code == 201, made.text
        return {"id": made.json()["id"]}


def build_world(gateway: Gateway) -> World:
    admin = login_as(gateway, PLATFORM, ["admin"], name="管理员甲")
    second_admin = login_as(gateway, PLATFORM, ["admin"], name="管理员乙")
    seal_a = issue_seal((admin, second_admin), DEPT_A)
    issue_seal((admin, second_admin), DEPT_B)
    sessions: dict[str, Session] = {
        role: login_as(gateway, DEPT_A, [role], name=f"甲单位{role}") for role in DEPARTMENT_ROLES
    }
    sessions["foreign"] = login_as(gateway, DEPT_C, list(DEPARTMENT_ROLES), name="外单位")
    sessions["admin"] = admin
    sessions["inspector"] = login_as(gateway, PLATFORM, ["inspector"], name="监察员")
    sender_b = login_as(gateway, DEPT_B, ["seal_keeper", "clerk"], name="乙单位用印员")
    world = World(gateway, sessions, second_admin, sender_b, reportlab_pdf(pages=1))

    pending, _ = world.delivery_to_a()
    signed, sha256 = world.delivery_to_a()
    clerk = sessions["clerk"]
    answer = clerk.post(
        f"/v1/deliveries/{signed}/receipt", json={"signature": receipt_jws(clerk, signed, sha256)}
    )
    assert answer.status_code == 200, answer.text
    wait_for_checkpoint(gateway, at_least=2)
    groups = clerk.get("/v1/groups").json()["items"]
    entries = clerk.get(f"/v1/audit/entries?department={DEPT_A}&limit=1").json()["items"]
    with gateway.client() as client:
        asset_base = re.search(r"/console/assets/([0-9a-f]{16})/", client.get("/console/").text)
    assert asset_base is not None
    world.params.update(
        {
            "none": {},
            "document": world.send_from_a(),
            "pending_delivery": {"id": pending},
            "signed_delivery": {"id": signed},
            "department": {"code": DEPT_A},
            "group": {"code": groups[0]["code"]},
            "seal": {"id": str(seal_a["id"])},
            "official": world.official_of_a(enrolled=True),
            "official_passkey": {**world.official_of_a(), "passkey": str(uuid.uuid4())},
            "audit_entry": {"index": str(entries[0]["index"])},
            "crl": {"ca": "seal-ca"},
            "console_asset": {"version": asset_base.group(1), "path": "index.html"},
            # Ids of nothing: enough to test who reaches the lookup (then 404).
            "unknown_id": {"id": str(uuid.uuid4())},
            "unknown_in_department": {"code": DEPT_A, "id": str(uuid.uuid4())},
        }
    )
    return world


@pytest.fixture(scope="module")
def world(gateway: Gateway) -> Iterator[World]:
    built = build_world(gateway)
    try:
        yield built
    finally:
        for session in (*built.sessions.values(), built.second_admin, built.sender_b):
            session.close()
