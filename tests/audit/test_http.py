"""The audit API of a real gateway: checkpoint, log key and proofs checked by independent code."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.audit import views
from storage import audit_log, merkle
from storage.signed_note import open_note, parse_checkpoint, parse_verifier_key
from tests.audit.conftest import add_events
from tests.conftest import Gateway, start_gateway

SIZE = 37


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tiny_inclusion_root(index: int, size: int, leaf_hash: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 PATH read backwards, straight from its recursive definition."""
    path = list(proof)

    def walk(m: int, n: int) -> bytes:
        if n == 1:
            return leaf_hash
        k = _split(n)
        sibling = path.pop()
        if m < k:
            return _h(b"\x01" + walk(m, k) + sibling)
        return _h(b"\x01" + sibling + walk(m - k, n - k))

    root = walk(index, size)
    assert not path, "proof too long"
    return root


def tiny_consistency_roots(
    m: int, n: int, old_root: bytes, proof: list[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 SUBPROOF read backwards: the (old, new) roots the proof commits to."""
    path = list(proof)

    def sub(m: int, n: int, whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            if whole:
                return old_root, old_root
            node = path.pop()
            return node, node
        k = _split(n)
        if m <= k:
            right = path.pop()
            old, new = sub(m, k, whole)
            return old, _h(b"\x01" + new + right)
        left = path.pop()
        old, new = sub(m - k, n - k, False)
        return _h(b"\x01" + left + old), _h(b"\x01" + left + new)

    roots = sub(m, n, True)
    assert not path, "proof too long"
    return roots


@pytest.fixture(scope="module")
def served(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(module_db_url, tmp_path_factory.mktemp("gw"), demo=False)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def leaf_hashes(served: Gateway, module_db_url: str) -> list[bytes]:
    """Events written to the outbox; the gateway's own service sequences and signs them."""
    import asyncio

    from storage.db import connect, create_pool

    async def fill() -> list[bytes]:
        pool = await create_pool(module_db_url, min_size=1, max_size=2)
        try:
            await add_events(pool, SIZE)
        finally:
            await pool.close()
        deadline = time.monotonic() + 60
        with served.client() as client:
            while time.monotonic() < deadline:
                response = client.get("/v1/audit/checkpoint")
                if response.status_code == 200 and response.json()["tree_size"] == SIZE:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("no checkpoint of the full log: " + response.text)
        connection = await connect(module_db_url)
        try:
            entries = await audit_log.entries_range(connection, 0, SIZE)
        finally:
            await connection.close()
        return [merkle.leaf_hash(e.leaf) for e in entries]

    return asyncio.run(fill())


def test_checkpoint_verifies_with_the_published_key_and_openssl(
    served: Gateway, leaf_hashes: list[bytes], tmp_path: Path
) -> None:
    with served.client() as client:
        key = client.get("/v1/audit/log-key").json()["verifier_key"]
        body = client.get("/v1/audit/checkpoint").json()
        chain = client.get("/v1/pki/chain.pem").content
    checkpoint = parse_checkpoint(open_note(body["note"], [parse_verifier_key(key)]).text)
    assert checkpoint.size == body["tree_size"] == SIZE
    assert checkpoint.root_hash == base64.b64decode(body["root_hash"])
    assert checkpoint.root_hash == merkle.root_from_leaf_hashes(leaf_hashes)
    assert body["cosignatures"] == []
    (tmp_path / "note.txt").write_bytes(body["note"].encode())
    (tmp_path / "tst.der").write_bytes(base64.b64decode(body["timestamp"]))
    (tmp_path / "chain.pem").write_bytes(chain)
    result = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            str(tmp_path / "note.txt"),
            "-in",
            str(tmp_path / "tst.der"),
            "-token_in",
            "-CAfile",
            str(served.ca_path),
            "-untrusted",
            str(tmp_path / "chain.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


@pytest.mark.parametrize("size", [1, 2, 5, 16, 17, SIZE])
def test_inclusion_proofs_verify_with_two_independent_verifiers(
    served: Gateway, leaf_hashes: list[bytes], size: int
) -> None:
    root = merkle.root_from_leaf_hashes(leaf_hashes[:size])
    with served.client() as client:
        for index in range(size):
            body = client.get(
                "/v1/audit/proof/inclusion", params={"index": index, "tree_size": size}
            ).json()
            proof = [base64.b64decode(h) for h in body["hashes"]]
            assert (body["leaf_index"], body["tree_size"]) == (index, size)
            merkle.verify_inclusion(leaf_hashes[index], index, size, proof, root)
            assert tiny_inclusion_root(index, size, leaf_hashes[index], proof) == root
            with pytest.raises(merkle.InvalidProofError):
                merkle.verify_inclusion(leaf_hashes[index], index, size, proof, _h(root))


def test_consistency_proofs_verify_with_two_independent_verifiers(
    served: Gateway, leaf_hashes: list[bytes]
) -> None:
    with served.client() as client:
        for old in range(1, SIZE + 1, 3):
            for new in (old, old + 1, SIZE):
                new = min(new, SIZE)
                body = client.get("/v1/audit/proof/consistency", params={"from": old, "to": new})
                proof = [base64.b64decode(h) for h in body.json()["hashes"]]
                old_root = merkle.root_from_leaf_hashes(leaf_hashes[:old])
                new_root = merkle.root_from_leaf_hashes(leaf_hashes[:new])
                merkle.verify_consistency(old, new, proof, old_root, new_root)
                assert tiny_consistency_roots(old, new, old_root, proof) == (old_root, new_root)


def test_bad_proof_requests_and_entries_need_a_token(
    served: Gateway, leaf_hashes: list[bytes]
) -> None:
    with served.client() as client:
        too_big = client.get("/v1/audit/proof/inclusion", params={"index": 0, "tree_size": 999})
        from_zero = client.get("/v1/audit/proof/consistency", params={"from": 0, "to": 3})
        missing = client.get("/v1/audit/proof/inclusion", params={"index": 1})
        entries = client.get("/v1/audit/entries")
        one = client.get("/v1/audit/entries/0")
    assert (too_big.status_code, too_big.json()["code"]) == (400, "invalid_proof_request")
    assert (from_zero.status_code, from_zero.json()["code"]) == (400, "invalid_proof_request")
    assert missing.status_code == 400
    assert entries.status_code == 401
    assert one.status_code == 401


async def test_entries_visibility_in_storage(db_url: str, pool: asyncpg.Pool) -> None:
    """The query behind GET /v1/audit/entries: a department sees its own entries only."""
    from storage.audit_outbox import record_event
    from tests.audit.conftest import event, sequence

    async with pool.acquire() as connection:
        for n in range(6):
            await record_event(connection, event(n, department="dept-a" if n % 2 else "dept-b"))
        await sequence(connection)
        own = await audit_log.list_entries(
            connection, audit_log.EntryFilter(visible_department="dept-a"), after=None, limit=50
        )
        assert [e.index for e in own] == [1, 3, 5]
        other = await audit_log.list_entries(
            connection,
            audit_log.EntryFilter(department="dept-b", visible_department="dept-a"),
            after=None,
            limit=50,
        )
        assert other == []
        page = await audit_log.list_entries(
            connection, audit_log.EntryFilter(document="doc-4"), after=None, limit=50
        )
        assert [e.index for e in page] == [4]
        after = await audit_log.list_entries(connection, audit_log.EntryFilter(), after=3, limit=2)
        assert [e.index for e in after] == [4, 5]
        assert views.entry_json(own[0])["details"]["名称"] == "玉林市人民政府"
