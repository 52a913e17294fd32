"""The pure rules: each fires and stops at the right instant of an injected ``now``."""

from __future__ import annotations

import uuid
from datetime import timedelta

from gateway.supervision import rules
from storage.supervision import (
    Attempts,
    DeadLetters,
    OpenDelivery,
    PendingApprovalStep,
    RefusedSealUse,
)
from tests.supervision.conftest import T0

SECOND = timedelta(seconds=1)
CONFIG = rules.RuleConfig(
    approval_overdue=timedelta(hours=24),
    burst_window=timedelta(minutes=10),
    failed_login_burst=5,
    denied_access_burst=3,
    revoked_seal_alert_for=timedelta(hours=24),
)


def delivery(due_in: timedelta) -> OpenDelivery:
    return OpenDelivery(
        id=uuid.uuid4(),
        document=uuid.uuid4(),
        recipient="yl-jyj",
        sender="yl-bgs",
        doc_number="玉政办发〔2026〕1号",
        urgency="urgent",
        due_at=T0 + due_in,
    )


def keys(verdict: rules.Verdict) -> set[tuple[str, str]]:
    return set(verdict.hits)


def test_delivery_overdue_only_after_its_due_instant() -> None:
    late = delivery(timedelta(hours=24))
    facts = rules.Facts(overdue_deliveries=[late])
    due = T0 + timedelta(hours=24)
    assert rules.evaluate(facts, due - SECOND, CONFIG).hits == {}
    assert rules.evaluate(facts, due, CONFIG).hits == {}  # signing at the due time is in time
    verdict = rules.evaluate(facts, due + SECOND, CONFIG)
    hit = verdict.hits[(rules.DELIVERY_OVERDUE, f"delivery:{late.id}")]
    assert hit.department == "yl-jyj"
    assert hit.document == str(late.document)
    assert hit.details["due_at"] == "2026-03-03T09:00:00Z"
    # Signed for: the delivery is no longer among the facts, so nothing should be open.
    signed = rules.evaluate(rules.Facts(overdue_deliveries=[]), due + SECOND, CONFIG)
    assert signed.hits == {} and rules.DELIVERY_OVERDUE in signed.rules


def test_approval_step_overdue_after_the_configured_time() -> None:
    step = PendingApprovalStep("doc-1", 2, "会签", "yl-bgs", T0)
    facts = rules.Facts(pending_approval_steps=[step])
    limit = T0 + CONFIG.approval_overdue
    assert rules.evaluate(facts, limit, CONFIG).hits == {}
    hit = rules.evaluate(facts, limit + SECOND, CONFIG).hits[
        (rules.APPROVAL_STEP_OVERDUE, "approval:doc-1:2")
    ]
    assert hit.department == "yl-bgs" and hit.details["step"] == 2
    shorter = rules.RuleConfig(approval_overdue=timedelta(hours=1))
    assert keys(rules.evaluate(facts, T0 + timedelta(hours=1, seconds=1), shorter))


def test_failed_login_burst_per_official_and_per_source() -> None:
    minute = T0.replace(second=0)
    attempts = [
        Attempts(minute, "10.0.0.7", "official-1", "yl-jyj", 3),
        Attempts(minute + timedelta(minutes=2), "10.0.0.7", "official-1", "yl-jyj", 2),
        Attempts(minute + timedelta(minutes=2), "10.0.0.8", "official-2", "yl-gaj", 1),
    ]
    facts = rules.Facts(failed_logins=attempts)
    # Before the second minute's counter exists: 3 < 5.
    assert rules.evaluate(rules.Facts(failed_logins=attempts[:1]), minute, CONFIG).hits == {}
    now = minute + timedelta(minutes=2)
    verdict = rules.evaluate(facts, now, CONFIG)
    assert keys(verdict) == {
        (rules.FAILED_LOGIN_BURST, "official:official-1"),
        (rules.FAILED_LOGIN_BURST, "source:10.0.0.7"),
    }
    assert verdict.hits[(rules.FAILED_LOGIN_BURST, "official:official-1")].department == "yl-jyj"
    assert verdict.hits[(rules.FAILED_LOGIN_BURST, "source:10.0.0.7")].department is None
    assert verdict.hits[(rules.FAILED_LOGIN_BURST, "source:10.0.0.7")].details["count"] == 5
    # The first counter leaves the 10-minute window: 2 left, the burst is over.
    assert rules.evaluate(facts, minute + timedelta(minutes=10), CONFIG).hits
    assert rules.evaluate(facts, minute + timedelta(minutes=10) + SECOND, CONFIG).hits == {}


