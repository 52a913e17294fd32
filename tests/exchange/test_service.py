"""ExchangeService in process, as the application builds it (real PostgreSQL, object store,
seal workers and audit sequencer): the rules of a unit of work, without a TLS gateway.

The HTTPS tests prove the contract; these look at what a unit of work leaves behind
(objects, rows, audit events) and at the order of its refusals.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app import create_app
from gateway.config import load_settings
from gateway.exchange.errors import Hidden, RoleMissing
from gateway.exchange.handlers import EXCHANGE
from gateway.exchange.meta import DocumentMeta, parse_meta
from gateway.exchange.service import (
    DeliveryArrived,
    ExchangeService,
    InboxQuery,
    KeepAlive,
    ResendRequest,
    StreamEnded,
)
from gateway.identity import service as officials
from gateway.identity.auth import Principal
from gateway.runtime import Runtime, open_runtime
from gateway.sealing.handlers import SEALS
from keys.jws import TYP_RECEIPT, jwk_thumbprint, public_jwk, sign_jws
from storage import directory, documents, idempotency
from storage.audit_outbox import OutboxSink
from tests.conftest import gateway_database_env
from tests.exchange.conftest import SENDER, meta_for
from tests.seals.seal_corpus import reportlab_pdf

pytestmark = pytest.mark.asyncio(loop_scope="module")

RECIPIENT, OTHER, THIRD = "yl-jyj", "yl-gaj", "yl-kjj"
T = TypeVar("T")


@dataclass(frozen=True)
class Official:
    principal: Principal
    key: ec.EllipticCurvePrivateKey


@dataclass
class World:
    runtime: Runtime
    service: ExchangeService
    objects_dir: Path
    keeper: Official  # seal keeper of SENDER
    sender_clerk: Official
    sender_leader: Official  # in SENDER, but may not follow a document up
    recipient: Official  # clerk of RECIPIENT
    other: Official  # clerk of OTHER, which no document here is sent to at first
    pdf: bytes


async def _official(runtime: Runtime, department: str, roles: list[str]) -> Official:
    """An official with an enrolled key (the key row as enrolment would leave it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    async with runtime.pool.acquire() as connection:
        created = await officials.create_official(
            connection,
            name=f"{department} {'/'.join(roles)}",
            department=department,
            roles=roles,
            now=now,
            audit=OutboxSink(),
            actor=None,
        )
        kid = jwk_thumbprint(key.public_key())
        await connection.execute(
            "INSERT INTO official_keys (kid, official_id, public_jwk, created_at)"
            " VALUES ($1, $2, $3, $4)",
            kid,
            created.official.id,
            public_jwk(key.public_key()),
            now,
        )
    principal = Principal(
        created.official.id,
        created.official.name,
        department,
        frozenset(created.official.roles),
        kid,
        token_expires_at=now + timedelta(minutes=15),
    )
    return Official(principal, key)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exchange-service")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_db_url: str, data_dir: Path) -> AsyncIterator[World]:
    """The application as ``sealhub serve`` builds it, started without a listening socket:
    the services, seal workers, audit sequencer and inbox listener are the real ones."""
    settings = load_settings(
        {**gateway_database_env(module_db_url), "SEALHUB_DATA_DIR": str(data_dir)}
    )
    async with open_runtime(settings, demo=True) as runtime:
        app = create_app(runtime)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            first = await _official(runtime, "yl", ["admin"])
            second = await _official(runtime, "yl", ["admin"])
            asked = await app[SEALS].request_seal(
                first.principal, SENDER, "公文专用章", datetime.now(UTC)
            )
            await app[SEALS].approve(second.principal, asked.id, datetime.now(UTC))
            yield World(
                runtime,
                app[EXCHANGE],
                data_dir / "objects",
                keeper=await _official(runtime, SENDER, ["seal_keeper"]),
                sender_clerk=await _official(runtime, SENDER, ["clerk"]),
                sender_leader=await _official(runtime, SENDER, ["leader"]),
                recipient=await _official(runtime, RECIPIENT, ["clerk"]),
                other=await _official(runtime, OTHER, ["clerk"]),
                pdf=reportlab_pdf(pages=1),
            )
        finally:
            await runner.cleanup()


def _doc_number() -> str:
    return f"玉办发〔2026〕{uuid.uuid4().int % 10**8}号"


def _meta(recipients: list[str], doc_number: str | None = None) -> DocumentMeta:
    return parse_meta(meta_for(recipients, doc_number or _doc_number()), now=datetime.now(UTC))


def _given(value: T) -> Callable[[], Awaitable[T]]:
    async def later() -> T:
        return value

    return later


def _never() -> Callable[[], Awaitable[Any]]:
    """A request part that must not be read: the refusal comes first."""

    async def later() -> Any:
        raise AssertionError("the service read a part of the request it had refused")

    return later


def _file(data: bytes) -> Callable[[], Awaitable[AsyncIterable[bytes]]]:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return _given(chunks())


def _stored(world: World) -> set[Path]:
    return {path for path in world.objects_dir.rglob("*") if path.is_file()}


def _receipt(official: Official, delivery: uuid.UUID, sha256: str, action: str) -> str:
    return sign_jws(
        {
            "delivery": str(delivery),
            "sha256": sha256,
            "action": action,
            "reason": "",
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        official.key,
        typ=TYP_RECEIPT,
    )


async def _delivery_to(world: World, document_id: uuid.UUID, department: str) -> uuid.UUID:
    async with world.runtime.pool.acquire() as connection:
        delivery = await documents.recipient_delivery(connection, document_id, department)
    assert delivery is not None
    delivery_id: uuid.UUID = delivery.id
    return delivery_id


async def _count(world: World, sql: str, *args: object) -> int:
    async with world.runtime.pool.acquire() as connection:
        return int(await connection.fetchval(sql, *args))


async def test_refused_recipients_read_no_file_and_store_nothing(world: World) -> None:
    before = _stored(world)
    with pytest.raises(directory.UnknownRecipient):
        await world.service.send(world.keeper.principal, _meta(["yl-no-such-unit"]), _never())
    with pytest.raises(Exception, match="no department other than the sender"):
        await world.service.send(world.keeper.principal, _meta([SENDER]), _never())
    assert _stored(world) == before


async def test_a_send_that_cannot_commit_takes_its_objects_with_it(world: World) -> None:
    number = _doc_number()
    sent = await world.service.send(
        world.keeper.principal, _meta([RECIPIENT], number), _file(world.pdf)
    )
    assert sent.status == "dispatched" and sent.deliveries == 1
    after_first = _stored(world)
    # Sealed and stored again, then refused by the database: the draft and the sealed PDF
    # of the second send are deleted at once, not left to the sweeper.
    with pytest.raises(documents.DuplicateDocNumber):
        await world.service.send(
            world.keeper.principal, _meta([RECIPIENT], number), _file(world.pdf)
        )
    assert _stored(world) == after_first
    assert await _count(world, "SELECT count(*) FROM documents WHERE doc_number = $1", number) == 1


async def test_a_repeated_send_answers_from_its_first_run_and_keeps_no_copy(world: World) -> None:
    key = idempotency.Key("POST", "/v1/documents", uuid.uuid4().hex)
    meta = _meta([RECIPIENT, OTHER])
    first = await world.service.send(
        world.keeper.principal, meta, _file(world.pdf), idempotency_key=key
    )
    stored = _stored(world)
    again = await world.service.send(
        world.keeper.principal, meta, _file(world.pdf), idempotency_key=key
    )
    assert again == first
    assert _stored(world) == stored  # the repeat's draft was put, then discarded
    with pytest.raises(idempotency.IdempotencyConflict):
        await world.service.send(
            world.keeper.principal, _meta([RECIPIENT]), _file(world.pdf), idempotency_key=key
        )


async def test_refusals_come_before_the_body_and_the_idempotency_key(world: World) -> None:
    sent = await world.service.send(world.keeper.principal, _meta([RECIPIENT]), _file(world.pdf))
    bad_key = idempotency.Key("POST", f"/v1/documents/{sent.id}/resend", "")
    unread = _never()
    with pytest.raises(Hidden) as hidden:
        await world.service.resend(world.other.principal, sent.id, unread, idempotency_key=bad_key)
    assert (hidden.value.reason, hidden.value.details) == (
        "other_department",
        {"document": str(sent.id)},
    )
    with pytest.raises(Hidden) as unknown:
        await world.service.withdraw(world.keeper.principal, uuid.uuid4())
    assert unknown.value.reason == "unknown_id"
    with pytest.raises(RoleMissing):
        await world.service.resend(
            world.sender_leader.principal, sent.id, unread, idempotency_key=bad_key
        )
    # Allowed to act: now the key is judged.
    with pytest.raises(idempotency.InvalidKey):
        await world.service.withdraw(world.sender_clerk.principal, sent.id, idempotency_key=bad_key)


async def test_withdraw_after_sign_for_is_refused_and_changes_nothing(world: World) -> None:
    sent = await world.service.send(
        world.keeper.principal, _meta([RECIPIENT, OTHER]), _file(world.pdf)
    )
    assert sent.sha256 is not None
    delivery = await _delivery_to(world, sent.id, RECIPIENT)
    receipt = _receipt(world.recipient, delivery, sent.sha256, "receive")
    decided = await world.service.decide(
        world.recipient.principal, delivery, "receive", _given(receipt)
    )
    assert decided.state == "received" and decided.audit_index >= 0
    # The same signed receipt again is answered as the first time, with the same
    # countersignature (a client may simply retry).
    again = await world.service.decide(
        world.recipient.principal, delivery, "receive", _given(receipt)
    )
    assert again == decided
    with pytest.raises(documents.WrongState, match="already signed for"):
        await world.service.withdraw(world.sender_clerk.principal, sent.id)
    view = await world.service.document(world.keeper.principal, sent.id)
    assert view.document.status == "dispatched"
    assert {d.recipient: d.state for d in view.deliveries} == {
        RECIPIENT: "received",
        OTHER: "pending",
    }
    withdrawn = await _count(
        world,
        "SELECT count(*) FROM audit_log WHERE type = 'document.withdrawn' AND document = $1",
        str(sent.id),
    )
    assert withdrawn == 0


async def test_an_idempotency_key_answers_only_the_official_that_used_it(world: World) -> None:
    """Two officials of one department who happen to pick the same key (a client library's
    counter, say) each get their own unit of work: the scope is per official and route, so
    nobody is answered with, or learns, another official's stored response."""
    sent = await world.service.send(world.keeper.principal, _meta([RECIPIENT]), _file(world.pdf))
    key = idempotency.Key("POST", f"/v1/documents/{sent.id}/resend", "shared-key-1")
    asked = ResendRequest((OTHER,), None)
    first = await world.service.resend(
        world.keeper.principal, sent.id, _given(asked), idempotency_key=key
    )
    second = await world.service.resend(
        world.sender_clerk.principal, sent.id, _given(asked), idempotency_key=key
    )
    assert first.added == (OTHER,)
    assert second.added == ()  # ran for the clerk: OTHER already had its delivery
    stored = await _count(
        world, "SELECT count(*) FROM idempotency_keys WHERE key = $1", "shared-key-1"
    )
    assert stored == 2


async def test_a_repeated_resend_adds_each_recipient_once(world: World) -> None:
    sent = await world.service.send(world.keeper.principal, _meta([RECIPIENT]), _file(world.pdf))
    key = idempotency.Key("POST", f"/v1/documents/{sent.id}/resend", uuid.uuid4().hex)
    asked = ResendRequest((OTHER, RECIPIENT), None)
    first = await world.service.resend(
        world.sender_clerk.principal, sent.id, _given(asked), idempotency_key=key
    )
    again = await world.service.resend(
        world.sender_clerk.principal, sent.id, _given(asked), idempotency_key=key
    )
    assert first.added == (OTHER,) and again == first
    # Without the key, asking again finds nobody new: no delivery, no event, no NOTIFY.
    plain = await world.service.resend(world.sender_clerk.principal, sent.id, _given(asked))
    assert plain.added == ()
    with pytest.raises(idempotency.IdempotencyConflict):
        await world.service.resend(
            world.sender_clerk.principal,
            sent.id,
            _given(ResendRequest((THIRD,), None)),
            idempotency_key=key,
        )
    assert await _count(world, "SELECT count(*) FROM deliveries WHERE document = $1", sent.id) == 2
    outbox_and_log = await _count(
        world,
        "SELECT (SELECT count(*) FROM audit_outbox WHERE type = 'document.resent'"
        " AND document = $1) + (SELECT count(*) FROM audit_log WHERE type = 'document.resent'"
        " AND document = $1)",
        str(sent.id),
    )
    assert outbox_and_log == 1


async def test_a_withdrawn_delivery_leaves_the_inbox_and_the_document_view(world: World) -> None:
    sent = await world.service.send(world.keeper.principal, _meta([THIRD]), _file(world.pdf))
    third = await _official(world.runtime, THIRD, ["clerk"])
    page = await world.service.inbox(third.principal, InboxQuery(None, 0, 50))
    assert [row.document_id for row in page.items] == [sent.id]
    await world.service.withdraw(world.sender_clerk.principal, sent.id)
    assert (await world.service.inbox(third.principal, InboxQuery(None, 0, 50))).items == []
    with pytest.raises(Hidden):
        await world.service.document(third.principal, sent.id)
    with pytest.raises(Hidden):
        await world.service.content(third.principal, sent.id, None)


async def test_the_stream_sends_new_deliveries_then_ends_with_the_token(world: World) -> None:
    reader = await _official(world.runtime, OTHER, ["clerk"])
    events = await world.service.inbox_stream(reader.principal, None)  # from now on
    sent = await world.service.send(world.keeper.principal, _meta([OTHER]), _file(world.pdf))
    async with contextlib.aclosing(events):
        first = await anext(events)
        assert isinstance(first, DeliveryArrived) and first.row.document_id == sent.id
    expired = Principal(
        reader.principal.official_id,
        reader.principal.name,
        OTHER,
        reader.principal.roles,
        reader.principal.kid,
        token_expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    latest = first.row.seq
    async with contextlib.aclosing(await world.service.inbox_stream(expired, latest)) as ending:
        assert [event async for event in ending] == [
            KeepAlive(),
            StreamEnded("the access token expired: refresh it and reconnect"),
        ]
