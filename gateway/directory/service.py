"""The directory: organisation units and distribution groups, read by every official and
extended by admins.

Each addition is one transaction with its audit event. Department and group codes share one
namespace (storage/directory.py serialises additions), so a code is refused as
``already_exists`` whichever table already holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from gateway.identity.principal import Principal
from gateway.paging import Page
from keys.clock import SYSTEM_CLOCK, Clock
from storage import audit_events as events
from storage import directory
from storage.audit_outbox import AuditSink, OutboxSink
from storage.directory import Department, Group


@dataclass(frozen=True)
class DepartmentQuery:
    """Filters of the department list; ``text`` is found in the code or either name."""

    parent: str | None = None
    kind: str | None = None
    text: str | None = None


class DirectoryService:
    def __init__(
        self, pool: asyncpg.Pool, *, clock: Clock = SYSTEM_CLOCK, audit: AuditSink | None = None
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._audit = audit or OutboxSink()

    async def departments(
        self, query: DepartmentQuery, *, after: str | None, limit: int
    ) -> Page[Department]:
        """Units in code order after the code ``after``."""
        async with self._pool.acquire() as connection:
            found = await directory.list_departments(
                connection,
                parent=query.parent,
                kind=query.kind,
                query=query.text,
                after=after,
                limit=limit + 1,
            )
        return Page.of(found, limit)

    async def department(self, code: str) -> Department:
        async with self._pool.acquire() as connection:
            return await directory.get_department(connection, code)

    async def groups(self, *, after: str | None, limit: int) -> Page[Group]:
        async with self._pool.acquire() as connection:
            found = await directory.list_groups(connection, after=after, limit=limit + 1)
        return Page.of(found, limit)

    async def group(self, code: str) -> Group:
        async with self._pool.acquire() as connection:
            return await directory.get_group(connection, code)

    async def create_department(self, actor: Principal, department: Department) -> Department:
        """A new unit under an existing parent (or none), audited as ``department.created``."""
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            await directory.create_department(connection, department)
            event = events.department_created(actor, now, department=department)
            await self._audit.record(connection, event)
        return department

    async def create_group(
        self, actor: Principal, code: str, name: str, members: Sequence[str]
    ) -> Group:
        """A group of existing units (members de-duplicated), audited as ``group.created``."""
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            group = await directory.create_group(connection, code, name, members)
            await self._audit.record(connection, events.group_created(actor, now, group=group))
        return group
