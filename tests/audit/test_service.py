"""The audit log service in process: who sees which entries, checkpoint pages, cosigning."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.service import AuditLogService
from gateway.identity.access import AccessLog
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.principal import Caller, Principal
from storage import audit_log
from storage.audit_log import EntryFilter
from storage.audit_outbox import OutboxSink, record_event
from storage.signed_note import NoteError, add_signature, open_note, verifier_key
from tests.audit.conftest import event, grow, sequence

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def official(department: str, *roles: str) -> Caller:
    principal = Principal(
        f"o-{department}", "某人", department, frozenset(roles), f"jkt-{department}"
    )
    return Caller(principal, "GET", "/v1/audit/entries/1", "10.0.0.7")


@pytest.fixture
def service(pool: asyncpg.Pool, signer: audit_log.CheckpointSigner) -> AuditLogService:
    access = AccessLog(pool, audit=OutboxSink(), clock=lambda: NOW)
    return AuditLogService(pool, signer.verifier, access=access, clock=lambda: NOW)


async def test_entries_are_narrowed_to_the_callers_department(
    pool: asyncpg.Pool, service: AuditLogService
) -> None:
    async with pool.acquire() as connection:
        for n in range(6):
            async with connection.transaction():
                await record_event(connection, event(n, department=("dept-a", "dept-b")[n % 2]))
        await sequence(connection)
    clerk = official("dept-a", "clerk")
    first = await service.entries(clerk, EntryFilter(), after=None, limit=2)
    assert [e.index for e in first.items] == [0, 2] and first.more
    rest = await service.entries(clerk, EntryFilter(), after=2, limit=2)
    assert [e.index for e in rest.items] == [4] and not rest.more
    # Asking for another department's entries finds none rather than widening the view.
    other = await service.entries(clerk, EntryFilter(department="dept-b"), after=None, limit=9)
    assert other.items == []
    inspector = official("platform", "inspector")
    everything = await service.entries(inspector, EntryFilter(), after=None, limit=9)
    assert [e.index for e in everything.items] == list(range(6))
    assert (await service.entry(clerk, 4)).department == "dept-a"
    with pytest.raises(NotFound, match="no such resource"):
        await service.entry(clerk, 1)
    assert (await service.entry(inspector, 1)).department == "dept-b"
    with pytest.raises(NotFound, match="no such audit entry"):
        await service.entry(inspector, 6)
    # The hidden one, not the missing one, is recorded as a refusal.
    async with pool.acquire() as connection:
        denied = await connection.fetch(
            "SELECT actor_official, details FROM audit_outbox WHERE type = 'access.denied'"
        )
    assert [(row["actor_official"], row["details"]["entry"]) for row in denied] == [
        ("o-dept-a", "1")
    ]
    assert denied[0]["details"]["reason"] == "other_department"


async def test_checkpoint_pages(
    pool: asyncpg.Pool, signer: audit_log.CheckpointSigner, service: AuditLogService
) -> None:
    with pytest.raises(audit_log.NoCheckpointError):
        await service.latest_checkpoint()
    for round_ in range(3):
        await grow(pool, signer, 2, start=2 * round_)
    assert (await service.latest_checkpoint()).tree_size == 6
    middle = await service.checkpoints(start=1, limit=1)
    assert [c.tree_size for c in middle.items] == [4] and middle.more
    tail = await service.checkpoints(start=2, limit=5)
    assert [c.tree_size for c in tail.items] == [6] and not tail.more


async def test_witness_cosignatures(
    pool: asyncpg.Pool, signer: audit_log.CheckpointSigner, service: AuditLogService
) -> None:
    first = await grow(pool, signer, 4, start=0)
    second = await grow(pool, signer, 4, start=4)
    witness = Ed25519PrivateKey.generate()
    key = verifier_key("inspector-li", witness.public_key())
    inspector = official("platform", "inspector")
    made = await service.cosign(inspector, add_signature(second.note, "inspector-li", witness), key)
    assert (made.tree_size, made.official, made.created_at) == (8, "o-platform", NOW)
    # Idempotent per key: cosigning the same checkpoint again keeps the first cosignature.
    again = await service.cosign(
        inspector, add_signature(second.note, "inspector-li", witness), key
    )
    assert again == made
    latest = await service.latest_checkpoint()
    assert [c.verifier_key for c in latest.cosignatures] == [key]
    # The served line, appended to the note, verifies with the witness key.
    cosigned = latest.note + latest.cosignatures[0].signature_line + "\n"
    assert open_note(cosigned, [signer.verifier]).signers == [signer.origin]
    # A witness never goes back to a smaller tree.
    with pytest.raises(audit_log.CosignatureOutdatedError):
        await service.cosign(inspector, add_signature(first.note, "inspector-li", witness), key)
    # A note the log never issued, though well signed by the witness.
    forged = first.note.replace("\n4\n", "\n5\n", 1)
    with pytest.raises(audit_log.CheckpointUnknownError):
        await service.cosign(inspector, add_signature(forged, "inspector-li", witness), key)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(NoteError):
        await service.cosign(inspector, add_signature(second.note, "inspector-li", other), key)
    with pytest.raises(Forbidden):
        await service.cosign(official("dept-a", "leader"), second.note, key)
    async with pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM audit_cosignatures") == 1
        # The repository refuses to run outside its caller's transaction (its lock would not hold).
        with pytest.raises(audit_log.AuditLogError, match="transaction"):
            await audit_log.add_cosignature(connection, second.note, key, official=None, now=NOW)
