"""Sequencing, leaves, stored nodes, privileges, checkpoints, cosignatures, erasure, floods."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit import sequencer
from keys.platform import PlatformPki
from storage import audit_log, merkle
from storage.signed_note import (
    add_signature,
    open_note,
    parse_checkpoint,
    verifier_key,
)
from tests.audit.conftest import T0, add_events, grow, sequence

LOG_TABLES = ("audit_log", "audit_nodes", "audit_checkpoints", "audit_cosignatures")


async def test_leaves_follow_the_contract_and_the_tree_is_stored(pool: asyncpg.Pool) -> None:
    await add_events(pool, 23)
    async with pool.acquire() as connection:
        assert await sequence(connection) == 23
        assert await connection.fetchval("SELECT count(*) FROM audit_outbox") == 0
        entries = await audit_log.entries_range(connection, 0, 100)
        assert [e.index for e in entries] == list(range(23))
        for entry in entries:
            leaf = json.loads(entry.leaf)
            assert set(leaf) == {
                "index", "type", "at", "actor", "department", "document", "details_hash",
            }  # fmt: skip
            assert leaf["index"] == entry.index
            assert leaf["at"] == (T0 + timedelta(seconds=entry.index)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            assert leaf["actor"] == {"official": entry.actor_official, "jkt": entry.actor_jkt}
            assert rfc8785.dumps(leaf) == entry.leaf
            assert entry.details is not None and entry.salt is not None
            details = json.loads(entry.details)
            assert details["n"] == entry.index
            expected = hashlib.sha256(entry.salt + rfc8785.dumps(details)).hexdigest()
            assert leaf["details_hash"] == expected
        leaf_hashes = [merkle.leaf_hash(e.leaf) for e in entries]
        # Sequenced in batches of 7, yet the stored frontier gives the one-shot root.
        assert await audit_log.root_at(connection, 23) == merkle.root_from_leaf_hashes(leaf_hashes)
        stored = await connection.fetchval("SELECT count(*) FROM audit_nodes")
        assert stored == len(merkle.append_leaves(merkle.Frontier.empty(), leaf_hashes).new_nodes)
        for size in (1, 8, 13, 23):
            for index in range(size):
                proof = await audit_log.inclusion_proof(connection, index, size)
                assert proof == merkle.inclusion_proof(leaf_hashes, index, size)
            assert await audit_log.consistency_proof(
                connection, max(1, size // 3), size
            ) == merkle.consistency_proof(leaf_hashes, max(1, size // 3), size)
        with pytest.raises(merkle.InvalidProofRequestError):
            await audit_log.inclusion_proof(connection, 3, 24)


@pytest.mark.parametrize("table", LOG_TABLES)
async def test_the_app_role_cannot_change_or_remove_log_rows(
    pool: asyncpg.Pool, owner: asyncpg.Connection, signer: audit_log.CheckpointSigner, table: str
) -> None:
    checkpoint = await grow(pool, signer, 3, start=0)
    witness = Ed25519PrivateKey.generate()
    async with pool.acquire() as connection:
        async with connection.transaction():
            await audit_log.add_cosignature(
                connection,
                add_signature(checkpoint.note, "witness", witness),
                verifier_key("witness", witness.public_key()),
                official=None,
                now=datetime.now(UTC),
            )
        column = "idx" if table in ("audit_log", "audit_nodes") else "created_at"
        for statement in (
            f"UPDATE {table} SET {column} = {column}",  # noqa: S608
            f"DELETE FROM {table}",  # noqa: S608
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(f"TRUNCATE {table} CASCADE")
    # Even a careless later GRANT does not open the table: the trigger still refuses.
    await owner.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON {', '.join(LOG_TABLES)} TO sealhub_app")
    async with pool.acquire() as connection:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(f"DELETE FROM {table}")  # noqa: S608
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(f"TRUNCATE {table} CASCADE")
        assert await connection.fetchval(f"SELECT count(*) FROM {table}") > 0  # noqa: S608


async def test_one_sequencer_at_a_time_and_any_may_take_over(
    db_url: str, pool: asyncpg.Pool
) -> None:
    first = await asyncpg.connect(db_url)
    async with pool.acquire() as second:
        assert await audit_log.try_acquire_sequencer(first)
        assert not await audit_log.try_acquire_sequencer(second)
        await first.close()  # the holder dies
        assert await audit_log.try_acquire_sequencer(second)
        await audit_log.release_sequencer(second)


async def test_checkpoint_note_and_timestamp_verify_independently(
    pool: asyncpg.Pool,
    signer: audit_log.CheckpointSigner,
    platform: PlatformPki,
    tmp_path: Path,
) -> None:
    checkpoint = await grow(pool, signer, 5, start=0)
    opened = open_note(checkpoint.note, [signer.verifier])
    parsed = parse_checkpoint(opened.text)
    assert (parsed.origin, parsed.size, parsed.root_hash) == (
        signer.origin,
        5,
        checkpoint.root_hash,
    )
    async with pool.acquire() as connection:
        # Not grown: no new checkpoint.
        assert await sequencer.make_checkpoint(connection, signer, datetime.now(UTC)) is None
    (tmp_path / "note.txt").write_bytes(checkpoint.note.encode())
    (tmp_path / "tst.der").write_bytes(checkpoint.timestamp_token)
    command = [
        "openssl", "ts", "-verify", "-data", str(tmp_path / "note.txt"),
        "-in", str(tmp_path / "tst.der"), "-token_in",
        "-CAfile", str(platform.ca_pem_path), "-untrusted", str(platform.chain_pem_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: ASYNC221
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout
    (tmp_path / "note.txt").write_bytes(checkpoint.note.encode() + b" ")
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: ASYNC221
    assert result.returncode != 0


async def test_erasure_keeps_the_tree(
    pool: asyncpg.Pool, owner: asyncpg.Connection, signer: audit_log.CheckpointSigner
) -> None:
    checkpoint = await grow(pool, signer, 6, start=0)
    async with pool.acquire() as connection:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await audit_log.erase_details(connection, indices=[2], now=datetime.now(UTC))
    # Index 2, and every entry by official-1 (indices 1 and 4).
    erased = await audit_log.erase_details(
        owner, indices=[2], actor="official-1", now=datetime.now(UTC)
    )
    assert erased == 3
    rows = await audit_log.entries_range(owner, 0, 6)
    assert [r.index for r in rows if r.details is None and r.salt is None] == [1, 2, 4]
    assert all(r.leaf == r.expected_leaf() for r in rows)
    assert await audit_log.root_at(owner, 6) == checkpoint.root_hash
