"""The seal-request rules, in process on a real PostgreSQL: two admins who are two people,
never the requester approving its own request, and a revocation that this process's CRL
and signers know of the moment it commits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.principal import Principal
from gateway.identity.service import create_official
from gateway.pki.crls import CrlCache
from gateway.sealing.sealer import SealSigners
from gateway.sealing.service import (
    RequestDecided,
    RevocationAsk,
    SameAdmin,
    SealingRefused,
    SealNotFound,
    SealRequestQuery,
    SealService,
)
from keys import pki
from keys.jws import jwk_thumbprint, public_jwk
from keys.master import MasterKey
from keys.platform import PlatformPki, ensure_platform_pki
from storage import directory, identity
from storage import seals as seal_rows
from storage.audit_outbox import OutboxSink
from storage.db import DbConnection, create_pool
from storage.identity import keys as identity_keys

DEPARTMENT = "yl-svc"
PURPOSE = "合同专用章"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> PlatformPki:
    return ensure_platform_pki(
        tmp_path_factory.mktemp("data"),
        public_url="https://gateway.test:8443",
        hostnames=["localhost"],
        master_key=MasterKey.generate(),
        now=datetime.now(UTC),
    )


@pytest.fixture
async def pool(module_db_url: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await create_pool(module_db_url, min_size=1, max_size=4)
    async with opened.acquire() as connection, connection.transaction():
        await directory.upsert_departments(
            connection, [directory.Department(DEPARTMENT, "测试局", "Test Bureau", None, "bureau")]
        )
    yield opened
    await opened.close()


class Sealing:
    """The service with the very CRL cache and signer cache it notifies."""

    def __init__(self, pool: asyncpg.Pool, platform: PlatformPki) -> None:
        # A CRL this old would hide a revocation for an hour unless the service says so.
        self.crls = CrlCache(platform, pool, max_age_seconds=3600)
        self.signers = SealSigners(platform)
        self.service = SealService(pool, platform, self.crls, self.signers)
        self.pool = pool

    async def revoked_in_crl(self, serial_number: int) -> bool:
        der = await self.crls.get(pki.SEAL_CA_NAME)
        crl = x509.load_der_x509_crl(der)
        return crl.get_revoked_certificate_by_serial_number(serial_number) is not None


@pytest.fixture
def sealing(pool: asyncpg.Pool, platform: PlatformPki) -> Sealing:
    return Sealing(pool, platform)


async def _key(connection: DbConnection, official_id: str, *, code_issued_by: str | None) -> str:
    """A key enrolled from a code that *code_issued_by* handed out (None: a local command)."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    kid = jwk_thumbprint(public)
    await identity_keys.insert_key(
        connection,
        kid=kid,
        official_id=official_id,
        public_jwk=public_jwk(public),
        now=datetime.now(UTC),
        code_issued_by=code_issued_by,
        code_cosigned_by=None,
        added_by_other=code_issued_by not in (None, official_id),
        code_inherited_handlers=(),
    )
    return kid


async def _admin(pool: asyncpg.Pool, name: str) -> Principal:
    """A new admin whose one key came from a local command's code (nobody else handled it)."""
    async with pool.acquire() as connection:
        made = await create_official(
            connection,
            name=name,
            department=DEPARTMENT,
            roles=["admin"],
            now=datetime.now(UTC),
            audit=OutboxSink(),
            actor=None,
            via="test",
        )
        kid = await _key(connection, made.official.id, code_issued_by=None)
    return Principal(made.official.id, name, DEPARTMENT, frozenset({"admin"}), kid)


async def _key_from(pool: asyncpg.Pool, holder: Principal, issuer: Principal) -> Principal:
    """*holder* with a second key, from a code that *issuer* handed out (and may have kept)."""
    async with pool.acquire() as connection:
        kid = await _key(connection, holder.official_id, code_issued_by=issuer.official_id)
    return Principal(holder.official_id, holder.name, DEPARTMENT, holder.roles, kid)


async def _events(pool: asyncpg.Pool, request_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT type, details FROM audit_outbox WHERE details->>'request' = $1 ORDER BY id",
            str(request_id),
        )
    return [(row["type"], row["details"]) for row in rows]


