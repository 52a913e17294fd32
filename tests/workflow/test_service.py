"""The workflow service in process, on a real PostgreSQL and a real object store: what the
HTTPS tests cannot reach easily (two countersigners at the same moment, what is left in the
store after a refused or repeated upload, the audit trail of a chain, sealing after 签发)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.config import load_settings
from gateway.exchange.errors import (
    DocumentLocked,
    Hidden,
    NotFound,
    RangeNotSatisfiable,
    WrongDocumentState,
)
from gateway.exchange.meta import parse_meta
from gateway.exchange.service import Later, SentDocument
from gateway.pki.crls import CrlCache
from gateway.runtime import Runtime, open_runtime
from gateway.sealing.sealer import DepartmentSealer, SealSigners, issue_seal
from gateway.sealing.workers import Workers
from gateway.spool import spool_files
from gateway.workflow import rules
from gateway.workflow.service import (
    DraftRefused,
    NotTheDrafter,
    WorkflowService,
    check_workflow,
    record_submission,
)
from keys.jws import TYP_APPROVAL, InvalidSignatureError, sign_jws
from seals.pdfcheck import NotAPdf
from storage import idempotency
from storage.db import DbConnection, connect
from storage.objects import PutResult
from tests.conftest import gateway_database_env
from tests.passkeys.support import passkey_service
from tests.people import Person as Official
from tests.people import new_person
from tests.seals.seal_corpus import reportlab_pdf

SENDER, RECIPIENT, OTHER = "yl-bgs", "yl-jyj", "yl-gaj"
NUMBERS = itertools.count(700)
T = TypeVar("T")
PDF = reportlab_pdf(pages=1)


@dataclass
class World:
    runtime: Runtime
    service: WorkflowService
    admin_url: str

    async def official(self, roles: list[str], department: str = SENDER) -> Official:
        """An active official with an enrolled key, as the storage layer makes one."""
        async with self.runtime.pool.acquire() as connection:
            return await new_person(connection, department, roles)

    async def stored(self, data: bytes) -> PutResult:
        return await self.runtime.objects.put(chunks_of(data), max_bytes=len(data) + 1)

    async def submit(self, drafter: Official, chain: Chain) -> SentDocument:
        meta = parse_meta(
            {
                "title": "关于做好安全生产检查工作的通知",
                "doc_number": f"玉政办发〔2026〕{next(NUMBERS)}号",
                "urgency": "urgent",
                "classification": "internal",
                "recipients": [RECIPIENT],
                "cc": [OTHER],
                "workflow": chain.spec(),
            },
            now=datetime.now(UTC),
        )
        assert meta.workflow is not None
        draft = await self.stored(PDF)
        # The workflow's part of a send, as the exchange service runs it (its Drafting).
        async with self.runtime.pool.acquire() as connection, connection.transaction():
            await check_workflow(connection, meta.workflow, SENDER, drafter.id)
            return await record_submission(
                connection,
                principal=drafter.principal,
                meta=meta,
                draft=draft,
                now=datetime.now(UTC),
            )

    async def decide(
        self,
        official: Official,
        document_id: uuid.UUID,
        step: int | str,
        decision: str = "approve",
        *,
        draft_sha256: str | None = None,
    ) -> dict[str, Any]:
        sha = draft_sha256 or await self.draft_sha256(document_id)
        result = await self.service.approve(
            official.principal,
            document_id,
            later(approval(official, document_id, sha, step, decision)),
        )
        return result.as_json()

    async def draft_sha256(self, document_id: uuid.UUID) -> str:
        async with self.runtime.pool.acquire() as connection:
            sha: str = await connection.fetchval(
                "SELECT draft_sha256 FROM documents WHERE id = $1", document_id
            )
        return sha

    async def events(self, document_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        """The document's audit events in order (no sequencer runs here: all in the outbox)."""
        connection = await connect(self.admin_url)
        try:
            rows = await connection.fetch(
                "SELECT type, details FROM audit_outbox WHERE document = $1 ORDER BY id",
                str(document_id),
            )
        finally:
            await connection.close()
        return [(row["type"], dict(row["details"])) for row in rows]

    async def object_keys(self) -> set[str]:
        future = datetime.now(UTC) + timedelta(days=1)
        return {key async for key in self.runtime.objects.list_keys(future)}


