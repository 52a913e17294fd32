"""The PostgreSQL side of login state: shared rate counters, replay table, nonce secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.http.ratelimit import Limit, RateLimited, check
from keys.master import MasterKey
from storage import identity
from storage.db import create_pool

NOW = datetime(2026, 11, 26, 9, 0, 30, tzinfo=UTC)


async def test_rate_limit_is_shared_and_resets_with_the_window(db_url: str) -> None:
    limits = {("token", "subject"): Limit(3)}
    # Two pools stand for two gateway processes: the counter is in the database.
    first, second = await create_pool(db_url, min_size=1), await create_pool(db_url, min_size=1)
    try:
        for pool in (first, second, first):
            async with pool.acquire() as connection:
                await check(connection, "token", "subject", "official-1", now=NOW, limits=limits)
        async with second.acquire() as connection:
            with pytest.raises(RateLimited) as refused:
                await check(connection, "token", "subject", "official-1", now=NOW, limits=limits)
            assert refused.value.retry_after == 30
            await check(connection, "token", "subject", "official-2", now=NOW, limits=limits)
            later = NOW + timedelta(seconds=30)
            await check(connection, "token", "subject", "official-1", now=later, limits=limits)
            # Sources are paced, never refused: check() does not take them.
            with pytest.raises(ValueError, match="pace_source"):
                await check(connection, "token", "source", "10.0.0.1", now=later, limits=limits)
    finally:
        await first.close()
        await second.close()


async def test_single_use_values_and_purge(db_url: str) -> None:
    pool = await create_pool(db_url, min_size=1)
    try:
        async with pool.acquire() as connection:
            until = NOW + timedelta(seconds=60)
            assert await identity.use_once(connection, "dpop", "jkt-a", "j1", until)
            assert not await identity.use_once(connection, "dpop", "jkt-a", "j1", until)
            # The same jti under another key is another value.
            assert await identity.use_once(connection, "dpop", "jkt-b", "j1", until)
            with pytest.raises(identity.ReplayedNonce):
                await identity.spend_all(connection, [("nonce", "", "n1", until)] * 2)
            await identity.purge_expired(connection, now=until + timedelta(seconds=1))
            assert await connection.fetchval("SELECT count(*) FROM used_once") == 0
    finally:
        await pool.close()


async def test_nonce_secret_is_shared_and_replaced_when_the_master_key_changes(
    db_url: str,
) -> None:
    pool = await create_pool(db_url, min_size=1)
    master = MasterKey.generate()
    try:
        async with pool.acquire() as connection:
            first = await identity.gateway_secret(connection, "challenge-nonce", master, now=NOW)
            again = await identity.gateway_secret(connection, "challenge-nonce", master, now=NOW)
            assert first == again and len(first) == 32
            raw = await connection.fetchval("SELECT wrapped FROM gateway_secrets")
            assert first not in bytes(raw)
            other = await identity.gateway_secret(
                connection, "challenge-nonce", MasterKey.generate(), now=NOW
            )
            assert other != first
    finally:
        await pool.close()