async def _issued(sealing: Sealing, first: Principal, second: Principal) -> seal_rows.Seal:
    asked = await sealing.service.request_seal(first, DEPARTMENT, PURPOSE, datetime.now(UTC))
    return (await sealing.service.approve(second, asked.id, datetime.now(UTC))).seal


async def test_a_second_admin_approves_and_the_seal_is_issued_once(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    first, second = await _admin(pool, "甲"), await _admin(pool, "乙")
    asked = await sealing.service.request_seal(first, DEPARTMENT, PURPOSE, datetime.now(UTC))
    assert (asked.kind, asked.status, asked.requested_by) == ("issue", "pending", first.official_id)

    decided = await sealing.service.approve(second, asked.id, datetime.now(UTC))
    assert decided.kind == "issue"
    seal = decided.seal
    assert (seal.department, seal.purpose, seal.status) == (DEPARTMENT, PURPOSE, "active")
    certificate = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    assert certificate.serial_number == seal.serial_number
    assert seal in await sealing.service.department_seals(DEPARTMENT)
    assert await sealing.service.seal(seal.id) == seal
    assert (await sealing.service.seal_image(seal.id)).startswith(b"\x89PNG")

    with pytest.raises(RequestDecided):
        await sealing.service.approve(await _admin(pool, "丙"), asked.id, datetime.now(UTC))
    assert [kind for kind, _ in await _events(pool, asked.id)] == ["seal.requested", "seal.issued"]
    _, issued = (await _events(pool, asked.id))[1]
    assert issued["requested_by"] == first.official_id
    assert issued["approved_by"] == second.official_id
    assert issued["serial_number"] == str(seal.serial_number)


async def test_the_requester_cannot_approve_its_own_request(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    first = await _admin(pool, "甲")
    asked = await sealing.service.request_seal(first, DEPARTMENT, PURPOSE, datetime.now(UTC))
    with pytest.raises(SameAdmin) as caught:
        await sealing.service.approve(first, asked.id, datetime.now(UTC))
    assert caught.value.code == "same_person"  # the four-eyes refusal, as for officials
    # With another key of its own it is still the same admin.
    other_key = await _key_from(pool, first, first)
    with pytest.raises(SameAdmin):
        await sealing.service.approve(other_key, asked.id, datetime.now(UTC))
    # Refusals leave the request as it was: a second admin may still approve it.
    assert [kind for kind, _ in await _events(pool, asked.id)] == ["seal.requested"]
    decided = await sealing.service.approve(await _admin(pool, "乙"), asked.id, datetime.now(UTC))
    assert decided.seal.status == "active"


async def test_the_two_admin_rule_counts_people_not_ids(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    """The third admin handed out the code of the second admin's new key, so it may hold
    that key: the key cannot approve what the third asked, nor the third what it asked."""
    first, second, third = [await _admin(pool, name) for name in ("甲", "乙", "丙")]
    held = await _key_from(pool, second, third)
    now = datetime.now(UTC)

    by_third = await sealing.service.request_seal(third, DEPARTMENT, PURPOSE, now)
    with pytest.raises(identity.SamePerson):
        await sealing.service.approve(held, by_third.id, now)
    # The second admin's own key is another person's: it may approve.
    assert (await sealing.service.approve(second, by_third.id, now)).kind == "issue"

    # Nobody but the third handled the held key's code: the first admin may approve.
    with_held = await sealing.service.request_seal(held, DEPARTMENT, PURPOSE, now)
    with pytest.raises(identity.SamePerson):
        await sealing.service.approve(third, with_held.id, now)
    assert (await sealing.service.approve(first, with_held.id, now)).kind == "issue"


async def test_an_approved_revocation_is_in_this_process_crl_and_signers_at_once(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    first, second = await _admin(pool, "甲"), await _admin(pool, "乙")
    seal = await _issued(sealing, first, second)
    behind_its_back = await _issued(sealing, first, second)
    assert not await sealing.revoked_in_crl(seal.serial_number)  # the CRL is now cached
    async with pool.acquire() as connection:
        named = await seal_rows.get_named_seal(connection, seal.id)
        # A revocation the service never saw stays out of the cached CRL for max_age.
        await seal_rows.revoke_seal(
            connection,
            behind_its_back.id,
            now=datetime.now(UTC),
            reason_code="superseded",
            invalid_since=None,
        )
    assert named is not None
    signer_before = sealing.signers.of(named)
    assert not await sealing.revoked_in_crl(behind_its_back.serial_number)

    compromised = datetime.now(UTC)
    ask = RevocationAsk("钥匙丢失", "key_compromise", invalid_since=compromised)
    asked = await sealing.service.request_revocation(first, seal.id, ask, datetime.now(UTC))
    assert (asked.kind, asked.seal_id, asked.invalid_since) == ("revoke", seal.id, compromised)
    assert not await sealing.revoked_in_crl(seal.serial_number)  # asked is not revoked
    decided = await sealing.service.approve(second, asked.id, datetime.now(UTC))

    assert decided.kind == "revoke"
    assert (decided.seal.status, decided.seal.invalid_since) == ("revoked", compromised)
    assert await sealing.revoked_in_crl(seal.serial_number)
    assert await sealing.revoked_in_crl(behind_its_back.serial_number)
    assert sealing.signers.of(named) is not signer_before  # the cached signer was dropped
    assert [kind for kind, _ in await _events(pool, asked.id)] == [
        "seal.revocation_requested",
        "seal.revoked",
    ]


async def test_a_seal_is_revoked_once_and_a_late_approval_changes_nothing(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    first, second = await _admin(pool, "甲"), await _admin(pool, "乙")
    seal = await _issued(sealing, first, second)
    ask = RevocationAsk("印章停用", "cessation_of_operation")
    one = await sealing.service.request_revocation(first, seal.id, ask, datetime.now(UTC))
    other = await sealing.service.request_revocation(first, seal.id, ask, datetime.now(UTC))
    await sealing.service.approve(second, one.id, datetime.now(UTC))

    with pytest.raises(RequestDecided):
        await sealing.service.approve(second, other.id, datetime.now(UTC))
    with pytest.raises(RequestDecided):  # no new request for a revoked seal
        await sealing.service.request_revocation(first, seal.id, ask, datetime.now(UTC))
    # The failed approval rolled back with its decision: that request is still pending.
    async with pool.acquire() as connection:
        still = await seal_rows.lock_request(connection, other.id)
    assert still is not None and still.status == "pending"
    assert [kind for kind, _ in await _events(pool, other.id)] == ["seal.revocation_requested"]


async def test_what_a_revocation_request_refuses(sealing: Sealing, pool: asyncpg.Pool) -> None:
    first, second = await _admin(pool, "甲"), await _admin(pool, "乙")
    seal = await _issued(sealing, first, second)
    now = datetime.now(UTC)

    def asking(reason_code: str, invalid_since: datetime) -> RevocationAsk:
        return RevocationAsk("理由", reason_code, invalid_since)

    refused = {
        "goes only with reason_code key_compromise": asking("superseded", now),
        "must not be in the future": asking("key_compromise", now + timedelta(minutes=1)),
        "before the seal was issued": asking("key_compromise", seal.issued_at - timedelta(1)),
    }
    for message, ask in refused.items():
        with pytest.raises(SealingRefused, match=message) as caught:
            await sealing.service.request_revocation(first, seal.id, ask, now)
        assert caught.value.code == "invalid_request"
    with pytest.raises(SealNotFound):
        await sealing.service.request_revocation(first, uuid.uuid4(), RevocationAsk("x"), now)
    with pytest.raises(SealNotFound):
        await sealing.service.approve(second, uuid.uuid4(), now)
    with pytest.raises(SealNotFound):
        await sealing.service.seal(uuid.uuid4())
    with pytest.raises(directory.UnknownOrg):
        await sealing.service.request_seal(first, "yl-nowhere", PURPOSE, now)


async def _department(pool: asyncpg.Pool, code: str, name: str) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await directory.upsert_departments(
            connection, [directory.Department(code, name, "Listed Bureau", None, "bureau")]
        )


async def test_the_admins_list_shows_what_waits_and_who_asked(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    """One department of its own, so the other tests' requests stay out of its list."""
    await _department(pool, "yl-lst", "列表局")
    first, second = await _admin(pool, "甲"), await _admin(pool, "乙")
    start = datetime.now(UTC)
    service = sealing.service
    issued_request = await service.request_seal(first, "yl-lst", PURPOSE, start)
    seal = (await service.approve(second, issued_request.id, start)).seal
    ask = RevocationAsk("印章遗失", "key_compromise", invalid_since=start)
    revocation = await service.request_revocation(
        second, seal.id, ask, start + timedelta(seconds=1)
    )
    waiting = await service.request_seal(
        first, "yl-lst", "财务专用章", start + timedelta(seconds=2)
    )

    pending = await service.requests(SealRequestQuery("pending", "yl-lst"))
    assert [entry.request.id for entry in pending.items] == [waiting.id, revocation.id]
    assert not pending.more
    newest, revoking = pending.items
    assert (newest.department_name, newest.requester_name) == ("列表局", "甲")
    assert (newest.seal_id, newest.seal_status, newest.decider_name) == (None, None, None)
    assert (revoking.request.kind, revoking.request.reason) == ("revoke", "印章遗失")
    assert (revoking.requester_name, revoking.seal_id, revoking.seal_status) == (
        "乙",
        seal.id,
        "active",
    )

    approved = await service.requests(SealRequestQuery("approved", "yl-lst"))
    (done,) = approved.items
    assert (done.request.id, done.seal_id, done.seal_status) == (
        issued_request.id,
        seal.id,
        "active",
    )
    assert (done.request.decided_by, done.decider_name) == (second.official_id, "乙")

    # Every status, one page at a time: the cursor's (requested_at, id) starts the next.
    first_page = await service.requests(SealRequestQuery(department="yl-lst", limit=2))
    assert first_page.more and first_page.last is not None
    last = first_page.last.request
    rest = await service.requests(
        SealRequestQuery(department="yl-lst", before=(last.requested_at, last.id), limit=2)
    )
    seen = [entry.request.id for entry in [*first_page.items, *rest.items]]
    assert seen == [waiting.id, revocation.id, issued_request.id] and not rest.more

    everywhere = await service.requests(SealRequestQuery("pending", limit=500))
    assert {waiting.id, revocation.id} <= {entry.request.id for entry in everywhere.items}
    assert all(entry.request.status == "pending" for entry in everywhere.items)
    with pytest.raises(directory.UnknownOrg):
        await service.requests(SealRequestQuery(department="yl-nowhere"))


async def test_a_request_is_withdrawn_by_its_requester_or_declined_by_another_admin(
    sealing: Sealing, pool: asyncpg.Pool
) -> None:
    first, second = await _admin(pool, "甲"), await _admin(pool, "乙")
    now = datetime.now(UTC)
    withdrawn = await sealing.service.request_seal(first, DEPARTMENT, PURPOSE, now)
    closed = await sealing.service.decline(first, withdrawn.id, now)
    assert (closed.status, closed.decided_by, closed.decided_at) == ("cancelled", None, now)
    with pytest.raises(RequestDecided):  # nothing is issued from a withdrawn request
        await sealing.service.approve(second, withdrawn.id, now)

    seal = await _issued(sealing, first, second)
    ask = RevocationAsk("误操作", "superseded")
    declined = await sealing.service.request_revocation(first, seal.id, ask, now)
    closed = await sealing.service.decline(second, declined.id, now)
    assert (closed.status, closed.decided_by) == ("declined", second.official_id)
    with pytest.raises(RequestDecided):
        await sealing.service.decline(first, declined.id, now)
    assert (await sealing.service.seal(seal.id)).status == "active"  # the seal still counts
    assert not await sealing.revoked_in_crl(seal.serial_number)

    assert [kind for kind, _ in await _events(pool, withdrawn.id)] == [
        "seal.requested",
        "seal.request_cancelled",
    ]
    events = await _events(pool, declined.id)
    assert [kind for kind, _ in events] == ["seal.revocation_requested", "seal.request_declined"]
    assert events[1][1] == {
        "request": str(declined.id),
        "kind": "revoke",
        "seal_id": str(seal.id),
        "requested_by": first.official_id,
    }
    with pytest.raises(SealNotFound):
        await sealing.service.decline(second, uuid.uuid4(), now)
