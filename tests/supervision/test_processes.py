"""Two evaluator processes on one database: one evaluates, the other takes over when the
first is killed (PostgreSQL drops a dead session's advisory lock)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import asyncpg

from gateway.supervision.service import EVALUATOR_LOCK_KEY
from tests.conftest import REPO


class Child:
    def __init__(self, db_url: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.supervision._children", db_url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def wait_for(self, prefix: str, timeout: float) -> str | None:
        """The next line starting with *prefix* within *timeout* seconds, else None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line.startswith(prefix):
                return line
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


async def lock_holders(db_url: str) -> int:
    connection = await asyncpg.connect(db_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objid = $1 AND database = (SELECT oid FROM pg_database"
            " WHERE datname = current_database())",
            EVALUATOR_LOCK_KEY & 0xFFFFFFFF,
        )
        return count
    finally:
        await connection.close()


async def test_one_evaluator_at_a_time_and_takeover_when_it_dies(db_url: str) -> None:
    first = Child(db_url)
    second: Child | None = None
    try:
        assert first.wait_for("EVALUATED", 60) is not None, "the first process never evaluated"
        second = Child(db_url)
        assert second.wait_for("STARTED", 60) == "STARTED"
        # Both run; the second tries the lock every 0.2 s and never gets it while the
        # first lives, although the first keeps evaluating.
        assert second.wait_for("EVALUATED", 2.0) is None
        assert first.wait_for("EVALUATED", 5) is not None
        assert await lock_holders(db_url) == 1
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        assert second.wait_for("EVALUATED", 30) is not None, "nobody took over"
        assert await lock_holders(db_url) == 1
    finally:
        first.stop()
        if second is not None:
            second.stop()
