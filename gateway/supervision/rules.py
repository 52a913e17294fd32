"""The supervision rules (电子监察): pure functions from facts and a time to the alerts that
should be open at that time.

No I/O and no clock here: the evaluator (gateway/supervision/service.py) gathers the facts, calls
:func:`evaluate` with its ``now`` and reconciles the answer with the stored alerts, opening
what is new and closing what is no longer hit. So an alert closes exactly when its cause
goes away: the receipt arrives, the step is decided, the burst leaves the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage.supervision import (
    KEY_ADDED_BY_OTHER,
    Attempts,
    DeadLetters,
    OpenDelivery,
    PendingApprovalStep,
    RefusedSealUse,
)

DELIVERY_OVERDUE = "delivery_overdue"
APPROVAL_STEP_OVERDUE = "approval_step_overdue"
FAILED_LOGIN_BURST = "failed_login_burst"
DENIED_ACCESS_BURST = "denied_access_burst"
REVOKED_SEAL_USE = "revoked_seal_use"
WEBHOOK_DEAD_LETTERS = "webhook_dead_letters"
RULES = (
    DELIVERY_OVERDUE,
    APPROVAL_STEP_OVERDUE,
    FAILED_LOGIN_BURST,
    DENIED_ACCESS_BURST,
    REVOKED_SEAL_USE,
    WEBHOOK_DEAD_LETTERS,
)
# Every rule an alert may carry: the evaluated ones and those raised by an act itself.
ALERT_RULES = (*RULES, KEY_ADDED_BY_OTHER)


@dataclass(frozen=True)
class RuleConfig:
    """Thresholds (gateway/config.py's supervision settings)."""

    approval_overdue: timedelta = timedelta(hours=24)
    burst_window: timedelta = timedelta(minutes=10)
    failed_login_burst: int = 10
    denied_access_burst: int = 20
    revoked_seal_alert_for: timedelta = timedelta(hours=24)

    @property
    def lookback(self) -> timedelta:
        """How far back event-based rules look."""
        return max(self.burst_window, self.revoked_seal_alert_for)


@dataclass(frozen=True)
class Hit:
    """An alert that should be open: one per (rule, subject)."""

    rule: str
    subject: str
    department: str | None
    document: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.rule, self.subject


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def overdue_deliveries(deliveries: Iterable[OpenDelivery], now: datetime) -> list[Hit]:
    """Not signed for in time: still open after its due time (the document's deadline, else
    by urgency, ``SEALHUB_SIGN_FOR_*_HOURS``, 2 h / 24 h / 72 h by default, fixed when it was
    sent). Signed for at the due instant is in time, as in the on-time rate."""
    return [
        Hit(
            DELIVERY_OVERDUE,
            f"delivery:{d.id}",
            d.recipient,
            document=str(d.document),
            details={
                "delivery": str(d.id),
                "document": str(d.document),
                "doc_number": d.doc_number,
                "sender": d.sender,
                "recipient": d.recipient,
                "urgency": d.urgency,
                "due_at": _iso(d.due_at),
            },
        )
        for d in deliveries
        if d.due_at < now
    ]


def overdue_approval_steps(
    steps: Iterable[PendingApprovalStep], now: datetime, limit: timedelta
) -> list[Hit]:
    """An approval step still waiting ``limit`` after it started."""
    return [
        Hit(
            APPROVAL_STEP_OVERDUE,
            f"approval:{s.document}:{s.step}",
            s.department,
            document=s.document,
            details={
                "document": s.document,
                "step": s.step,
                "name": s.name,
                "started_at": _iso(s.started_at),
                "due_at": _iso(s.started_at + limit),
            },
        )
        for s in steps
        if s.started_at + limit < now
    ]


def _in_window(at: datetime, now: datetime, window: timedelta) -> bool:
    return now - window <= at <= now


def bursts(
    rule: str,
    attempts: Iterable[Attempts],
    now: datetime,
    *,
    window: timedelta,
    threshold: int,
) -> list[Hit]:
    """At least ``threshold`` attempts within ``window`` before ``now``, per official and per
    source address. Per-minute counters count when their minute starts in the window."""
    by_official: dict[str, int] = {}
    department_of: dict[str, str | None] = {}
    by_source: dict[str, int] = {}
    for attempt in attempts:
        if not _in_window(attempt.at, now, window):
            continue
        if attempt.official:
            by_official[attempt.official] = by_official.get(attempt.official, 0) + attempt.count
            department_of[attempt.official] = attempt.department or department_of.get(
                attempt.official
            )
        if attempt.source:
            by_source[attempt.source] = by_source.get(attempt.source, 0) + attempt.count
    window_minutes = int(window.total_seconds() // 60)
    hits = [
        Hit(
            rule,
            f"official:{official}",
            department_of.get(official),
            details={"official": official, "count": count, "window_minutes": window_minutes},
        )
        for official, count in sorted(by_official.items())
        if count >= threshold
    ]
    hits.extend(
        # A source address is nobody's department: platform-wide, for inspectors.
        Hit(
            rule,
            f"source:{source}",
            None,
            details={"source": source, "count": count, "window_minutes": window_minutes},
        )
        for source, count in sorted(by_source.items())
        if count >= threshold
    )
    return hits


def revoked_seal_uses(
    refusals: Iterable[RefusedSealUse], now: datetime, alert_for: timedelta
) -> list[Hit]:
    """Someone tried to seal with a revoked seal: open until ``alert_for`` after the last try."""
    last: dict[str, RefusedSealUse] = {}
    tries: dict[str, int] = {}
    for refusal in refusals:
        if not _in_window(refusal.at, now, alert_for):
            continue
        tries[refusal.seal_id] = tries.get(refusal.seal_id, 0) + 1
        if refusal.seal_id not in last or refusal.at > last[refusal.seal_id].at:
            last[refusal.seal_id] = refusal
    return [
        Hit(
            REVOKED_SEAL_USE,
            f"seal:{seal_id}",
            refusal.department,
            details={"seal_id": seal_id, "attempts": tries[seal_id], "last_at": _iso(refusal.at)},
        )
        for seal_id, refusal in sorted(last.items())
    ]


def webhook_dead_letters(backlogs: Iterable[DeadLetters]) -> list[Hit]:
    """A webhook with dead letters nobody replayed or discarded yet."""
    return [
        Hit(
            WEBHOOK_DEAD_LETTERS,
            f"webhook:{b.webhook}",
            b.department,
            details={"webhook": b.webhook, "count": b.count, "oldest_at": _iso(b.oldest_at)},
        )
        for b in backlogs
        if b.count > 0
    ]


@dataclass(frozen=True)
class Facts:
    """What the evaluator gathered; ``None`` means "not gathered": that rule is not
    evaluated, and its alerts are neither opened nor closed."""

    overdue_deliveries: Sequence[OpenDelivery] | None = None
    pending_approval_steps: Sequence[PendingApprovalStep] | None = None
    failed_logins: Sequence[Attempts] | None = None
    denied_accesses: Sequence[Attempts] | None = None
    refused_seal_uses: Sequence[RefusedSealUse] | None = None
    dead_letters: Sequence[DeadLetters] | None = None


@dataclass(frozen=True)
class Verdict:
    rules: frozenset[str]
    hits: dict[tuple[str, str], Hit]


def evaluate(facts: Facts, now: datetime, config: RuleConfig) -> Verdict:
    """Every alert that should be open at *now*, keyed by (rule, subject)."""
    rules: set[str] = set()
    hits: list[Hit] = []
    if facts.overdue_deliveries is not None:
        rules.add(DELIVERY_OVERDUE)
        hits += overdue_deliveries(facts.overdue_deliveries, now)
    if facts.pending_approval_steps is not None:
        rules.add(APPROVAL_STEP_OVERDUE)
        hits += overdue_approval_steps(facts.pending_approval_steps, now, config.approval_overdue)
    if facts.failed_logins is not None:
        rules.add(FAILED_LOGIN_BURST)
        hits += bursts(
            FAILED_LOGIN_BURST,
            facts.failed_logins,
            now,
            window=config.burst_window,
            threshold=config.failed_login_burst,
        )
    if facts.denied_accesses is not None:
        rules.add(DENIED_ACCESS_BURST)
        hits += bursts(
            DENIED_ACCESS_BURST,
            facts.denied_accesses,
            now,
            window=config.burst_window,
            threshold=config.denied_access_burst,
        )
    if facts.refused_seal_uses is not None:
        rules.add(REVOKED_SEAL_USE)
        hits += revoked_seal_uses(facts.refused_seal_uses, now, config.revoked_seal_alert_for)
    if facts.dead_letters is not None:
        rules.add(WEBHOOK_DEAD_LETTERS)
        hits += webhook_dead_letters(facts.dead_letters)
    return Verdict(frozenset(rules), {hit.key: hit for hit in hits})
