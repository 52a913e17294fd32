"""Statistics against a fixture computed by hand (numbers in the comments)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest

from storage import supervision
from storage.db import DbConnection
from tests.supervision.conftest import T0, add_delivery, add_document, send_one

H = timedelta(hours=1)
DAY = timedelta(days=1)
SINCE, UNTIL, NOW = T0, T0 + 10 * DAY, T0 + 12 * DAY


async def load_fixture(connection: DbConnection) -> None:
    """yl-bgs sends to yl-jyj (#1 to #9); yl-jyj sends one to yl-gaj (#10)."""
    # 1: arrived T0+1h, signed for after 1 h, due in 24 h: on time.
    await send_one(
        connection, "yl-bgs", "yl-jyj", at=T0 + H, due_in=24 * H, state="received", decided_after=H
    )
    # 2: signed for after 3 h: on time.
    await send_one(
        connection,
        "yl-bgs",
        "yl-jyj",
        at=T0 + 2 * H,
        due_in=24 * H,
        state="received",
        decided_after=3 * H,
    )
    # 3: very urgent (2 h), signed for after 10 h: late.
    await send_one(
        connection,
        "yl-bgs",
        "yl-jyj",
        at=T0 + 3 * H,
        due_in=2 * H,
        state="received",
        decided_after=10 * H,
    )
    # 4: returned after 26 h, due in 24 h: rejected and late.
    await send_one(
        connection,
        "yl-bgs",
        "yl-jyj",
        at=T0 + 4 * H,
        due_in=24 * H,
        state="rejected",
        decided_after=26 * H,
    )
    # 5: still pending, was due T0+7h: judged late and overdue now.
    await send_one(connection, "yl-bgs", "yl-jyj", at=T0 + 5 * H, due_in=2 * H)
    # 6: still pending, due after NOW: neither judged nor overdue.
    await send_one(connection, "yl-bgs", "yl-jyj", at=T0 + 6 * H, due_in=13 * DAY)
    # 7: withdrawn by the sender: not received (but the document was sent).
    await send_one(connection, "yl-bgs", "yl-jyj", at=T0 + 7 * H, due_in=24 * H, state="withdrawn")
    # 8: before the period, still pending, overdue: only in "overdue now".
    await send_one(connection, "yl-bgs", "yl-jyj", at=T0 - 2 * DAY, due_in=DAY)
    # 9: exactly at the end of the period (excluded), signed for.
    await send_one(
        connection, "yl-bgs", "yl-jyj", at=UNTIL, due_in=DAY, state="received", decided_after=H
    )
    # 10: yl-jyj to yl-gaj, signed for after 30 minutes.
    await send_one(
        connection,
        "yl-jyj",
        "yl-gaj",
        at=T0 + DAY,
        due_in=72 * H,
        state="received",
        decided_after=timedelta(minutes=30),
    )
    # A document in approval was never dispatched: not sent.
    await add_document(connection, "yl-bgs", dispatched_at=T0 + H, status="dispatched")
    undispatched = await add_document(connection, "yl-gaj", dispatched_at=T0 + H)
    await connection.execute(
        "UPDATE documents SET dispatched_at = NULL, status = 'in_approval' WHERE id = $1",
        undispatched,
    )
    # A copy (cc) counts like any delivery: to yl-gaj, pending, not yet due.
    copied = await add_document(connection, "yl-bgs", dispatched_at=T0 + 2 * DAY)
    await add_delivery(connection, copied, "yl-gaj", created_at=T0 + 2 * DAY, due_in=30 * DAY)


EXPECTED = {
    "yl-bgs": supervision.DepartmentStats("yl-bgs", 9, 0, 0, 0, None, None, 0, 0, 0),
    "yl-jyj": supervision.DepartmentStats(
        "yl-jyj",
        sent=1,
        received=6,  # 1-6
        signed_for=3,  # 1, 2, 3
        rejected=1,  # 4
        median_seconds_to_sign_for=3 * 3600.0,  # of 1 h, 3 h, 10 h
        p90_seconds_to_sign_for=8.6 * 3600,  # 3 h + 0.8 x (10 h - 3 h), interpolated
        on_time=2,  # 1, 2
        judged=5,  # 1-4 decided, 5 overdue
        overdue_now=2,  # 5, 8
    ),
    "yl-gaj": supervision.DepartmentStats("yl-gaj", 0, 2, 1, 0, 1800.0, 1800.0, 1, 1, 0),
}


@pytest.fixture
async def loaded(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as connection:
        await load_fixture(connection)
    return pool


async def test_one_department_matches_the_hand_computed_numbers(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as connection:
        (jyj,) = await supervision.department_stats(
            connection, since=SINCE, until=UNTIL, now=NOW, department="yl-jyj"
        )
    assert jyj.median_seconds_to_sign_for == pytest.approx(3 * 3600.0)
    assert jyj.p90_seconds_to_sign_for == pytest.approx(8.6 * 3600)
    assert jyj.on_time_rate == pytest.approx(0.4)

    # Everything else exactly (the two percentiles are floats, compared above).
    def counts(stats: supervision.DepartmentStats) -> supervision.DepartmentStats:
        return replace(stats, median_seconds_to_sign_for=None, p90_seconds_to_sign_for=None)

    assert counts(jyj) == counts(EXPECTED["yl-jyj"])


async def test_every_department_at_once(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as connection:
        found = await supervision.department_stats(connection, since=SINCE, until=UNTIL, now=NOW)
    assert [s.department for s in found] == ["yl-bgs", "yl-gaj", "yl-jyj"]
    by_code = {s.department: s for s in found}
    assert by_code["yl-bgs"] == EXPECTED["yl-bgs"]
    assert by_code["yl-gaj"] == EXPECTED["yl-gaj"]
    assert by_code["yl-gaj"].on_time_rate == 1.0


async def test_a_quiet_department_and_a_moving_now(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as connection:
        (quiet,) = await supervision.department_stats(
            connection, since=SINCE, until=UNTIL, now=NOW, department="yl"
        )
        assert quiet == supervision.DepartmentStats("yl", 0, 0, 0, 0, None, None, 0, 0, 0)
        assert quiet.on_time_rate is None
        # Earlier "now": #5 (due T0+7h) not yet overdue, #8 (due T0-1d) already.
        (early,) = await supervision.department_stats(
            connection, since=SINCE, until=UNTIL, now=T0 + 6 * H, department="yl-jyj"
        )
        assert (early.overdue_now, early.judged) == (1, 4)


async def test_the_stats_read_the_covering_index(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as connection:
        await connection.execute("SET enable_seqscan = off")
        plan = await connection.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT count(*) FROM deliveries"
            " WHERE recipient = $1 AND created_at >= $2 AND created_at < $3",
            "yl-jyj",
            SINCE,
            UNTIL,
        )
    assert "deliveries_recipient_created" in str(plan)
