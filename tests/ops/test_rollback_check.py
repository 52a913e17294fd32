"""The rollback check against cosigned checkpoints kept outside the database: a log
restored to fewer entries, or to other entries of the same size, is a rollback; a log that
grew past the cosigned tree is not."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.cli import VerifyReport, VerifyState, rollback_problems, verify_log
from storage import audit_log, cosigned
from storage.signed_note import add_signature, sign_note
from tests.audit.conftest import grow


def witnessed(checkpoint: audit_log.StoredCheckpoint, directory: Path) -> cosigned.CosignedCopy:
    """What the gateway keeps when an inspector cosigns *checkpoint*."""
    note = add_signature(checkpoint.note, "inspector.example", Ed25519PrivateKey.generate())
    return cosigned.read_file(cosigned.keep(directory, checkpoint.tree_size, note))


async def verify(
    pool: asyncpg.Pool,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    copies: list[cosigned.CosignedCopy],
) -> tuple[VerifyReport, list[str]]:
    root = x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
    chain = data_dir / "pki" / "chain.pem"
    intermediates = x509.load_pem_x509_certificates(chain.read_bytes()) if chain.exists() else []
    state = VerifyState(verifier_key=signer.verifier.verifier_key)
    async with pool.acquire() as connection:
        report = await verify_log(
            connection, state=state, root=root, intermediates=intermediates, witnessed=copies
        )
        quick = await rollback_problems(connection, copies, [signer.verifier])
    return report, quick


async def roll_back_to(owner: asyncpg.Connection, size: int) -> None:
    """What a restore to an earlier time leaves: the rows, nodes and checkpoints of then."""
    await owner.execute("DELETE FROM audit_log WHERE idx >= $1", size)
    await owner.execute("DELETE FROM audit_nodes WHERE ((idx + 1) << level::int) > $1", size)
    await owner.execute("DELETE FROM audit_checkpoints WHERE tree_size > $1", size)


async def test_a_log_grown_past_the_cosigned_tree_passes(
    pool: asyncpg.Pool, signer: audit_log.CheckpointSigner, data_dir: Path, tmp_path: Path
) -> None:
    copy = witnessed(await grow(pool, signer, 10, start=0), tmp_path)
    await grow(pool, signer, 5, start=10)
    report, quick = await verify(pool, signer, data_dir, [copy])
    assert report.ok and not report.rolled_back, report.problems
    assert quick == []


async def test_a_log_restored_to_fewer_entries_is_a_rollback(
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    await grow(pool, signer, 10, start=0)
    copy = witnessed(await grow(pool, signer, 5, start=10), tmp_path)
    await roll_back_to(owner, 10)
    report, quick = await verify(pool, signer, data_dir, [copy])
    assert report.rolled_back
    expected = f"cosigned the log at tree size 15 ({copy.source}), but the log now has only 10"
    assert any(expected in p.message for p in report.problems), report.problems
    assert len(quick) == 1 and expected in quick[0]


async def test_a_log_restored_then_refilled_to_the_same_size_is_a_rollback(
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
    signer: audit_log.CheckpointSigner,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    await grow(pool, signer, 10, start=0)
    copy = witnessed(await grow(pool, signer, 5, start=10), tmp_path)
    await roll_back_to(owner, 10)
    await grow(pool, signer, 5, start=100)  # the gateway kept going: same size, other root
    report, quick = await verify(pool, signer, data_dir, [copy])
    assert report.rolled_back
    expected = "first 15 entries differ from the tree of size 15 an inspector cosigned"
    assert any(expected in p.message for p in report.problems), report.problems
    assert len(quick) == 1 and expected in quick[0]


async def test_a_note_the_log_key_did_not_sign_proves_nothing(
    pool: asyncpg.Pool, signer: audit_log.CheckpointSigner, data_dir: Path, tmp_path: Path
) -> None:
    made = await grow(pool, signer, 3, start=0)
    text = made.note[: made.note.index("\n\n") + 1]
    forged = sign_note(text, signer.origin, Ed25519PrivateKey.generate())
    copy = cosigned.read_file(cosigned.keep(tmp_path, made.tree_size, forged))
    report, quick = await verify(pool, signer, data_dir, [copy])
    assert not report.ok and not report.rolled_back
    assert "not signed by the log key" in report.problems[0].message
    assert len(quick) == 1 and "not signed by the log key" in quick[0]
