"""Rate limits on the unauthenticated login endpoints, counted in PostgreSQL.

Counters live in the database (fixed one-minute windows, one upsert per check) so every
gateway process behind the load balancer shares them; a limit kept in process memory
would multiply by the number of replicas.

Per source the limits are generous (a whole office may sit behind one NAT address); per
subject they are tight, because one official needs one challenge and one token a login.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from storage import identity
from storage.db import DbConnection


@dataclass(frozen=True)
class Limit:
    per_window: int
    window: timedelta = timedelta(minutes=1)


# (endpoint, "source" | "subject") -> limit
LIMITS: dict[tuple[str, str], Limit] = {
    ("challenge", "source"): Limit(300),
    ("challenge", "subject"): Limit(10),
    ("token", "source"): Limit(300),
    ("token", "subject"): Limit(10),
    ("enroll", "source"): Limit(60),
    ("enroll", "subject"): Limit(10),
    ("tsa", "subject"): Limit(120),
}


def configured_limits(per_source: int) -> dict[tuple[str, str], Limit]:
    """The limits with the per-address ones from ``SEALHUB_LOGIN_RATE_PER_SOURCE``."""
    return {
        key: Limit(per_source, limit.window) if key[1] == "source" else limit
        for key, limit in LIMITS.items()
    }


RATE_LIMITS: web.AppKey[dict[tuple[str, str], Limit]] = web.AppKey("rate_limits", dict)


class RateLimited(Exception):
    """Too many attempts; retry after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def window_start(now: datetime, window: timedelta) -> datetime:
    seconds = window.total_seconds()
    epoch = math.floor(now.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(epoch, now.tzinfo)


async def check(
    connection: DbConnection,
    endpoint: str,
    scope: str,
    key: str,
    *,
    now: datetime,
    limits: dict[tuple[str, str], Limit] | None = None,
) -> None:
    """Count one attempt for (endpoint, scope, key); raise RateLimited over the limit."""
    limit = (limits or LIMITS)[(endpoint, scope)]
    start = window_start(now, limit.window)
    count = await identity.bump_counter(connection, f"{endpoint}:{scope}:{key}"[:300], start)
    if count > limit.per_window:
        retry_after = max(1, math.ceil((start + limit.window - now).total_seconds()))
        raise RateLimited(f"too many {endpoint} attempts; retry later", retry_after)


VERIFY_WINDOW = timedelta(minutes=1)


async def check_verify(
    connection: DbConnection, official: str, *, now: datetime, per_minute: int
) -> None:
    """Count one ``POST /v1/verify`` of *official*; raise RateLimited over *per_minute*.

    Kept apart from the login limits: verification is authenticated and its budget is set by
    ``SEALHUB_VERIFY_RATE_PER_OFFICIAL``, so one official cannot monopolise the verify pool.
    """
    start = window_start(now, VERIFY_WINDOW)
    count = await identity.bump_counter(connection, f"verify:official:{official}"[:300], start)
    if count > per_minute:
        retry_after = max(1, math.ceil((start + VERIFY_WINDOW - now).total_seconds()))
        raise RateLimited(
            f"at most {per_minute} verifications a minute per official; retry later", retry_after
        )
