"""The oversight service in process: who sees which alerts and numbers, and what
acknowledging, closing and noting change and record."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest

from gateway.identity.access import AccessLog
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.principal import Caller, Principal
from gateway.supervision.oversight import InvalidPeriod, OversightService
from storage import supervision
from storage.audit_outbox import OutboxSink
from storage.supervision import Alert, AlertFilter
from tests.supervision.conftest import T0, send_one

NOW = T0 + timedelta(days=3)


def caller(official: str, department: str, *roles: str) -> Caller:
    principal = Principal(official, "某人", department, frozenset(roles), f"jkt-{official}")
    return Caller(principal, "POST", "/v1/supervision/alerts", "10.0.0.7")


INSPECTOR = caller("insp-wang", "yl", "inspector")
JYJ_ADMIN = caller("jyj-li", "yl-jyj", "dept_admin")


@pytest.fixture
def service(pool: asyncpg.Pool) -> OversightService:
    access = AccessLog(pool, audit=OutboxSink(), clock=lambda: NOW)
    return OversightService(pool, access=access, clock=lambda: NOW)


async def _denials(pool: asyncpg.Pool) -> list[tuple[str | None, dict[str, object]]]:
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT actor_official, details FROM audit_outbox"
            " WHERE type = 'access.denied' ORDER BY id"
        )
    return [(row["actor_official"], row["details"]) for row in rows]


async def _open(
    pool: asyncpg.Pool, rule: str, subject: str, department: str | None, **details: str
) -> Alert:
    async with pool.acquire() as connection:
        alert = await supervision.open_alert(
            connection, rule=rule, subject=subject, department=department, details=details, now=T0
        )
    assert alert is not None
    return alert


async def _events(pool: asyncpg.Pool) -> list[tuple[str, str | None, dict[str, object]]]:
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT type, actor_official, details FROM audit_outbox"
            " WHERE type LIKE 'supervision.%' ORDER BY id"
        )
    return [(row["type"], row["actor_official"], row["details"]) for row in rows]


async def test_each_department_sees_its_own_alerts_and_inspectors_all(
    pool: asyncpg.Pool, service: OversightService
) -> None:
    jyj = await _open(pool, "delivery_overdue", "d-1", "yl-jyj")
    gaj = await _open(pool, "delivery_overdue", "d-2", "yl-gaj")
    platform = await _open(pool, "failed_login_burst", "10.0.0.9", None)
    own = await service.alerts(JYJ_ADMIN, AlertFilter(), after=None, limit=10)
    assert [a.id for a in own.items] == [jyj.id]
    with pytest.raises(NotFound):
        await service.alerts(JYJ_ADMIN, AlertFilter(department="yl-gaj"), after=None, limit=10)
    every = await service.alerts(INSPECTOR, AlertFilter(), after=None, limit=2)
    assert len(every.items) == 2 and every.more
    narrowed = await service.alerts(
        INSPECTOR, AlertFilter(department="yl-gaj"), after=None, limit=9
    )
    assert [a.id for a in narrowed.items] == [gaj.id]
    # Acting on an alert follows the same visibility; platform-wide ones are inspectors' only.
    noted = await service.add_note(JYJ_ADMIN, jyj.id, "已催办")
    assert noted.notes == [
        {"at": "2026-03-05T09:00:00Z", "by": "jyj-li", "department": "yl-jyj", "note": "已催办"}
    ]
    with pytest.raises(NotFound):
        await service.add_note(JYJ_ADMIN, gaj.id, "不是我们的")
    with pytest.raises(NotFound, match=r"^no such resource$"):
        await service.add_note(JYJ_ADMIN, platform.id, "看看")
    # An unknown id reads exactly like a hidden one (but is no refusal of anyone's alert).
    with pytest.raises(supervision.AlertNotFound, match=r"^no such resource$"):
        await service.add_note(INSPECTOR, uuid.uuid4(), "?")
    assert [e[0] for e in await _events(pool)] == ["supervision.alert_noted"]
    # The first hidden refusal of the minute is recorded; the later ones count on its row.
    [(actor, details)] = await _denials(pool)
    assert (actor, details["reason"], details["aggregated"]) == ("jyj-li", "other_department", True)
    async with pool.acquire() as connection:
        counted = await connection.fetchval(
            "SELECT count FROM denied_access_counts WHERE official = 'jyj-li'"
        )
    assert counted == 3


async def test_acknowledge_then_close_each_recorded_once(
    pool: asyncpg.Pool, service: OversightService
) -> None:
    alert = await _open(pool, "delivery_overdue", "d-1", "yl-jyj")
    acknowledged = await service.acknowledge(INSPECTOR, alert.id, "在办")
    assert (acknowledged.state, acknowledged.acknowledged_by) == ("acknowledged", "insp-wang")
    assert acknowledged.acknowledged_at == NOW
    # Again: the same answer, nothing more recorded.
    assert await service.acknowledge(INSPECTOR, alert.id, None) == acknowledged
    closed = await service.close(INSPECTOR, alert.id, "已核实")
    assert (closed.state, closed.close_reason) == ("closed", supervision.INSPECTOR_CLOSED)
    for act in (
        service.close(INSPECTOR, alert.id, "again"),
        service.acknowledge(INSPECTOR, alert.id, None),
        service.add_note(INSPECTOR, alert.id, "late"),
    ):
        with pytest.raises(supervision.AlertClosed):
            await act
    basics = {"alert": str(alert.id), "rule": "delivery_overdue", "subject": "d-1"}
    assert await _events(pool) == [
        ("supervision.alert_acknowledged", "insp-wang", {**basics, "note": "在办"}),
        (
            "supervision.alert_closed",
            "insp-wang",
            {**basics, "reason": supervision.INSPECTOR_CLOSED, "note": "已核实"},
        ),
    ]


async def test_whoever_handed_out_the_code_cannot_acknowledge_its_alert(
    pool: asyncpg.Pool, service: OversightService
) -> None:
    alert = await _open(
        pool,
        supervision.KEY_ADDED_BY_OTHER,
        "key-1",
        "yl-jyj",
        code_issued_by="insp-wang",
        code_cosigned_by="insp-zhao",
    )
    cosigner = caller("insp-zhao", "yl", "inspector")
    for official in (INSPECTOR, cosigner):
        with pytest.raises(Forbidden):
            await service.acknowledge(official, alert.id, None)
    assert [(actor, d["reason"]) for actor, d in await _denials(pool)] == [
        ("insp-wang", "role_missing"),
        ("insp-zhao", "role_missing"),
    ]
    other = caller("insp-qian", "yl", "inspector")
    assert (await service.acknowledge(other, alert.id, None)).state == "acknowledged"
    assert [e[1] for e in await _events(pool)] == ["insp-qian"]


async def test_stats_period_and_visibility(pool: asyncpg.Pool, service: OversightService) -> None:
    async with pool.acquire() as connection:
        await send_one(
            connection, "yl-bgs", "yl-jyj", at=NOW - timedelta(days=2), due_in=timedelta(days=5)
        )
        await send_one(
            connection, "yl-bgs", "yl-gaj", at=NOW - timedelta(days=40), due_in=timedelta(days=5)
        )
    report = await service.stats(JYJ_ADMIN, None, since=None, until=None)
    assert (report.since, report.until, report.at) == (NOW - timedelta(days=30), NOW, NOW)
    assert [(s.department, s.received) for s in report.departments] == [("yl-jyj", 1)]
    with pytest.raises(NotFound):
        await service.stats(JYJ_ADMIN, "yl-gaj", since=None, until=None)
    everyone = await service.stats(INSPECTOR, None, since=NOW - timedelta(days=60), until=None)
    assert {s.department: s.received for s in everyone.departments}["yl-gaj"] == 1
    with pytest.raises(InvalidPeriod, match="before"):
        await service.stats(INSPECTOR, None, since=NOW, until=NOW)
    with pytest.raises(InvalidPeriod, match="five years"):
        await service.stats(INSPECTOR, None, since=NOW - timedelta(days=366 * 5 + 1), until=None)
