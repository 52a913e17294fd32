"""The directory service in process: additions are all-or-nothing and audited, lists page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from gateway.directory.orgs import demo_orgs_csv, parse_orgs_csv
from gateway.directory.service import DepartmentQuery, DirectoryService
from gateway.identity.principal import Principal
from storage import directory
from storage.db import create_pool
from storage.directory import Department

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ADMIN = Principal("o-admin", "管理员", "yl", frozenset({"admin"}), "jkt-admin")


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    app_pool = await create_pool(db_url, min_size=1, max_size=2)
    async with app_pool.acquire() as connection, connection.transaction():
        await directory.upsert_departments(connection, parse_orgs_csv(demo_orgs_csv()))
    try:
        yield app_pool
    finally:
        await app_pool.close()


@pytest.fixture
def service(pool: asyncpg.Pool) -> DirectoryService:
    return DirectoryService(pool, clock=lambda: NOW)


async def _events(pool: asyncpg.Pool, kind: str) -> list[asyncpg.Record]:
    async with pool.acquire() as connection:
        return await connection.fetch(
            "SELECT at, actor_official, actor_jkt, department, details FROM audit_outbox"
            " WHERE type = $1 ORDER BY id",
            kind,
        )


async def test_a_new_department_is_audited_and_a_refused_one_leaves_nothing(
    pool: asyncpg.Pool, service: DirectoryService
) -> None:
    unit = Department("yl-new", "新单位", "New Bureau", "yl", "department")
    assert await service.create_department(ADMIN, unit) == unit
    assert await service.department("yl-new") == unit
    [created] = await _events(pool, "department.created")
    assert dict(created) == {
        "at": NOW,
        "actor_official": "o-admin",
        "actor_jkt": "jkt-admin",
        "department": "yl-new",
        "details": unit.as_json(),
    }
    with pytest.raises(directory.OrgExists):
        await service.create_department(ADMIN, unit)
    with pytest.raises(directory.UnknownParent):
        await service.create_department(ADMIN, Department("zz", "x", "", "missing", "city"))
    with pytest.raises(directory.UnknownOrg):
        await service.department("zz")
    assert len(await _events(pool, "department.created")) == 1


async def test_groups_share_the_code_namespace_and_need_known_members(
    pool: asyncpg.Pool, service: DirectoryService
) -> None:
    group = await service.create_group(ADMIN, "bureaus", "两个局", ["yl-jyj", "yl-czj", "yl-jyj"])
    assert group.members == ("yl-czj", "yl-jyj")
    assert await service.group("bureaus") == group
    with pytest.raises(directory.OrgExists):
        await service.create_group(ADMIN, "yl-jyj", "clash", ["yl"])
    with pytest.raises(directory.OrgExists):
        await service.create_department(ADMIN, Department("bureaus", "x", "", None, "city"))
    # The group row and its members commit together or not at all.
    with pytest.raises(directory.UnknownRecipient):
        await service.create_group(ADMIN, "ghosts", "x", ["yl-jyj", "no-such"])
    with pytest.raises(directory.UnknownOrg):
        await service.group("ghosts")
    [event] = await _events(pool, "group.created")
    assert event["details"] == group.as_json() and event["department"] is None


async def test_department_pages(service: DirectoryService) -> None:
    counties = DepartmentQuery(parent="yl", kind="county")
    first = await service.departments(counties, after=None, limit=4)
    assert len(first.items) == 4 and first.more and first.last == first.items[-1]
    rest = await service.departments(counties, after=first.items[-1].code, limit=50)
    assert len(first.items) + len(rest.items) == 7 and not rest.more and rest.last is None
    assert {d.kind for d in first.items + rest.items} == {"county"}
    found = await service.departments(DepartmentQuery(text="50%_"), after=None, limit=10)
    assert found.items == []  # LIKE wildcards in the text are literal
