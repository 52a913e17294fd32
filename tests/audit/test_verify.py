"""``sealhub audit verify`` against tampering done directly in PostgreSQL as the owner."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from keys.platform import PlatformPki
from storage import audit_log
from storage.signed_note import format_checkpoint, sign_note
from tests.audit.conftest import add_events, grow, run_verify, sequence


@pytest.fixture
async def verified(
    db_url: str,
    pool: asyncpg.Pool,
    signer: audit_log.CheckpointSigner,
    platform: PlatformPki,
    data_dir: Path,
    tmp_path: Path,
) -> Path:
    """A log of 20 entries with checkpoints at 10, 17 and 20, verified once (state at 20)."""
    await grow(pool, signer, 10, start=0)
    await grow(pool, signer, 7, start=10)
    await grow(pool, signer, 3, start=17)
    state = tmp_path / "state.json"
    result = run_verify(db_url, data_dir, state, signer.verifier.verifier_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 20 entries, 3 checkpoints" in result.stdout
    assert json.loads(state.read_text())["tree_size"] == 20
    return state


def _verify_fails(db_url: str, data_dir: Path, state: Path, key: str) -> str:
    before = state.read_text()
    result = run_verify(db_url, data_dir, state, key)
    assert result.returncode == 1, result.stdout + result.stderr
    assert state.read_text() == before  # a failed run never moves the remembered checkpoint
    return result.stdout


async def test_an_untouched_log_keeps_verifying_as_it_grows(
    db_url: str,
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
) -> None:
    await grow(pool, signer, 9, start=20)
    await audit_log.erase_details(owner, indices=[3, 21], now=datetime.now(UTC))
    result = run_verify(db_url, data_dir, verified, signer.verifier.verifier_key)
    assert result.returncode == 0, result.stdout
    assert json.loads(verified.read_text())["tree_size"] == 29  # noqa: ASYNC240


async def test_one_changed_byte_of_a_leaf(
    db_url: str,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
) -> None:
    await owner.execute(
        "UPDATE audit_log SET leaf = set_byte(leaf, 30, get_byte(leaf, 30) # 1) WHERE idx = 13"
    )
    out = _verify_fails(db_url, data_dir, verified, signer.verifier.verifier_key)
    assert "first bad index: 13" in out


async def test_last_rows_deleted_and_others_appended(
    db_url: str,
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
) -> None:
    # A thorough owner: removes rows 17.. and every node over them, then lets the real
    # sequencer append three other events, so rows and nodes are consistent again.
    await owner.execute("DELETE FROM audit_log WHERE idx >= 17")
    await owner.execute("DELETE FROM audit_nodes WHERE ((idx + 1) << level::int) > 17")
    await add_events(pool, 3, start=100)
    async with pool.acquire() as connection:
        await sequence(connection)
        assert await audit_log.log_size(connection) == 20
    out = _verify_fails(db_url, data_dir, verified, signer.verifier.verifier_key)
    assert "first bad index: 17" in out


async def test_two_rows_swapped(
    db_url: str,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
) -> None:
    async with owner.transaction():
        await owner.execute("UPDATE audit_log SET idx = 1000000 WHERE idx = 5")
        await owner.execute("UPDATE audit_log SET idx = 5 WHERE idx = 8")
        await owner.execute("UPDATE audit_log SET idx = 8 WHERE idx = 1000000")
    out = _verify_fails(db_url, data_dir, verified, signer.verifier.verifier_key)
    assert "first bad index: 5" in out


async def test_a_fork_against_the_remembered_checkpoint(
    db_url: str,
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
) -> None:
    # Rewrite the last entry and have the log sign a new tree of the same size: every row,
    # node and stored checkpoint is consistent; only the remembered checkpoint disagrees.
    await owner.execute("DELETE FROM audit_log WHERE idx = 19")
    await owner.execute("DELETE FROM audit_nodes WHERE ((idx + 1) << level::int) > 19")
    await owner.execute("DELETE FROM audit_checkpoints WHERE tree_size = 20")
    await grow(pool, signer, 1, start=200)
    out = _verify_fails(db_url, data_dir, verified, signer.verifier.verifier_key)
    assert "fork: the log now signs another root for size 20" in out
    # The signed checkpoint of 17 still matches, so the rewrite is somewhere in [17, 20).
    assert "first bad index: 17" in out


async def test_two_signed_checkpoints_of_one_size_are_a_fork(
    db_url: str,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
    tmp_path: Path,
) -> None:
    other_root = bytes(32)
    note = sign_note(format_checkpoint(signer.origin, 17, other_root), signer.origin, signer.key)
    await owner.execute(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, note, timestamp_token, created_at)"
        " VALUES (17, $1, $2, $3, now())",
        other_root,
        note,
        signer.timestamp(note.encode(), datetime.now(UTC)),
    )
    fresh = tmp_path / "fresh-state.json"  # no remembered checkpoint at all
    fresh.write_text(json.dumps({"verifier_key": signer.verifier.verifier_key}))
    out = _verify_fails(db_url, data_dir, fresh, signer.verifier.verifier_key)
    assert "fork: two signed checkpoints of size 17 differ" in out


async def test_a_checkpoint_signed_by_another_key_or_badly_stamped(
    db_url: str,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    verified: Path,
) -> None:
    await owner.execute(
        "UPDATE audit_checkpoints SET timestamp_token = (SELECT timestamp_token FROM"
        " audit_checkpoints WHERE tree_size = 10) WHERE tree_size = 17"
    )
    out = _verify_fails(db_url, data_dir, verified, signer.verifier.verifier_key)
    assert "time-stamp token: the token is over other data" in out
