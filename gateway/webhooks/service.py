"""Webhooks as departments and admins manage them: registrations, dead letters and their
replay, the admins' allow-list of targets and the retry policy.

Each change is one transaction with its audit event. A registration must name a target on
the allow-list whose name resolves only to addresses that entry allows (each delivery
checks again: gateway/webhooks/worker.py); its secret is shown once and kept wrapped
under the master key.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.identity.principal import Principal
from gateway.paging import Page
from gateway.webhooks.worker import (
    Resolver,
    Target,
    TargetNotAllowed,
    pin_address,
    system_resolver,
    wrap_secret,
)
from keys.clock import SYSTEM_CLOCK, Clock
from keys.master import MasterKey
from storage import audit_events as events
from storage import webhooks as rows
from storage.audit_outbox import AuditSink, OutboxSink
from storage.webhooks import AllowEntry, DeadLetter, Policy, Webhook, WebhookStoreError

MAX_WEBHOOKS_PER_DEPARTMENT = 10
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


class WebhookExists(WebhookStoreError):
    code = "already_exists"


class TooManyWebhooks(WebhookStoreError):
    code = "conflict"


class UnknownWebhookResource(WebhookStoreError):
    """No such webhook, dead letter or allow-list entry (for this department)."""

    code = "not_found"

    def __init__(self) -> None:
        super().__init__("no such resource")


@dataclass(frozen=True)
class NewWebhook:
    webhook: Webhook
    secret: str


@dataclass(frozen=True)
class NewAllowEntry:
    host: str
    port: int
    allow_private: bool
    note: str


class WebhookService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        master_key: MasterKey,
        *,
        resolver: Resolver = system_resolver,
        clock: Clock = SYSTEM_CLOCK,
        audit: AuditSink | None = None,
        max_per_department: int = MAX_WEBHOOKS_PER_DEPARTMENT,
    ) -> None:
        self._pool = pool
        self._master_key = master_key
        self._resolver = resolver
        self._clock = clock
        self._audit = audit or OutboxSink()
        self._max_per_department = max_per_department

    # --- a department's webhooks --------------------------------------------------------

    async def create(
        self, actor: Principal, department: str, target: Target, description: str
    ) -> NewWebhook:
        """Register *target* for *department*; the returned secret is never shown again."""
        async with self._pool.acquire() as connection:
            entry = await rows.allowed_entry(connection, target.host, target.port)
        if entry is None:
            raise TargetNotAllowed(f"{target.host}:{target.port} is not on the admins' allow-list")
        # Fail early on a name that answers with a refused address (each delivery checks again).
        await pin_address(target, self._resolver, allow_private=entry.allow_private)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        webhook_id = uuid.uuid4()
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            # Every delivery to the department enqueues a job per webhook inside the sender's
            # transaction: a bounded, duplicate-free set keeps other departments' sends fast.
            active, same_url = await rows.active_webhooks(connection, department, target.url)
            if same_url:
                raise WebhookExists("this department already has a webhook for that url")
            if active >= self._max_per_department:
                raise TooManyWebhooks(
                    f"a department may have at most {self._max_per_department} webhooks"
                )
            webhook = await rows.insert_webhook(
                connection,
                webhook_id=webhook_id,
                department=department,
                url=target.url,
                host=target.host,
                port=target.port,
                secret_wrapped=wrap_secret(self._master_key, webhook_id, secret),
                description=description,
                created_by=actor.official_id,
                now=now,
            )
            event = events.webhook_created(
                actor, now, department=department, webhook=webhook_id, url=target.url
            )
            await self._audit.record(connection, event)
        return NewWebhook(webhook, secret)

    async def webhooks(self, department: str) -> list[Webhook]:
        async with self._pool.acquire() as connection:
            return await rows.list_webhooks(connection, department)

    async def delete(self, actor: Principal, department: str, webhook_id: uuid.UUID) -> None:
        """Stop a webhook: its pending jobs are not attempted any more."""
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            if not await rows.delete_webhook(connection, webhook_id, department, now):
                raise UnknownWebhookResource()
            event = events.webhook_deleted(actor, now, department=department, webhook=webhook_id)
            await self._audit.record(connection, event)

    async def dead_letters(
        self,
        department: str,
        *,
        before: datetime | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> Page[DeadLetter]:
        """Newest first; the page after (*before*, *after_id*) when both are given."""
        async with self._pool.acquire() as connection:
            found = await rows.dead_letters(
                connection, department, limit=limit + 1, before=before, after_id=after_id
            )
        return Page.of(found, limit)

    async def replay(self, actor: Principal, department: str, job_id: uuid.UUID) -> None:
        """A dead letter back in the queue under its id, so the receiver can deduplicate."""
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            replayed = await rows.replay(connection, job_id, department, now)
            if replayed is None:
                raise UnknownWebhookResource()
            event = events.webhook_replayed(
                actor,
                now,
                department=department,
                job=job_id,
                webhook=replayed.webhook,
                delivery=replayed.delivery,
            )
            await self._audit.record(connection, event)

    # --- the admins' allow-list and retry policy --------------------------------------------

    async def allow_list(self) -> list[AllowEntry]:
        async with self._pool.acquire() as connection:
            return await rows.list_allowed(connection)

    async def allow(self, actor: Principal, new: NewAllowEntry) -> AllowEntry:
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            entry = await rows.add_allowed(
                connection,
                host=new.host,
                port=new.port,
                allow_private=new.allow_private,
                note=new.note,
                added_by=actor.official_id,
                now=now,
            )
            event = events.webhook_allowlist_added(
                actor,
                now,
                department=actor.department,
                entry=entry.id,
                host=new.host,
                port=new.port,
                allow_private=new.allow_private,
            )
            await self._audit.record(connection, event)
        return entry

    async def disallow(self, actor: Principal, entry_id: uuid.UUID) -> None:
        """Remove an entry: webhooks to its host and port stop being attempted."""
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            entry = await rows.remove_allowed(connection, entry_id)
            if entry is None:
                raise UnknownWebhookResource()
            event = events.webhook_allowlist_removed(
                actor,
                now,
                department=actor.department,
                entry=entry.id,
                host=entry.host,
                port=entry.port,
            )
            await self._audit.record(connection, event)

    async def policy(self) -> Policy:
        async with self._pool.acquire() as connection:
            return await rows.get_policy(connection)

    async def set_policy(self, actor: Principal, policy: Policy) -> Policy:
        """The retry policy for every gateway process (the workers read it per attempt)."""
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            await rows.set_policy(connection, policy, updated_by=actor.official_id, now=now)
            event = events.webhook_policy_changed(
                actor, now, department=actor.department, policy=policy
            )
            await self._audit.record(connection, event)
        return policy