@dataclass(frozen=True)
class Chain:
    """核稿 (any) → 会签 (all) → 签发."""

    drafter: Official
    reviewer: Official
    countersigners: tuple[Official, Official]
    signer: Official

    def spec(self) -> dict[str, Any]:
        return {
            "steps": [
                {"name": "核稿", "mode": "any", "assignees": [self.reviewer.id]},
                {"name": "会签", "mode": "all", "assignees": [o.id for o in self.countersigners]},
                {"name": "签发", "assignees": [self.signer.id]},
            ]
        }


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]


def approval(
    official: Official, document_id: uuid.UUID, sha256: str, step: int | str, decision: str
) -> str:
    claims = {
        "document": str(document_id),
        "draft_sha256": sha256,
        "step": step,
        "decision": decision,
        "opinion": "同意",
        "iat": int(time.time()),
        "jti": uuid.uuid4().hex,
    }
    return sign_jws(claims, official.key, typ=TYP_APPROVAL)


async def until_waiting(connection: DbConnection, count: int) -> None:
    """Until *count* statements wait for a lock (polled: PostgreSQL tells no one)."""
    for _ in range(1000):
        if await connection.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted") >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} statements are waiting for a lock")


def later(value: T) -> Later[T]:
    """A request part the service reads once it has decided who may act."""

    async def read() -> T:
        return value

    return read


def versions_key(document_id: uuid.UUID, key: str) -> idempotency.Key:
    return idempotency.Key("POST", f"/v1/documents/{document_id}/versions", key)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workflow-service")


@pytest.fixture
async def world(module_db_url: str, data_dir: Path) -> AsyncIterator[World]:
    settings = load_settings(
        {**gateway_database_env(module_db_url), "SEALHUB_DATA_DIR": str(data_dir)}
    )
    async with open_runtime(settings, demo=True) as runtime:
        workers = Workers(1)
        async with workers.running():
            sealer = DepartmentSealer(
                runtime.pool,
                runtime.pki,
                CrlCache(runtime.pki, runtime.pool),
                SealSigners(runtime.pki),
                workers=workers,
                max_document_bytes=settings.max_document_bytes,
            )
            service = WorkflowService(
                pool=runtime.pool,
                objects=runtime.objects,
                sealer=sealer,
                spool=functools.partial(spool_files, settings),
                clock=lambda: datetime.now(UTC),
                max_document_bytes=settings.max_document_bytes,
                sign_for_within=settings.supervision.sign_for_within(),
                passkeys=passkey_service(runtime.pool, runtime.master_key, settings.public_origin),
            )
            yield World(runtime, service, module_db_url)


@pytest.fixture
async def chain(world: World) -> Chain:
    return Chain(
        drafter=await world.official(["clerk"]),
        reviewer=await world.official(["clerk"]),
        countersigners=(await world.official(["leader"]), await world.official(["leader"])),
        signer=await world.official(["leader"]),
    )


