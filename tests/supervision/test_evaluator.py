"""One evaluator pass at a given ``now`` against a real PostgreSQL: alerts open on new hits,
close when the cause goes away, and each change is an audit event in the same transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
import pytest

from gateway.audit import sequencer
from gateway.supervision import rules, views
from gateway.supervision.service import Sources, evaluate_once
from storage import audit_log, supervision
from storage.audit_outbox import AuditEvent, record_event
from storage.db import DbConnection, connect
from tests.supervision.conftest import T0, add_document, send_one

CONFIG = rules.RuleConfig(failed_login_burst=5, denied_access_burst=3)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


async def events(connection: DbConnection, kind: str) -> list[dict[str, object]]:
    rows = await connection.fetch(
        "SELECT department, document, details FROM audit_outbox WHERE type = $1 ORDER BY id",
        f"supervision.alert_{kind}",
    )
    return [dict(row.items()) for row in rows]


async def test_overdue_delivery_opens_once_and_closes_when_signed_for(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        delivery = await send_one(connection, "yl-bgs", "yl-jyj", at=T0, due_in=timedelta(hours=2))
        on_time = await send_one(connection, "yl-bgs", "yl-gaj", at=T0, due_in=timedelta(hours=72))
        early = await evaluate_once(connection, T0 + timedelta(hours=2), CONFIG)
        assert early.opened == [] and early.closed == []

        late = T0 + timedelta(hours=2, seconds=1)
        first = await evaluate_once(connection, late, CONFIG)
        assert [(a.rule, a.subject, a.department, a.state) for a in first.opened] == [
            (rules.DELIVERY_OVERDUE, f"delivery:{delivery}", "yl-jyj", "open")
        ]
        assert first.opened[0].opened_at == late
        again = await evaluate_once(connection, late + timedelta(minutes=5), CONFIG)
        assert again.opened == [] and again.closed == []
        opened_events = await events(connection, "opened")
        assert len(opened_events) == 1
        assert opened_events[0]["department"] == "yl-jyj"
        assert opened_events[0]["details"]["alert"] == str(first.opened[0].id)  # type: ignore[index]

        # The recipient signs for it: the next pass closes the alert.
        await connection.execute(
            "UPDATE deliveries SET state = 'received', decided_at = $2 WHERE id = $1",
            delivery,
            late + timedelta(minutes=6),
        )
        signed = await evaluate_once(connection, late + timedelta(minutes=7), CONFIG)
        assert [a.id for a in signed.closed] == [first.opened[0].id]
        stored = await supervision.get_alert(connection, first.opened[0].id)
        assert stored.state == "closed" and stored.close_reason == "cause_gone"
        assert stored.closed_at == late + timedelta(minutes=7)
        assert len(await events(connection, "closed")) == 1
        # The other delivery, due in 72 h, is still in time.
        assert on_time not in {a.details.get("delivery") for a in first.opened}


async def test_acknowledged_alert_still_closes_and_a_closed_one_cannot_be_acknowledged(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        delivery = await send_one(connection, "yl-bgs", "yl-jyj", at=T0, due_in=timedelta(hours=1))
        now = T0 + timedelta(hours=2)
        (alert,) = (await evaluate_once(connection, now, CONFIG)).opened
        acknowledged, changed = await supervision.acknowledge_alert(
            connection, alert.id, official="inspector-1", now=now
        )
        assert changed and acknowledged.state == "acknowledged"
        again, changed_again = await supervision.acknowledge_alert(
            connection, alert.id, official="inspector-2", now=now
        )
        assert not changed_again and again.acknowledged_by == "inspector-1"
        # Acknowledged is still live: no second alert for the same delivery.
        assert (await evaluate_once(connection, now, CONFIG)).opened == []
        await connection.execute(
            "UPDATE deliveries SET state = 'withdrawn' WHERE id = $1", delivery
        )
        closed = (await evaluate_once(connection, now + timedelta(minutes=1), CONFIG)).closed
        assert [a.id for a in closed] == [alert.id]
        with pytest.raises(supervision.AlertClosed):
            await supervision.acknowledge_alert(connection, alert.id, official="x", now=now)
        # If the delivery were overdue again later, that is a new alert, not the closed one.
        await connection.execute("UPDATE deliveries SET state = 'pending' WHERE id = $1", delivery)
        (reopened,) = (await evaluate_once(connection, now + timedelta(minutes=2), CONFIG)).opened
        assert reopened.id != alert.id


async def test_failed_login_burst_opens_and_closes_when_it_leaves_the_window(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        official = str(uuid.uuid4())
        await connection.execute(
            "INSERT INTO officials (id, name, department, roles, created_at, updated_at)"
            " VALUES ($1, '张三', 'yl-jyj', ARRAY['clerk'], $2, $2)",
            official,
            T0,
        )
        minute = T0
        await connection.executemany(
            "INSERT INTO auth_failures (minute, source, kind, subject, count, last_reason)"
            " VALUES ($1, $2, $3, $4, $5, 'bad_signature')",
            [
                (minute, "10.1.1.1", "login", official, 3),
                (minute + timedelta(minutes=1), "10.1.1.1", "login", official, 2),
                # Bad access tokens are denied accesses, not failed logins.
                (minute, "10.1.1.2", "token", "", 50),
            ],
        )
        now = minute + timedelta(minutes=1, seconds=30)
        opened = (await evaluate_once(connection, now, CONFIG)).opened
        found = {(a.rule, a.subject): a for a in opened}
        assert set(found) == {
            (rules.FAILED_LOGIN_BURST, f"official:{official}"),
            (rules.FAILED_LOGIN_BURST, "source:10.1.1.1"),
            (rules.DENIED_ACCESS_BURST, "source:10.1.1.2"),
        }
        assert found[(rules.FAILED_LOGIN_BURST, f"official:{official}")].department == "yl-jyj"
        assert found[(rules.FAILED_LOGIN_BURST, "source:10.1.1.1")].department is None
        # Ten minutes after the first counter's minute, only 2 failures remain in the window.
        later = await evaluate_once(connection, minute + timedelta(minutes=10, seconds=1), CONFIG)
        assert {(a.rule, a.subject) for a in later.closed} == {
            (rules.FAILED_LOGIN_BURST, f"official:{official}"),
            (rules.FAILED_LOGIN_BURST, "source:10.1.1.1"),
            (rules.DENIED_ACCESS_BURST, "source:10.1.1.2"),
        }


async def test_denied_accesses_are_read_from_the_outbox_and_from_the_log(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:

        async def denied(at: datetime) -> None:
            await record_event(
                connection,
                AuditEvent(
                    "access.denied",
                    at,
                    actor_official="official-9",
                    department="yl-gaj",
                    details={"reason": "other_department", "source": "10.2.2.2"},
                ),
            )

        await denied(T0)
        await denied(T0 + timedelta(seconds=10))
        assert await audit_log.try_acquire_sequencer(connection)
        assert await sequencer.sequence_pending(connection) == 2  # these two are in the log now
        assert (await evaluate_once(connection, T0 + timedelta(seconds=20), CONFIG)).opened == []
        await denied(T0 + timedelta(seconds=20))  # the third is still in the outbox
        opened = (await evaluate_once(connection, T0 + timedelta(seconds=30), CONFIG)).opened
        assert {(a.rule, a.subject, a.department) for a in opened} == {
            (rules.DENIED_ACCESS_BURST, "official:official-9", "yl-gaj"),
            (rules.DENIED_ACCESS_BURST, "source:10.2.2.2", None),
        }
        # The evaluator's own events went to the outbox as well.
        assert len(await events(connection, "opened")) == 2


async def test_revoked_seal_use_opens_and_closes_a_day_after_the_last_try(
    pool: asyncpg.Pool,
) -> None:
    seal_id = str(uuid.uuid4())
    async with pool.acquire() as connection:
        await record_event(
            connection,
            AuditEvent(
                "seal.use_refused",
                T0,
                department="yl-gaj",
                details={"seal_id": seal_id, "reason": "revoked"},
            ),
        )
        (alert,) = (await evaluate_once(connection, T0 + timedelta(minutes=1), CONFIG)).opened
        assert (alert.rule, alert.subject, alert.department) == (
            rules.REVOKED_SEAL_USE,
            f"seal:{seal_id}",
            "yl-gaj",
        )
        day = T0 + timedelta(hours=24)
        assert (await evaluate_once(connection, day, CONFIG)).closed == []
        closed = (await evaluate_once(connection, day + timedelta(seconds=1), CONFIG)).closed
        assert [a.id for a in closed] == [alert.id]


async def test_rules_without_a_wired_source_keep_their_alerts(pool: asyncpg.Pool) -> None:
    steps: list[supervision.PendingApprovalStep] = [
        supervision.PendingApprovalStep("doc-7", 1, "签发", "yl-bgs", T0)
    ]

    async def pending_steps(
        connection: DbConnection, now: datetime
    ) -> Sequence[supervision.PendingApprovalStep]:
        return list(steps)

    wired = Sources(pending_approval_steps=pending_steps)
    async with pool.acquire() as connection:
        late = T0 + timedelta(hours=24, seconds=1)
        opened = (await evaluate_once(connection, late, CONFIG, wired)).opened
        (alert,) = [a for a in opened if a.rule == rules.APPROVAL_STEP_OVERDUE]
        assert alert.subject == "approval:doc-7:1"
        steps.clear()  # the step was decided
        # Not wired in this pass: the evaluator cannot know, so the alert stays open.
        unwired = await evaluate_once(connection, late, CONFIG, Sources())
        assert unwired.closed == [] and rules.APPROVAL_STEP_OVERDUE not in unwired.rules
        assert (await supervision.get_alert(connection, alert.id)).state == "open"
        closed = (await evaluate_once(connection, late, CONFIG, wired)).closed
        assert [a.id for a in closed] == [alert.id]


async def test_alert_list_filters_and_pages_newest_first(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        for hours in range(5):
            await send_one(
                connection,
                "yl-bgs",
                "yl-jyj" if hours % 2 else "yl-gaj",
                at=T0 + timedelta(hours=hours),
                due_in=timedelta(hours=1),
            )
            await evaluate_once(connection, T0 + timedelta(hours=hours + 1, seconds=1), CONFIG)
        everything = await supervision.list_alerts(
            connection, supervision.AlertFilter(), after=None, limit=10
        )
        assert [a.opened_at for a in everything] == sorted(
            (a.opened_at for a in everything), reverse=True
        )
        assert len(everything) == 5
        first = await supervision.list_alerts(
            connection, supervision.AlertFilter(), after=None, limit=2
        )
        rest = await supervision.list_alerts(
            connection,
            supervision.AlertFilter(),
            after=(first[-1].opened_at, first[-1].id),
            limit=10,
        )
        assert [a.id for a in first + rest] == [a.id for a in everything]
        jyj = await supervision.list_alerts(
            connection, supervision.AlertFilter(department="yl-jyj"), after=None, limit=10
        )
        assert len(jyj) == 2 and {a.department for a in jyj} == {"yl-jyj"}
        assert json.dumps([views.alert_json(a) for a in jyj], ensure_ascii=False)


async def add_official(connection: DbConnection, department: str, roles: list[str]) -> str:
    official = str(uuid.uuid4())
    await connection.execute(
        "INSERT INTO officials (id, name, department, roles, created_at, updated_at)"
        " VALUES ($1, '官员', $2, $3, $4, $4)",
        official,
        department,
        roles,
        T0,
    )
    return official


async def test_approval_steps_from_the_workflow_tables(pool: asyncpg.Pool) -> None:
    """The wired query: the first incomplete step of the newest version, since it opened."""
    async with pool.acquire() as connection:
        checker = await add_official(connection, "yl-bgs", ["clerk"])
        second = await add_official(connection, "yl-bgs", ["clerk"])
        leader = await add_official(connection, "yl-bgs", ["leader"])
        document = await add_document(connection, "yl-bgs", dispatched_at=T0)
        await connection.execute(
            "UPDATE documents SET status = 'in_approval', dispatched_at = NULL WHERE id = $1",
            document,
        )
        await connection.execute(
            "INSERT INTO workflows (document, recipients, created_at) VALUES ($1, '{yl-jyj}', $2)",
            document,
            T0,
        )
        await connection.executemany(
            "INSERT INTO workflow_steps (document, step, name, mode, assignees)"
            " VALUES ($1, $2, $3, $4, $5)",
            [
                (document, 0, "核稿", "any", [checker]),
                (document, 1, "会签", "all", [checker, second]),
                (document, 2, "签发", "any", [leader]),
            ],
        )
        await connection.execute(
            "INSERT INTO document_versions (document, version, draft_object, draft_sha256,"
            " draft_size, submitted_by, submitted_at) VALUES ($1, 1, 'obj', $2, 1, 'x', $3)",
            document,
            "0" * 64,
            T0,
        )

        async def decide(official: str, step: int, at: datetime, decision: str = "approve") -> None:
            await connection.execute(
                "INSERT INTO approvals (id, document, version, step, official, kid, decision,"
                " signature, jti, signed_at, decided_at)"
                " VALUES ($1, $2, 1, $3, $4, 'kid', $5, 'jws', $6, $7, $7)",
                uuid.uuid4(),
                document,
                step,
                official,
                decision,
                uuid.uuid4().hex,
                at,
            )

        day = timedelta(hours=24)
        assert (await evaluate_once(connection, T0 + day, CONFIG)).opened == []
        (first,) = (await evaluate_once(connection, T0 + day + SECOND, CONFIG)).opened
        assert (first.rule, first.subject, first.department) == (
            rules.APPROVAL_STEP_OVERDUE,
            f"approval:{document}:0",
            "yl-bgs",
        )
        assert first.details["name"] == "核稿"
        # Step 0 approved at T0+25h: its alert closes; step 1 opened then, due 24 h later.
        await decide(checker, 0, T0 + 25 * HOUR)
        moved = await evaluate_once(connection, T0 + 25 * HOUR + SECOND, CONFIG)
        assert [a.id for a in moved.closed] == [first.id] and moved.opened == []
        # 会签 (all): one of two approvals does not complete the step.
        await decide(checker, 1, T0 + 26 * HOUR)
        assert (await evaluate_once(connection, T0 + 49 * HOUR, CONFIG)).opened == []
        (second_alert,) = (await evaluate_once(connection, T0 + 49 * HOUR + SECOND, CONFIG)).opened
        assert second_alert.subject == f"approval:{document}:1"
        assert second_alert.details["started_at"] == "2026-03-03T10:00:00Z"
        # Returned to the drafter: no step is open any more.
        await decide(second, 1, T0 + 50 * HOUR, "reject")
        await connection.execute("UPDATE documents SET status = 'returned' WHERE id = $1", document)
        closed = (await evaluate_once(connection, T0 + 50 * HOUR + SECOND, CONFIG)).closed
        assert [a.id for a in closed] == [second_alert.id]


async def test_webhook_dead_letters_from_the_webhook_queue(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        webhook = uuid.uuid4()
        await connection.execute(
            "INSERT INTO webhooks (id, department, url, host, port, secret_wrapped, created_by,"
            " created_at) VALUES ($1, 'yl-jyj', 'https://sys.jyj.example/hook',"
            " 'sys.jyj.example', 443, '\\x00', 'admin', $2)",
            webhook,
            T0,
        )
        delivery = await send_one(connection, "yl-bgs", "yl-jyj", at=T0, due_in=72 * HOUR)
        # The queue's trigger enqueued a job for the new delivery; it fails for good.
        job = await connection.fetchval(
            "UPDATE webhook_jobs SET state = 'dead', dead_at = $2, attempts = 8"
            " WHERE delivery = $1 RETURNING id",
            delivery,
            T0 + HOUR,
        )
        assert job is not None
        (alert,) = (await evaluate_once(connection, T0 + 2 * HOUR, CONFIG)).opened
        assert (alert.rule, alert.subject, alert.department) == (
            rules.WEBHOOK_DEAD_LETTERS,
            f"webhook:{webhook}",
            "yl-jyj",
        )
        assert alert.details["count"] == 1
        # Replayed and delivered: nothing dead is left.
        await connection.execute(
            "UPDATE webhook_jobs SET state = 'delivered', delivered_at = $2 WHERE id = $1",
            job,
            T0 + 3 * HOUR,
        )
        closed = (await evaluate_once(connection, T0 + 3 * HOUR, CONFIG)).closed
        assert [a.id for a in closed] == [alert.id]


async def test_a_missing_table_skips_its_rule_only(db_url: str, pool: asyncpg.Pool) -> None:
    """Should the webhook queue's tables be absent, the other rules still run."""
    owner = await connect(db_url)
    try:
        await owner.execute(
            "DROP TRIGGER deliveries_enqueue_webhooks ON deliveries; DROP TABLE webhook_jobs"
        )
    finally:
        await owner.close()
    async with pool.acquire() as connection:
        await send_one(connection, "yl-bgs", "yl-jyj", at=T0, due_in=HOUR)
        result = await evaluate_once(connection, T0 + 2 * HOUR, CONFIG)
    assert rules.WEBHOOK_DEAD_LETTERS not in result.rules
    assert [a.rule for a in result.opened] == [rules.DELIVERY_OVERDUE]
