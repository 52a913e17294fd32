"""One reusable event loop per thread for pyhanko's coroutines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_loops = threading.local()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run without its per-call loop set-up and signal handling (a hot path).

    Like asyncio.run it refuses to run inside a thread whose loop is already running.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
    return loop.run_until_complete(coro)
