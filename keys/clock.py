"""What time it is: one ``Clock`` type, injected wherever "now" matters.

A clock is anything called without arguments that returns an aware UTC ``datetime``, so a
test passes a lambda or an object whose time it moves. Code that needs "now" takes a
``Clock`` (default :data:`SYSTEM_CLOCK`) or a ``now`` argument, and never calls
``datetime.now`` itself. Here in keys/, the lowest package, so that keys/, storage/ and
the gateway share it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()
