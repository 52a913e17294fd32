"""The webhook service in process: registration rules (allow-list, pinning, the per-department
bound under concurrency), dead-letter pages and replay, each change audited once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.identity.principal import Principal
from gateway.webhooks.service import (
    NewAllowEntry,
    TooManyWebhooks,
    UnknownWebhookResource,
    WebhookExists,
    WebhookService,
)
from gateway.webhooks.worker import AddressRefused, TargetNotAllowed, parse_target
from keys.master import MasterKey
from storage import webhooks as rows
from storage.db import create_pool
from storage.webhooks import Policy
from tests.supervision.conftest import add_delivery, add_document

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ADMIN = Principal("o-admin", "管理员", "yl", frozenset({"admin"}), "jkt-admin")
GAJ = Principal("gaj-admin", "公安", "yl-gaj", frozenset({"dept_admin"}), "jkt-gaj")


class Dns:
    """Answers per name, set by the test (a name may answer with an inside address)."""

    def __init__(self, **answers: list[str]) -> None:
        self.answers = answers

    async def __call__(self, host: str, port: int) -> list[str]:
        return self.answers[host]


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    app_pool = await create_pool(db_url, min_size=1, max_size=6)
    async with app_pool.acquire() as connection:
        await connection.executemany(
            "INSERT INTO departments (code, name, kind) VALUES ($1, $2, 'bureau')",
            [("yl", "玉林市"), ("yl-gaj", "公安局"), ("yl-jyj", "教育局")],
        )
    try:
        yield app_pool
    finally:
        await app_pool.close()


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def service(pool: asyncpg.Pool, master: MasterKey) -> WebhookService:
    dns = Dns(**{"hooks.test": ["93.184.216.34"], "sneaky.test": ["93.184.216.35", "10.0.0.8"]})
    return WebhookService(pool, master, resolver=dns, clock=lambda: NOW, max_per_department=3)


async def _events(pool: asyncpg.Pool, kind: str) -> list[dict[str, object]]:
    async with pool.acquire() as connection:
        rows_ = await connection.fetch(
            "SELECT details FROM audit_outbox WHERE type = $1 ORDER BY id", kind
        )
    return [row["details"] for row in rows_]


async def test_registration_needs_an_allowed_target_that_resolves_outside(
    pool: asyncpg.Pool, service: WebhookService, master: MasterKey
) -> None:
    target = parse_target("https://hooks.test/in")
    with pytest.raises(TargetNotAllowed):
        await service.create(GAJ, "yl-gaj", target, "")
    await service.allow(ADMIN, NewAllowEntry("hooks.test", 443, False, "接收端"))
    await service.allow(ADMIN, NewAllowEntry("sneaky.test", 443, False, ""))
    # Allowed by name, but one of its answers points inside: refused before anything is kept.
    with pytest.raises(AddressRefused):
        await service.create(GAJ, "yl-gaj", parse_target("https://sneaky.test/in"), "")
    created = await service.create(GAJ, "yl-gaj", target, "收文通知")
    assert created.secret.startswith("whsec_")
    webhook = created.webhook
    assert (webhook.department, webhook.url, webhook.created_at) == ("yl-gaj", target.url, NOW)
    # Kept only wrapped under the master key, bound to this webhook.
    assert created.secret.encode() not in webhook.secret_wrapped
    context = f"sealhub webhook secret\x00{webhook.id}".encode()
    assert master.unwrap(webhook.secret_wrapped, context) == created.secret.encode()
    with pytest.raises(WebhookExists):
        await service.create(GAJ, "yl-gaj", target, "again")
    assert [w.id for w in await service.webhooks("yl-gaj")] == [webhook.id]
    assert await service.webhooks("yl-jyj") == []
    assert await _events(pool, "webhook.created") == [
        {"webhook": str(webhook.id), "url": target.url}
    ]
    # Deleting is for the webhook's own department, and happens once.
    with pytest.raises(UnknownWebhookResource):
        await service.delete(GAJ, "yl-jyj", webhook.id)
    await service.delete(GAJ, "yl-gaj", webhook.id)
    with pytest.raises(UnknownWebhookResource):
        await service.delete(GAJ, "yl-gaj", webhook.id)
    assert await _events(pool, "webhook.deleted") == [{"webhook": str(webhook.id)}]


async def test_concurrent_registrations_never_pass_the_bound(service: WebhookService) -> None:
    await service.allow(ADMIN, NewAllowEntry("hooks.test", 443, False, ""))
    results = await asyncio.gather(
        *(
            service.create(GAJ, "yl-gaj", parse_target(f"https://hooks.test/in/{n}"), "")
            for n in range(6)
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 3 and all(isinstance(r, TooManyWebhooks) for r in refused)
    assert len(await service.webhooks("yl-gaj")) == 3


async def test_dead_letters_page_and_replay(pool: asyncpg.Pool, service: WebhookService) -> None:
    await service.allow(ADMIN, NewAllowEntry("hooks.test", 443, False, ""))
    webhook = (
        await service.create(GAJ, "yl-gaj", parse_target("https://hooks.test/in"), "")
    ).webhook
    deliveries = []
    async with pool.acquire() as connection:
        for n in range(3):
            at = NOW - timedelta(hours=3 - n)
            document = await add_document(connection, "yl-jyj", dispatched_at=at)
            deliveries.append(
                await add_delivery(
                    connection, document, "yl-gaj", created_at=at, due_in=timedelta(days=1)
                )
            )
        for n, delivery in enumerate(deliveries):
            [job] = await rows.jobs_of_delivery(connection, delivery)
            assert await rows.finish_job(
                connection,
                job["id"],
                state="dead",
                attempts=0,
                now=NOW - timedelta(minutes=30 - n),
                next_attempt_at=None,
                status=503,
                error="http_503",
            )
        await connection.execute(
            "UPDATE deliveries SET state = 'withdrawn' WHERE id = $1", deliveries[0]
        )
    first = await service.dead_letters("yl-gaj", before=None, after_id=None, limit=2)
    assert [d.delivery for d in first.items] == [deliveries[2], deliveries[1]] and first.more
    last = first.last
    assert last is not None
    rest = await service.dead_letters("yl-gaj", before=last.dead_at, after_id=last.id, limit=2)
    assert [d.delivery for d in rest.items] == [deliveries[0]] and not rest.more
    assert (await service.dead_letters("yl-jyj", before=None, after_id=None, limit=9)).items == []

    newest = first.items[0]
    with pytest.raises(UnknownWebhookResource):
        await service.replay(GAJ, "yl-jyj", newest.id)  # not that department's
    with pytest.raises(UnknownWebhookResource):
        await service.replay(GAJ, "yl-gaj", rest.items[0].id)  # its delivery was withdrawn
    await service.replay(GAJ, "yl-gaj", newest.id)
    async with pool.acquire() as connection:
        [job] = await rows.jobs_of_delivery(connection, deliveries[2])
    assert (job["id"], job["state"], job["attempts"], job["next_attempt_at"]) == (
        newest.id,
        "pending",
        0,
        NOW,
    )
    with pytest.raises(UnknownWebhookResource):
        await service.replay(GAJ, "yl-gaj", newest.id)  # no longer dead
    assert await _events(pool, "webhook.replayed") == [
        {"job": str(newest.id), "webhook": str(webhook.id), "delivery": str(deliveries[2])}
    ]


async def test_allow_list_and_policy_changes_are_audited(
    pool: asyncpg.Pool, service: WebhookService
) -> None:
    entry = await service.allow(ADMIN, NewAllowEntry("10.1.2.3", 8443, True, "内网"))
    assert [e.id for e in await service.allow_list()] == [entry.id]
    with pytest.raises(rows.AlreadyAllowed):
        await service.allow(ADMIN, NewAllowEntry("10.1.2.3", 8443, False, ""))
    await service.disallow(ADMIN, entry.id)
    with pytest.raises(UnknownWebhookResource):
        await service.disallow(ADMIN, entry.id)
    assert await service.allow_list() == []
    assert await service.policy() == Policy(8, 30.0, 3600.0)
    assert await service.set_policy(ADMIN, Policy(3, 0.5, 2.0)) == Policy(3, 0.5, 2.0)
    assert await service.policy() == Policy(3, 0.5, 2.0)
    assert await _events(pool, "webhook.allowlist_added") == [
        {"entry": str(entry.id), "host": "10.1.2.3", "port": 8443, "allow_private": True}
    ]
    assert await _events(pool, "webhook.allowlist_removed") == [
        {"entry": str(entry.id), "host": "10.1.2.3", "port": 8443}
    ]
    assert await _events(pool, "webhook.policy_changed") == [
        {"max_attempts": 3, "base_delay_seconds": 0.5, "max_delay_seconds": 2.0}
    ]
