"""Fixtures for e-supervision: a migrated database with a few departments, and helpers that
write documents and deliveries as the exchange would, at chosen times (no sleeping)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from storage.db import DbConnection, create_pool
from tests.conftest import Gateway, start_gateway

# The exchange's fixtures (two admins, an issued seal, its keeper, a sample PDF), served by
# this package's gateway fixture below.
from tests.exchange.conftest import (  # noqa: F401
    admins,
    sample_pdf,
    seal_keeper,
    sender_seal,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DEPARTMENTS = ("yl", "yl-bgs", "yl-jyj", "yl-gaj")


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The gateway's own role: the evaluator must work with the application's grants."""
    app_pool = await create_pool(db_url, min_size=1, max_size=4)
    try:
        async with app_pool.acquire() as connection:
            await connection.executemany(
                "INSERT INTO departments (code, name, kind) VALUES ($1, $2, 'bureau')",
                [(code, f"单位{code}") for code in DEPARTMENTS],
            )
        yield app_pool
    finally:
        await app_pool.close()


_numbers = iter(range(1, 1_000_000))


async def add_document(
    connection: DbConnection,
    sender: str,
    *,
    dispatched_at: datetime,
    urgency: str = "normal",
    status: str = "dispatched",
) -> uuid.UUID:
    document_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO documents (id, sender, created_by, title, doc_number, doc_year, urgency,"
        " classification, status, draft_object, draft_sha256, draft_size, created_at,"
        " dispatched_at)"
        " VALUES ($1, $2, 'tester', '通知', $3, 2026, $4, 'internal', $5, 'obj', $6, 1, $7, $7)",
        document_id,
        sender,
        f"玉测发〔2026〕{next(_numbers)}号",
        urgency,
        status,
        "0" * 64,
        dispatched_at,
    )
    return document_id


async def add_delivery(
    connection: DbConnection,
    document: uuid.UUID,
    recipient: str,
    *,
    created_at: datetime,
    due_in: timedelta,
    state: str = "pending",
    decided_after: timedelta | None = None,
) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO deliveries (id, document, recipient, state, created_at, due_at, decided_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        delivery_id,
        document,
        recipient,
        state,
        created_at,
        created_at + due_in,
        None if decided_after is None else created_at + decided_after,
    )
    return delivery_id


async def send_one(
    connection: DbConnection,
    sender: str,
    recipient: str,
    *,
    at: datetime,
    due_in: timedelta,
    state: str = "pending",
    decided_after: timedelta | None = None,
) -> uuid.UUID:
    """A document of its own with one delivery; returns the delivery id."""
    document = await add_document(connection, sender, dispatched_at=at)
    return await add_delivery(
        connection,
        document,
        recipient,
        created_at=at,
        due_in=due_in,
        state=state,
        decided_after=decided_after,
    )


# --- a real gateway whose evaluator runs every half second -----------------------------------

EVALUATOR_INTERVAL = "0.5"
SIGN_FOR_URGENT_HOURS = "6"
SIGN_FOR_NORMAL_HOURS = "0.25"


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        env={
            "SEALHUB_SUPERVISION_INTERVAL": EVALUATOR_INTERVAL,
            # Not the defaults, so the tests can tell the setting is used.
            "SEALHUB_SIGN_FOR_URGENT_HOURS": SIGN_FOR_URGENT_HOURS,
            "SEALHUB_SIGN_FOR_NORMAL_HOURS": SIGN_FOR_NORMAL_HOURS,
        },
    )
    try:
        yield running
    finally:
        running.stop()
