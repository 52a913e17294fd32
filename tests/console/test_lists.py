"""The console's lists in process, as the application builds its services (real PostgreSQL,
object store, seal workers): officials of a department, approvals waiting for me, the
department's documents by box, the inbox's search; and that no list reaches into another
department, whatever the caller names or types."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pyhanko.pdf_utils.reader import PdfFileReader

from gateway.app import create_app
from gateway.config import load_settings
from gateway.exchange.box_handlers import DOCUMENT_BOXES
from gateway.exchange.boxes import BoxEntry, BoxQuery, DocumentBoxService
from gateway.exchange.handlers import EXCHANGE
from gateway.exchange.meta import parse_meta
from gateway.exchange.service import ExchangeService, InboxQuery
from gateway.identity.errors import NotFound
from gateway.identity.official_handlers import OFFICIALS
from gateway.identity.service import OfficialQuery, OfficialsService
from gateway.paging import Page
from gateway.runtime import Runtime, open_runtime
from gateway.sealing.handlers import SEALS
from gateway.workflow.handlers import WORKFLOW
from gateway.workflow.service import WorkflowService
from keys.jws import TYP_APPROVAL, sign_jws
from storage import documents
from storage.identity.officials import ListedOfficial
from storage.workflow import WaitingStep
from tests.conftest import gateway_database_env
from tests.people import Person, new_person
from tests.seals.seal_corpus import reportlab_pdf

pytestmark = pytest.mark.asyncio(loop_scope="module")

A, B = "yl-bgs", "yl-fgw"


@dataclass
class World:
    runtime: Runtime
    officials: OfficialsService
    workflow: WorkflowService
    exchange: ExchangeService
    boxes: DocumentBoxService
    seal_id: str

    async def person(
        self, department: str, roles: list[str], *, name: str = "官员", key: bool = True
    ) -> Person:
        async with self.runtime.pool.acquire() as connection:
            return await new_person(
                connection,
                department,
                roles,
                name=name,
                with_key=key,
                token_lifetime=timedelta(minutes=15),
            )

    async def send(
        self,
        sender: Person,
        *,
        title: str = "关于做好安全生产检查工作的通知",
        recipients: tuple[str, ...] = (B,),
        workflow: dict[str, Any] | None = None,
        pages: int = 1,
        deadline: str | None = None,
    ) -> uuid.UUID:
        raw: dict[str, Any] = {
            "title": title,
            "doc_number": f"玉政办发〔2026〕{uuid.uuid4().int % 10**8}号",
            "urgency": "urgent",
            "classification": "internal",
            "recipients": list(recipients),
        }
        if workflow is not None:
            raw["workflow"] = workflow
        if deadline is not None:
            raw["deadline"] = deadline
        meta = parse_meta(raw, now=datetime.now(UTC))
        sent = await self.exchange.send(sender.principal, meta, _file(reportlab_pdf(pages)))
        return sent.id

    async def decide(self, person: Person, document: uuid.UUID, step: int, decision: str) -> None:
        async with self.runtime.pool.acquire() as connection:
            sha = await documents.get_document(connection, document)
        claims = {
            "document": str(document),
            "draft_sha256": sha.draft_sha256,
            "step": step,
            "decision": decision,
            "opinion": "同意" if decision == "approve" else "请修改",
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        }
        jws = sign_jws(claims, person.key, typ=TYP_APPROVAL)
        await self.workflow.approve(person.principal, document, _later(jws))

    async def officials_of(
        self, caller: Person, department: str | None = None, text: str | None = None
    ) -> list[ListedOfficial]:
        """Every page, following the cursor (pages of two, to cross page boundaries)."""
        found: list[ListedOfficial] = []
        after: tuple[str, str] | None = None
        while True:
            page: Page[ListedOfficial] = await self.officials.list_officials(
                caller.caller, OfficialQuery(department, text), after=after, limit=2
            )
            found += page.items
            if page.last is None:
                return found
            after = (page.last.official.name, page.last.official.id)

    async def waiting(self, person: Person) -> list[WaitingStep]:
        found: list[WaitingStep] = []
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            page = await self.workflow.waiting(person.principal, after=after, limit=1)
            found += page.items
            if page.last is None:
                return found
            after = (page.last.created_at, page.last.document)

    async def box(self, person: Person, box: str, text: str | None = None) -> list[BoxEntry]:
        found: list[BoxEntry] = []
        before: tuple[datetime, uuid.UUID] | None = None
        while True:
            page = await self.boxes.documents(person.principal, BoxQuery(box, text, before, 2))
            found += page.items
            if page.last is None:
                return found
            before = (page.last.document.created_at, page.last.document.id)

    async def hidden_404s(self, official: str) -> int:
        async with self.runtime.pool.acquire() as connection:
            count: int = await connection.fetchval(
                "SELECT count(*) FROM audit_outbox WHERE type = 'access.denied'"
                " AND actor_official = $1",
                official,
            )
            count += await connection.fetchval(
                "SELECT coalesce(sum(count), 0) FROM denied_access_counts WHERE official = $1",
                official,
            )
        return count


def _later(value: Any) -> Callable[[], Awaitable[Any]]:
    async def read() -> Any:
        return value

    return read


def _file(data: bytes) -> Callable[[], Awaitable[AsyncIterable[bytes]]]:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return _later(chunks())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("console-lists")
    settings = load_settings(
        {**gateway_database_env(module_db_url), "SEALHUB_DATA_DIR": str(data_dir)}
    )
    async with open_runtime(settings, demo=True) as runtime:
        app = create_app(runtime)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            built = World(
                runtime, app[OFFICIALS], app[WORKFLOW], app[EXCHANGE], app[DOCUMENT_BOXES], ""
            )
            first = await built.person("yl", ["admin"])
            second = await built.person("yl", ["admin"])
            for department in (A, B, "yl-jyj"):
                asked = await app[SEALS].request_seal(
                    first.principal, department, "公文专用章", datetime.now(UTC)
                )
                seal = await app[SEALS].approve(second.principal, asked.id, datetime.now(UTC))
                if department == A:
                    built.seal_id = str(seal.seal.id)
            yield built
        finally:
            await runner.cleanup()


# --- officials ------------------------------------------------------------------------------


async def test_a_department_lists_its_own_officials_with_their_keys(world: World) -> None:
    clerk = await world.person(A, ["clerk"], name="甲科员")
    keyless = await world.person(A, ["leader"], name="甲无钥领导", key=False)
    stranger = await world.person(B, ["clerk"], name="乙科员")
    listed = {item.official.id: item for item in await world.officials_of(clerk)}
    assert clerk.id in listed and keyless.id in listed
    assert stranger.id not in listed
    assert listed[clerk.id].has_key and not listed[keyless.id].has_key
    assert {item.official.department for item in listed.values()} == {A}
    names = [item.official.name for item in await world.officials_of(clerk)]
    assert names == sorted(names)  # one order across pages: (name, id)


@pytest.mark.parametrize("roles", [["clerk"], ["dept_admin"], ["leader", "seal_keeper"]])
async def test_another_departments_officials_are_not_found_for_its_own_staff(
    world: World, roles: list[str]
) -> None:
    caller = await world.person(A, roles)
    await world.person(B, ["clerk"], name="乙办事员")
    before = await world.hidden_404s(caller.id)
    for department in (B, "yl-nope"):
        with pytest.raises(NotFound):
            await world.officials_of(caller, department)
    # Both refusals counted as access.denied (aggregated per minute: entry or counter).
    assert await world.hidden_404s(caller.id) >= before + 2


@pytest.mark.parametrize("role", ["admin", "inspector"])
async def test_admins_and_inspectors_list_any_department(world: World, role: str) -> None:
    platform = await world.person("yl", [role])
    target = await world.person(B, ["clerk"], name="乙被查者")
    listed = await world.officials_of(platform, B)
    assert target.id in {item.official.id for item in listed}
    assert {item.official.department for item in listed} == {B}
    with pytest.raises(NotFound):
        await world.officials_of(platform, "yl-nope")


async def test_search_text_is_literal_never_a_pattern(world: World) -> None:
    caller = await world.person("yl-kjj", ["clerk"], name="查询者")
    percent = await world.person("yl-kjj", ["clerk"], name="完成100%的人")
    underscore = await world.person("yl-kjj", ["clerk"], name="a_b")
    await world.person("yl-kjj", ["clerk"], name="axb")
    backslash = await world.person("yl-kjj", ["clerk"], name="反\\斜杠")

    async def found(text: str) -> set[str]:
        return {item.official.id for item in await world.officials_of(caller, text=text)}

    assert await found("%") == {percent.id}
    assert await found("_") == {underscore.id}
    assert await found("A_B") == {underscore.id}  # case does not matter
    assert await found("\\") == {backslash.id}
    assert await found("%'; --") == set()
    assert await found(caller.id[:8]) == {caller.id}  # the id too
    # Nothing of another department however broad the text.
    assert all(
        item.official.department == "yl-kjj" for item in await world.officials_of(caller, text="")
    )


# --- approvals waiting for me ----------------------------------------------------------------


async def test_approvals_wait_for_exactly_the_open_steps_assignees(world: World) -> None:
    drafter = await world.person(A, ["clerk"], name="拟稿人")
    reviewer = await world.person(A, ["clerk"], name="核稿人")
    first = await world.person(A, ["clerk"], name="会签一")
    second = await world.person(A, ["dept_admin"], name="会签二")
    signer = await world.person(A, ["leader"], name="签发人")
    outsider = await world.person(B, ["leader"], name="乙领导")
    chain = {
        "steps": [
            {"name": "核稿", "mode": "any", "assignees": [reviewer.id]},
            {"name": "会签", "mode": "all", "assignees": [first.id, second.id]},
            {"name": "签发", "assignees": [signer.id]},
        ]
    }
    document = await world.send(drafter, workflow=chain, pages=2)
    everyone = (drafter, reviewer, first, second, signer, outsider)

    async def waiting_for() -> dict[str, list[WaitingStep]]:
        return {
            p.id: [w for w in await world.waiting(p) if w.document == document] for p in everyone
        }

    async def who() -> set[str]:
        return {official for official, items in (await waiting_for()).items() if items}

    assert await who() == {reviewer.id}
    (item,) = (await waiting_for())[reviewer.id]
    assert (item.step, item.step_name, item.mode, item.version) == (0, "核稿", "any", 1)
    assert (item.drafter, item.drafter_name) == (drafter.id, "拟稿人")
    async with world.runtime.pool.acquire() as connection:
        row = await documents.get_document(connection, document)
    assert item.draft_sha256 == row.draft_sha256
    await world.decide(reviewer, document, 0, "approve")
    assert await who() == {first.id, second.id}
    await world.decide(first, document, 1, "approve")
    assert await who() == {second.id}  # 会签: the one still to sign
    await world.decide(second, document, 1, "approve")
    assert await who() == {signer.id}
    assert (await waiting_for())[signer.id][0].step_name == "签发"
    await world.decide(signer, document, 2, "approve")
    assert await who() == set()

    # A rejection returns the draft: nothing waits for anyone any more.
    returned = await world.send(drafter, workflow=chain)
    assert document != returned
    await world.decide(reviewer, returned, 0, "reject")
    assert all(w.document != returned for w in await world.waiting(reviewer))


# --- documents by box --------------------------------------------------------------------------


async def test_boxes_show_the_department_its_own_documents_only(world: World) -> None:
    keeper = await world.person(A, ["seal_keeper", "clerk"], name="甲用印员")
    clerk = await world.person(A, ["clerk"], name="甲拟稿员")
    leader = await world.person(A, ["leader"], name="甲领导")
    b_keeper = await world.person(B, ["seal_keeper", "clerk"], name="乙用印员")
    sent = await world.send(keeper, title="甲直接发文", recipients=(B, "yl-jyj"))
    draft = await world.send(
        clerk,
        title="甲草稿",
        workflow={"steps": [{"name": "签发", "assignees": [leader.id]}]},
        recipients=(B,),
    )
    theirs = await world.send(b_keeper, title="乙发给甲", recipients=(A,))

    by_box = {box: await world.box(clerk, box) for box in ("sent", "awaiting_seal", "drafts")}
    ids = {box: {entry.document.id for entry in entries} for box, entries in by_box.items()}
    assert sent in ids["sent"] and draft in ids["drafts"]
    assert theirs not in set().union(*ids.values())  # received, not sent by A
    assert sent not in ids["drafts"] | ids["awaiting_seal"]
    (entry,) = [e for e in by_box["sent"] if e.document.id == sent]
    row = entry.document
    assert row.recipients == sorted([B, "yl-jyj"]) and row.cc == []
    assert (row.total, row.pending, row.received, row.rejected) == (2, 2, 0, 0)
    assert row.sealed_sha256 is not None and entry.seal is None
    assert (row.created_by, row.drafter_name) == (keeper.id, "甲用印员")
    (drafted,) = [e for e in by_box["drafts"] if e.document.id == draft]
    assert drafted.document.recipients == [B] and drafted.document.total == 0
    assert drafted.document.sealed_sha256 is None
    # B's lists hold B's document and none of A's.
    b_sent = {e.document.id for e in await world.box(b_keeper, "sent")}
    assert theirs in b_sent and sent not in b_sent
    for box in ("sent", "awaiting_seal", "drafts"):
        for item in await world.box(b_keeper, box):
            async with world.runtime.pool.acquire() as connection:
                assert (await documents.get_document(connection, item.document.id)).sender == B


async def test_newest_first_and_text_is_literal(world: World) -> None:
    keeper = await world.person("yl-jyj", ["seal_keeper", "clerk"], name="教育局用印员")
    plain = await world.send(keeper, title="关于完成情况的通报", recipients=(B,))
    percent = await world.send(keeper, title="完成率100%的通报", recipients=(B,))
    underscore = await world.send(keeper, title="附件_一", recipients=(B,))
    listed = [e.document.id for e in await world.box(keeper, "sent")]
    assert listed[:3] == [underscore, percent, plain]
    assert [e.document.id for e in await world.box(keeper, "sent", "%")] == [percent]
    assert [e.document.id for e in await world.box(keeper, "sent", "_")] == [underscore]
    assert {e.document.id for e in await world.box(keeper, "sent", "通报")} == {plain, percent}
    async with world.runtime.pool.acquire() as connection:
        number = (await documents.get_document(connection, plain)).doc_number
    assert [e.document.id for e in await world.box(keeper, "sent", number)] == [plain]


async def test_awaiting_seal_says_where_the_seal_really_goes(world: World) -> None:
    clerk = await world.person(A, ["clerk"], name="待用印拟稿")
    leader = await world.person(A, ["leader"], name="待用印签发")
    keeper = await world.person(A, ["seal_keeper"], name="待用印用印员")
    chain = {"steps": [{"name": "签发", "assignees": [leader.id]}]}
    document = await world.send(clerk, title="待用印文件", workflow=chain, pages=3)
    await world.decide(leader, document, 0, "approve")
    (entry,) = [e for e in await world.box(keeper, "awaiting_seal") if e.document.id == document]
    planned = entry.seal
    assert planned is not None
    assert str(planned.seal_id) == world.seal_id
    position = planned.position
    assert position.page == 2  # the last page, 0-based
    assert position.page_size == pytest.approx((595.2756, 841.8898), abs=0.01)  # A4
    # Asked again, the same answer (remembered by the draft's hash).
    again = [e for e in await world.box(keeper, "awaiting_seal") if e.document.id == document]
    assert again[0].seal == planned

    await world.workflow.seal(keeper.principal, document)
    async with world.runtime.pool.acquire() as connection:
        sealed = await documents.get_document(connection, document)
    assert sealed.sealed_object is not None
    data = b"".join([chunk async for chunk in world.runtime.objects.open(sealed.sealed_object)])
    reader = PdfFileReader(io.BytesIO(data))
    widgets = [
        annotation.get_object()
        for page_number in range(len(reader.root["/Pages"]["/Kids"]))
        for annotation in reader.root["/Pages"]["/Kids"][page_number]
        .get_object()
        .get("/Annots", [])
        if annotation.get_object().get("/FT") == "/Sig"
    ]
    (widget,) = widgets
    rect = tuple(float(value) for value in widget["/Rect"])
    assert rect == pytest.approx(position.box)
    page_of_widget = [
        number
        for number, kid in enumerate(reader.root["/Pages"]["/Kids"])
        if any(a.get_object() is widget for a in kid.get_object().get("/Annots", []))
    ]
    assert page_of_widget == [position.page]
    assert all(e.document.id != document for e in await world.box(keeper, "awaiting_seal"))


async def test_no_active_seal_no_seal_preview(world: World) -> None:
    clerk = await world.person("yl-gaj", ["clerk"], name="公安拟稿")
    leader = await world.person("yl-gaj", ["leader"], name="公安签发")
    chain = {"steps": [{"name": "签发", "assignees": [leader.id]}]}
    document = await world.send(clerk, workflow=chain)
    await world.decide(leader, document, 0, "approve")
    (entry,) = [e for e in await world.box(clerk, "awaiting_seal") if e.document.id == document]
    assert entry.seal is None


# --- the inbox's search ----------------------------------------------------------------------


async def test_inbox_search_states_deadline_and_classification(world: World) -> None:
    keeper = await world.person(A, ["seal_keeper", "clerk"], name="甲发送者")
    reader = await world.person("yl-kjj", ["clerk"], name="科技局收文员")
    deadline = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    wanted = await world.send(
        keeper,
        title="关于50%_进度的通知",
        recipients=("yl-kjj",),
        deadline=deadline.isoformat().replace("+00:00", "Z"),
    )
    other = await world.send(keeper, title="关于会议的通知", recipients=("yl-kjj",))

    async def inbox(states: tuple[str, ...] | None, text: str | None) -> list[uuid.UUID]:
        page = await world.exchange.inbox(reader.principal, InboxQuery(states, 0, 100, text=text))
        return [item.document_id for item in page.items]

    assert await inbox(None, None) == [wanted, other]
    assert await inbox(None, "%_") == [wanted]
    assert await inbox(None, "_进") == [wanted]
    assert await inbox(None, "100%") == []
    assert await inbox(("pending",), "会议") == [other]
    assert await inbox(("received", "rejected"), None) == []
    assert await inbox(("received", "pending"), None) == [wanted, other]
    page = await world.exchange.inbox(reader.principal, InboxQuery(None, 0, 100))
    first = page.items[0]
    assert first.deadline == deadline and first.classification == "internal"
    assert page.items[1].deadline is None