def test_denied_access_burst_counts_events_and_counters() -> None:
    attempts = [
        Attempts(T0, "10.0.0.9", "official-3", "yl-gaj"),
        Attempts(T0 + SECOND, "10.0.0.9", "official-3", "yl-gaj"),
        Attempts(T0 + 2 * SECOND, "10.0.0.9", None, None, 1),  # a bad token: source only
    ]
    facts = rules.Facts(denied_accesses=attempts)
    verdict = rules.evaluate(facts, T0 + 2 * SECOND, CONFIG)
    assert keys(verdict) == {(rules.DENIED_ACCESS_BURST, "source:10.0.0.9")}
    more = rules.Facts(denied_accesses=[*attempts, Attempts(T0, None, "official-3", "yl-gaj")])
    assert (rules.DENIED_ACCESS_BURST, "official:official-3") in keys(
        rules.evaluate(more, T0 + 2 * SECOND, CONFIG)
    )
    # Events from the future of an injected clock do not count yet.
    assert rules.evaluate(facts, T0 + SECOND, CONFIG).hits == {}


def test_revoked_seal_use_stays_open_for_the_configured_time_after_the_last_try() -> None:
    tries = [
        RefusedSealUse(T0, "seal-1", "yl-gaj"),
        RefusedSealUse(T0 + timedelta(hours=1), "seal-1", "yl-gaj"),
    ]
    facts = rules.Facts(refused_seal_uses=tries)
    hit = rules.evaluate(facts, T0 + timedelta(hours=1), CONFIG).hits[
        (rules.REVOKED_SEAL_USE, "seal:seal-1")
    ]
    assert hit.department == "yl-gaj" and hit.details["attempts"] == 2
    assert hit.details["last_at"] == "2026-03-02T10:00:00Z"
    assert rules.evaluate(facts, T0 + timedelta(hours=25), CONFIG).hits
    assert rules.evaluate(facts, T0 + timedelta(hours=25) + SECOND, CONFIG).hits == {}


def test_webhook_dead_letters_while_any_is_left() -> None:
    facts = rules.Facts(dead_letters=[DeadLetters("hook-1", "yl-jyj", 3, T0)])
    hit = rules.evaluate(facts, T0, CONFIG).hits[(rules.WEBHOOK_DEAD_LETTERS, "webhook:hook-1")]
    assert hit.department == "yl-jyj" and hit.details["count"] == 3
    drained = rules.Facts(dead_letters=[DeadLetters("hook-1", "yl-jyj", 0, T0)])
    assert rules.evaluate(drained, T0, CONFIG).hits == {}


def test_facts_not_gathered_leave_their_rule_out() -> None:
    verdict = rules.evaluate(rules.Facts(overdue_deliveries=[]), T0, CONFIG)
    assert verdict.rules == frozenset({rules.DELIVERY_OVERDUE})
    everything = rules.Facts(
        overdue_deliveries=[],
        pending_approval_steps=[],
        failed_logins=[],
        denied_accesses=[],
        refused_seal_uses=[],
        dead_letters=[],
    )
    assert rules.evaluate(everything, T0, CONFIG).rules == frozenset(rules.RULES)
