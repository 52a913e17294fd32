"""RFC 3161 serials come from one PostgreSQL sequence, whichever connection (process) asks."""

from __future__ import annotations

import pytest

from storage.db import create_pool
from storage.pki import next_tsa_serials


async def test_serials_are_unique_across_connections_and_increase(module_db_url: str) -> None:
    pool = await create_pool(module_db_url, min_size=2, max_size=2)
    try:
        async with pool.acquire() as first, pool.acquire() as second:
            drawn = [
                await next_tsa_serials(first, 2),
                await next_tsa_serials(second, 3),
                await next_tsa_serials(first),
            ]
            with pytest.raises(ValueError, match="at least one"):
                await next_tsa_serials(second, 0)
    finally:
        await pool.close()
    assert [len(batch) for batch in drawn] == [2, 3, 1]
    flat = [serial for batch in drawn for serial in batch]
    assert flat == sorted(flat) and len(set(flat)) == len(flat)
    assert all(serial > 0 for serial in flat)