async def test_two_countersigners_at_the_same_moment_complete_the_step_once(
    world: World, chain: Chain
) -> None:
    sent = await world.submit(chain.drafter, chain)
    assert (sent.status, sent.deliveries) == ("in_approval", 0)
    assert (await world.decide(chain.reviewer, sent.id, 0))["outcome"] == "step_completed"
    # Both decide at the same moment: their inserts wait on a table lock held here until
    # both are waiting. The document's row lock orders them, so the second sees the first
    # and exactly one of them completes 会签 (without it, both would only be "recorded").
    holder = await connect(world.admin_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE approvals IN EXCLUSIVE MODE")
            both = asyncio.gather(
                *(world.decide(leader, sent.id, "会签") for leader in chain.countersigners)
            )
            await until_waiting(holder, 2)
        answers = await both
    finally:
        await holder.close()
    assert sorted(answer["outcome"] for answer in answers) == ["recorded", "step_completed"]
    signed = await world.decide(chain.signer, sent.id, 2)
    assert (signed["outcome"], signed["status"]) == ("signed_off", "awaiting_seal")
    events = await world.events(sent.id)
    assert [kind for kind, _ in events] == [
        "document.created",
        "workflow.step_opened",
        "approval.approved",
        "workflow.step_completed",
        "workflow.step_opened",
        "approval.approved",
        "approval.approved",
        "workflow.step_completed",
        "workflow.step_opened",
        "approval.approved",
        "workflow.step_completed",
        "document.signed_off",
    ]
    assert [d["step"] for kind, d in events if kind == "workflow.step_opened"] == [0, 1, 2]
    # Signed off: nothing changes any more, not even by the signer; the file is not read.
    unread = later(chunks_of(b"never read"))
    with pytest.raises(DocumentLocked):
        await world.service.submit_version(chain.drafter.principal, sent.id, unread)
    with pytest.raises(DocumentLocked):
        await world.decide(chain.signer, sent.id, 2)


async def test_a_rejection_returns_the_draft_and_a_new_version_starts_over(
    world: World, chain: Chain
) -> None:
    sent = await world.submit(chain.drafter, chain)
    assert (await world.decide(chain.reviewer, sent.id, 0, "reject"))["status"] == "returned"
    with pytest.raises(WrongDocumentState):
        await world.decide(chain.countersigners[0], sent.id, 1)
    second = PDF + b"\n% revised\n"
    with pytest.raises(NotTheDrafter) as refused:
        await world.service.submit_version(
            chain.reviewer.principal, sent.id, later(chunks_of(second))
        )
    assert refused.value.reason == "not_the_drafter"

    revised = await world.service.submit_version(
        chain.drafter.principal, sent.id, later(chunks_of(second))
    )
    assert revised.as_json() == {
        "id": str(sent.id),
        "status": "in_approval",
        "version": 2,
        "draft_sha256": hashlib.sha256(second).hexdigest(),
    }
    # The reviewer's rejection was of version 1: a decision signed over it is refused now,
    # and the chain is open again at its first step.
    with pytest.raises(InvalidSignatureError):
        await world.decide(chain.reviewer, sent.id, 0, draft_sha256=sent.draft_sha256)
    with pytest.raises(rules.StepNotOpen):
        await world.decide(chain.countersigners[0], sent.id, 1)
    assert (await world.decide(chain.reviewer, sent.id, 0))["outcome"] == "step_completed"
    kinds = [kind for kind, _ in await world.events(sent.id)]
    assert kinds[2:] == [
        "approval.rejected",
        "document.returned",
        "document.revised",
        "workflow.step_opened",
        "approval.approved",
        "workflow.step_completed",
        "workflow.step_opened",
    ]


async def test_drafts_are_for_the_chain_and_refused_reads_record_nothing(
    world: World, chain: Chain
) -> None:
    sent = await world.submit(chain.drafter, chain)
    stranger = await world.official(["clerk"])
    keeper = await world.official(["seal_keeper"])
    elsewhere = await world.official(["clerk", "leader"], department=OTHER)
    read = world.service.draft

    for official in (stranger, keeper):  # a seal keeper only once the draft awaits its seal
        with pytest.raises(DraftRefused) as refused:
            await read(official.principal, sent.id, None, None)
        assert refused.value.reason == "not_an_approver"
    with pytest.raises(Hidden) as hidden:
        await read(elsewhere.principal, sent.id, None, None)
    assert (hidden.value.reason, hidden.value.details) == (
        "other_department",
        {"document": str(sent.id)},
    )
    with pytest.raises(Hidden) as hidden:
        await read(chain.drafter.principal, uuid.uuid4(), None, None)
    assert hidden.value.reason == "unknown_id"
    for version in ("2", "x"):
        with pytest.raises(NotFound):
            await read(chain.drafter.principal, sent.id, version, None)
    with pytest.raises(RangeNotSatisfiable):
        await read(chain.reviewer.principal, sent.id, None, f"bytes={len(PDF)}-")
    assert "draft.downloaded" not in {kind for kind, _ in await world.events(sent.id)}

    part = await read(chain.countersigners[1].principal, sent.id, "1", "bytes=5-19")
    assert (part.version, part.size, part.byte_range, part.length) == (1, len(PDF), (5, 20), 15)
    assert b"".join([chunk async for chunk in part.chunks]) == PDF[5:20]
    downloads = [d for kind, d in await world.events(sent.id) if kind == "draft.downloaded"]
    assert downloads == [{"version": 1, "draft_sha256": sent.draft_sha256}]


async def test_a_repeated_or_refused_version_leaves_no_object_behind(
    world: World, chain: Chain
) -> None:
    sent = await world.submit(chain.drafter, chain)
    key = versions_key(sent.id, "k1")
    second = PDF + b"\n% v2\n"
    before = await world.object_keys()

    async def submit(data: bytes, key: idempotency.Key | None) -> dict[str, Any]:
        revision = await world.service.submit_version(
            chain.drafter.principal, sent.id, later(chunks_of(data)), idempotency_key=key
        )
        return revision.as_json()

    first = await submit(second, key)
    assert await submit(second, key) == first  # the retry's upload is dropped again
    with pytest.raises(idempotency.IdempotencyConflict):
        await submit(PDF + b"\n% other\n", key)
    with pytest.raises(NotAPdf):
        await submit(b"not a pdf at all", None)
    with pytest.raises(idempotency.InvalidKey):  # checked before anything is stored
        await submit(second, versions_key(sent.id, "x" * 201))
    added = await world.object_keys() - before
    assert len(added) == 1
    async with world.runtime.pool.acquire() as connection:
        versions = await connection.fetch(
            "SELECT version, draft_object FROM document_versions WHERE document = $1"
            " ORDER BY version",
            sent.id,
        )
    assert [row["version"] for row in versions] == [1, 2]
    assert versions[1]["draft_object"] in added


async def test_sealing_after_sign_off_dispatches_to_the_workflow_recipients(
    world: World, chain: Chain
) -> None:
    keeper = await world.official(["seal_keeper"])
    now = datetime.now(UTC)
    async with world.runtime.pool.acquire() as connection:
        request_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO seal_requests (id, department, purpose, kind, requested_by,"
            " requested_at, status) VALUES ($1, $2, '公文专用章', 'issue', 'test', $3, 'approved')",
            request_id,
            SENDER,
            now,
        )
        await issue_seal(
            world.runtime.pki,
            connection,
            department=SENDER,
            purpose="公文专用章",
            request_id=request_id,
            now=now,
        )
    sent = await world.submit(chain.drafter, chain)
    key = idempotency.Key("POST", f"/v1/documents/{sent.id}/seal", "s1")
    before = await world.object_keys()
    with pytest.raises(WrongDocumentState):  # not before 签发, and nothing is sealed
        await world.service.seal(keeper.principal, sent.id, idempotency_key=key)
    assert await world.object_keys() == before

    await world.decide(chain.reviewer, sent.id, 0)
    for leader in chain.countersigners:
        await world.decide(leader, sent.id, 1)
    signed = await world.decide(chain.signer, sent.id, 2)
    sealed = await world.service.seal(keeper.principal, sent.id, idempotency_key=key)
    assert (sealed.status, sealed.deliveries) == ("dispatched", 2)
    again = await world.service.seal(keeper.principal, sent.id, idempotency_key=key)
    assert again == sealed  # answered from the first one: sealed once, stored once
    assert len(await world.object_keys() - before) == 1
    events = dict(await world.events(sent.id))
    assert events["seal.used"]["sign_off"] == [signed["id"]]
    assert events["seal.used"]["sha256"] == sealed.sha256
    async with world.runtime.pool.acquire() as connection:
        recipients = await connection.fetch(
            "SELECT recipient, copy FROM deliveries WHERE document = $1 ORDER BY copy", sent.id
        )
    assert [(row["recipient"], row["copy"]) for row in recipients] == [
        (RECIPIENT, False),
        (OTHER, True),
    ]
    with pytest.raises(WrongDocumentState):
        await world.service.seal(keeper.principal, sent.id)
