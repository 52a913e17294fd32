"""The clock services read: ``keys.clock``'s, under the names the services import.

New code imports ``Clock`` and ``SYSTEM_CLOCK`` from keys/clock.py directly.
"""

from __future__ import annotations

from keys.clock import SYSTEM_CLOCK, Clock

__all__ = ["Clock", "utc_now"]

utc_now: Clock = SYSTEM_CLOCK
