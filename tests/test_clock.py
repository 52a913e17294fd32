"""The one clock: the wall clock by default, the app's injected clock when a test sets one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.runtime import CLOCK, clock_of
from keys.clock import SYSTEM_CLOCK


def test_the_system_clock_is_aware_utc_and_now() -> None:
    before = datetime.now(UTC)
    now = SYSTEM_CLOCK()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_the_apps_clock_follows_a_clock_injected_after_the_services_took_it() -> None:
    app = web.Application()
    clock = clock_of(app)  # what create_app hands to the services and loops
    assert abs(clock() - datetime.now(UTC)) < timedelta(seconds=5)
    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    app[CLOCK] = lambda: fixed
    assert clock() == fixed
