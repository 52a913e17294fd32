"""Rate limits on the unauthenticated login endpoints, counted in PostgreSQL.

Counters live in the database (fixed one-minute windows, one upsert per check) so every
gateway process behind the load balancer shares them; a limit kept in process memory
would multiply by the number of replicas.

Per source the limits are generous (a whole office may sit behind one NAT address) and they
slow a source down rather than lock it out: past the limit each attempt waits its share of
the window (at most MAX_BACKOFF_SECONDS), so a flood from one address costs the flooder time
and cannot shut out the office that shares it. Per subject the limit is tight (one official
needs one token a login) and refuses with 429, but it is counted only once the caller has
proved it holds the official's key: naming an official id costs that official nothing.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from keys.codes import Code, CodedError
from storage import identity
from storage.db import DbConnection


@dataclass(frozen=True)
class Limit:
    per_window: int
    window: timedelta = timedelta(minutes=1)


# (endpoint, "source" | "subject") -> limit
LIMITS: dict[tuple[str, str], Limit] = {
    ("challenge", "source"): Limit(300),
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


# The longest wait a source is made to sit out for one attempt over its limit.
MAX_BACKOFF_SECONDS = 2.0

RATE_LIMITS: web.AppKey[dict[tuple[str, str], Limit]] = web.AppKey("rate_limits", dict)


class RateLimited(CodedError):
    """Too many attempts; retry after ``retry_after`` seconds."""

    code = Code.RATE_LIMITED

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
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
    """Count one attempt for (endpoint, scope, key); raise RateLimited over the limit.

    Only for per-subject limits: sources are paced with :func:`pace_source`.
    """
    if scope == "source":
        raise ValueError("per-source limits slow down, they do not refuse: use pace_source")
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


async def pace_source(
    pool: asyncpg.Pool,
    endpoint: str,
    source: str,
    *,
    now: datetime,
    limits: dict[tuple[str, str], Limit] | None = None,
) -> None:
    """Count one attempt from *source* and, past the limit, make it wait before it is served:
    ``window / limit`` for every attempt over, at most MAX_BACKOFF_SECONDS. The wait happens
    after the database connection went back to the pool, so waiting floods hold no connection.
    """
    limit = (limits or LIMITS)[(endpoint, "source")]
    start = window_start(now, limit.window)
    async with pool.acquire() as connection:
        count = await identity.bump_counter(connection, f"{endpoint}:source:{source}"[:300], start)
    excess = count - limit.per_window
    if excess > 0:
        share = limit.window.total_seconds() / limit.per_window
        await asyncio.sleep(min(MAX_BACKOFF_SECONDS, excess * share))
