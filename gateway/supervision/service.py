"""The supervision evaluator: one pass gathers facts, applies the pure rules, and reconciles
the answer with the stored alerts; a background task runs passes in exactly one process.

Every gateway process runs :class:`SupervisionService`; only the holder of the evaluator
advisory lock (a session lock on the very connection that runs the passes) evaluates. The
others try the lock every few seconds, so when the holder dies (its connection closes and
PostgreSQL drops the lock) another process takes over. Each opened or closed alert is an
audit event committed in the same transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg
from aiohttp import web

from gateway.background import LeaderLoop, run_with_app
from gateway.config import SupervisionSettings
from gateway.runtime import RUNTIME, clock_of
from gateway.supervision import rules
from keys.clock import SYSTEM_CLOCK, Clock
from storage import audit_events as events
from storage import supervision as store
from storage.audit_outbox import AuditEvent, record_events
from storage.db import DbConnection

log = logging.getLogger("sealhub.supervision")

EVALUATOR_LOCK_KEY = 0x5EA1_5E4F
CLOSED_BECAUSE = "cause_gone"
MAX_LOCK_RETRY = 5.0

T = TypeVar("T")
StepSource = Callable[[DbConnection, datetime], Awaitable[Sequence[store.PendingApprovalStep]]]
DeadLetterSource = Callable[[DbConnection, datetime], Awaitable[Sequence[store.DeadLetters]]]


@dataclass(frozen=True)
class Sources:
    """Queries for rules whose tables belong to other parts (the approval workflow, the
    webhook queue). ``None``, or a query whose table does not exist: not wired, the rule is
    not evaluated and its alerts stay as they are."""

    pending_approval_steps: StepSource | None = None
    dead_letters: DeadLetterSource | None = None


WIRED = Sources(
    pending_approval_steps=store.pending_approval_steps, dead_letters=store.dead_letters
)


@dataclass(frozen=True)
class PassResult:
    now: datetime
    rules: frozenset[str]
    opened: list[store.Alert] = field(default_factory=list)
    closed: list[store.Alert] = field(default_factory=list)


async def gather_facts(
    connection: DbConnection, now: datetime, config: rules.RuleConfig, sources: Sources
) -> rules.Facts:
    since = now - config.lookback

    async def optional(source: Callable[[DbConnection, datetime], Awaitable[T]] | None) -> T | None:
        if source is None:
            return None
        try:
            return await source(connection, now)
        except asyncpg.UndefinedTableError:
            log.warning("a supervision rule's table is missing; the rule is skipped")
            return None

    return rules.Facts(
        overdue_deliveries=await store.overdue_deliveries(connection, now),
        failed_logins=await store.failed_logins(connection, now - config.burst_window, now),
        denied_accesses=await store.denied_accesses(connection, now - config.burst_window, now),
        refused_seal_uses=await store.refused_seal_uses(connection, since, now),
        pending_approval_steps=await optional(sources.pending_approval_steps),
        dead_letters=await optional(sources.dead_letters),
    )


async def evaluate_once(
    connection: DbConnection,
    now: datetime,
    config: rules.RuleConfig,
    sources: Sources | None = None,
) -> PassResult:
    """One pass at *now*: open alerts for new hits, close live alerts no longer hit."""
    facts = await gather_facts(connection, now, config, WIRED if sources is None else sources)
    verdict = rules.evaluate(facts, now, config)
    result = PassResult(now, verdict.rules)
    changes: list[AuditEvent] = []
    async with connection.transaction():
        live = {
            (alert.rule, alert.subject): alert
            for alert in await store.live_alerts(connection, sorted(verdict.rules))
        }
        for key, alert in live.items():
            if key in verdict.hits:
                continue
            closed = await store.close_alert(connection, alert.id, now=now, reason=CLOSED_BECAUSE)
            if closed is not None:
                result.closed.append(closed)
                changes.append(events.alert_closed(now, closed, reason=CLOSED_BECAUSE))
        for key, hit in verdict.hits.items():
            if key in live:
                continue
            opened = await store.open_alert(
                connection,
                rule=hit.rule,
                subject=hit.subject,
                department=hit.department,
                details=dict(hit.details),
                now=now,
            )
            if opened is not None:
                result.opened.append(opened)
                changes.append(
                    events.alert_opened(
                        now,
                        department=opened.department,
                        alert=opened.id,
                        rule=opened.rule,
                        subject=opened.subject,
                        details=opened.details,
                        document=events.alert_document(opened),
                    )
                )
        if changes:
            await record_events(connection, changes)
    return result


class SupervisionService:
    """The evaluation loop, in the process that leads the evaluator lock; :meth:`run` until
    cancelled."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: rules.RuleConfig,
        *,
        interval: float,
        clock: Clock = SYSTEM_CLOCK,
        sources: Sources | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sources = WIRED if sources is None else sources
        self.passes = 0
        self.loop = LeaderLoop(
            EVALUATOR_LOCK_KEY,
            self._step,
            interval,
            acquire=pool.acquire,
            name="supervision-evaluator",
            retry=min(interval, MAX_LOCK_RETRY),
            logger=log,
        )

    def __repr__(self) -> str:
        return f"SupervisionService(evaluator={self.is_evaluator}, passes={self.passes})"

    @property
    def is_evaluator(self) -> bool:
        return self.loop.is_leader

    def wake(self) -> None:
        """Evaluate now instead of at the end of the interval (holder only)."""
        self.loop.wake()

    async def run(self) -> None:
        await self.loop.run()

    async def _step(self, connection: DbConnection) -> None:
        result = await evaluate_once(connection, self._clock(), self._config, self._sources)
        self.passes += 1
        if result.opened or result.closed:
            log.info(
                "supervision pass",
                extra={"opened": len(result.opened), "closed": len(result.closed)},
            )


SUPERVISION: web.AppKey[SupervisionService] = web.AppKey("supervision", SupervisionService)


def rule_config(settings: SupervisionSettings) -> rules.RuleConfig:
    return rules.RuleConfig(
        approval_overdue=timedelta(hours=settings.approval_overdue_hours),
        burst_window=timedelta(minutes=settings.burst_window_minutes),
        failed_login_burst=settings.failed_login_burst,
        denied_access_burst=settings.denied_access_burst,
        revoked_seal_alert_for=timedelta(hours=settings.revoked_seal_alert_hours),
    )


def install_supervision(app: web.Application, sources: Sources | None = None) -> None:
    """Register the evaluator and its background task (call from ``create_app``)."""
    runtime = app[RUNTIME]
    settings = runtime.settings.supervision
    service = SupervisionService(
        runtime.pool,
        rule_config(settings),
        interval=settings.interval_seconds,
        clock=clock_of(app),
        sources=sources,
    )
    app[SUPERVISION] = service
    run_with_app(app, service.loop)
