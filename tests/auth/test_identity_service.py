"""The identity rules, in process against real PostgreSQL: the services of
gateway/identity/service.py with their real repositories, audit outbox and key store.

Officials are made as ``sealhub official create`` makes them and enroll real keys with
signed proofs; logins sign real assertions and DPoP proofs. What the HTTPS tests prove about
the wire (status codes, headers) stays there; these check who may do what and what an act
leaves behind (rows, audit events, alerts).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.directory.orgs import demo_orgs_csv, parse_orgs_csv
from gateway.http.ratelimit import LIMITS
from gateway.identity.access import AccessLog
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.nonces import NonceIssuers
from gateway.identity.principal import Principal
from gateway.identity.service import (
    TOKEN_PATH,
    IssuedCode,
    LoginService,
    NewOfficial,
    OfficialsService,
    ProofCheck,
    TokenGrant,
    create_official,
)
from keys.challenge import generate_enrollment_code
from keys.dpop import DpopProof, verify_dpop_proof
from keys.keystore import FileKeyStore
from keys.master import MasterKey
from storage import directory
from storage.audit_outbox import OutboxSink
from storage.db import connect, create_pool
from storage.identity.errors import (
    EnrollmentCodeInvalid,
    EnrollmentCodeLocked,
    OfficialDisabled,
    OfficialNotFound,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RequestDecided,
    SamePerson,
)
from storage.identity.keys import OfficialKey
from storage.identity.official_requests import OfficialRequest
from storage.identity.officials import Official
from tests.passkeys.support import passkey_service
from tests.people import Person
from tests.proofs import dpop_proof, enrollment_proof, login_assertion

JYJ, GAJ, PLATFORM = "yl-jyj", "yl-gaj", "yl"
ORIGIN = "https://gateway.test:8443"
SOURCE = "192.0.2.7"


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def database(module_db_url: str) -> str:
    """The module's database with the demo departments."""

    async def load() -> None:
        connection = await connect(module_db_url)
        try:
            async with connection.transaction():
                await directory.upsert_departments(connection, parse_orgs_csv(demo_orgs_csv()))
        finally:
            await connection.close()

    asyncio.run(load())
    return module_db_url


class World:
    def __init__(self, pool: asyncpg.Pool, keystore_dir: Path) -> None:
        self.pool = pool
        master = MasterKey.generate()
        audit = OutboxSink()
        access = AccessLog(pool, audit=audit, clock=_now)
        self.officials = OfficialsService(
            pool, audit=audit, clock=_now, access=access, limits=LIMITS
        )
        nonces = NonceIssuers(pool, master)
        self.login = LoginService(
            pool,
            audit=audit,
            clock=_now,
            access=access,
            nonces=nonces,
            limits=LIMITS,
            keystore=FileKeyStore(keystore_dir, master),
            public_origin=ORIGIN,
            access_token_seconds=300,
            passkeys=passkey_service(pool, master, ORIGIN, clock=_now, nonces=nonces),
        )

    async def person(
        self, department: str, roles: list[str], *, created_by: Person | None = None
    ) -> Person:
        """A new official (the CLI's unit of work, *created_by* handing out its code) with a
        key enrolled from that code."""
        async with self.pool.acquire() as connection:
            created = await create_official(
                connection,
                name="测试官员",
                department=department,
                roles=roles,
                now=_now(),
                audit=OutboxSink(),
                actor=None if created_by is None else created_by.id,
                via="test",
            )
        key = ec.generate_private_key(ec.SECP256R1())
        enrolled = await self.enroll(created.official.id, created.enrollment_code, key)
        principal = Principal(
            official_id=created.official.id,
            name=created.official.name,
            department=department,
            roles=frozenset(created.official.roles),
            kid=enrolled.kid,
        )
        return Person(principal, key, method="POST", source=SOURCE)

    async def keyless(self, department: str, roles: list[str]) -> NewOfficial:
        async with self.pool.acquire() as connection:
            return await create_official(
                connection,
                name="无钥官员",
                department=department,
                roles=roles,
                now=_now(),
                audit=OutboxSink(),
                actor=None,
                via="test",
            )

    async def enroll(
        self, official_id: str, code: str, key: ec.EllipticCurvePrivateKey | None = None
    ) -> OfficialKey:
        key = key or ec.generate_private_key(ec.SECP256R1())
        proof = enrollment_proof(key, official_id, code)
        return await self.officials.enroll_key(official_id, proof, source=SOURCE)

    async def log_in(self, person: Person) -> TokenGrant:
        nonce = (await self.login.challenge(person.id, SOURCE)).nonce
        assertion = login_assertion(
            person.key, person.principal.kid, person.id, ORIGIN + TOKEN_PATH, nonce
        )
        return await self.login.log_in(assertion, _prover(person.key), source=SOURCE)

    async def refresh(self, person: Person, token: str) -> TokenGrant:
        return await self.login.refresh(token, _prover(person.key), source=SOURCE)

    async def events(self, event_type: str, official: str) -> list[dict[str, Any]]:
        """The outbox's events of *event_type* about *official* (no sequencer runs here)."""
        async with self.pool.acquire() as connection:
            rows = await connection.fetch(
                "SELECT actor_official, department, details FROM audit_outbox"
                " WHERE type = $1 ORDER BY id",
                event_type,
            )
        return [
            {"actor": row["actor_official"], "department": row["department"], **row["details"]}
            for row in rows
            if official in (row["details"].get("official"), row["actor_official"])
        ]

    async def value(self, query: str, *args: object) -> Any:
        async with self.pool.acquire() as connection:
            return await connection.fetchval(query, *args)


def _prover(key: ec.EllipticCurvePrivateKey) -> ProofCheck:
    async def prove() -> DpopProof:
        proof = dpop_proof(key, "POST", ORIGIN + TOKEN_PATH)
        return verify_dpop_proof(proof, method="POST", url=ORIGIN + TOKEN_PATH, now=_now())

    return prove


@pytest.fixture
async def world(database: str, tmp_path: Path) -> AsyncIterator[World]:
    pool = await create_pool(database, min_size=1, max_size=4)
    try:
        yield World(pool, tmp_path)
    finally:
        await pool.close()


def _pending(outcome: object) -> OfficialRequest:
    assert isinstance(outcome, OfficialRequest), outcome
    assert outcome.status == "pending"
    return outcome


# --- four eyes --------------------------------------------------------------------------------


async def test_rekeying_a_privileged_official_takes_a_second_manager(world: World) -> None:
    """A leader's code from one admin is only a request; a second admin's approval hands the
    code to the approver, cosigned by the first, and the new key is flagged and alerted."""
    first, second = await world.person(PLATFORM, ["admin"]), await world.person(PLATFORM, ["admin"])
    leader = await world.person(JYJ, ["leader"])
    pending = _pending(await world.officials.enrollment_code(first.caller, leader.id))
    # Asking twice finds the same request.
    again = await world.officials.enrollment_code(first.caller, leader.id)
    assert isinstance(again, OfficialRequest) and again.id == pending.id
    visible = await world.officials.visible_request(second.caller, pending.id)
    issued = await world.officials.approve_request(second.caller, visible, [])
    assert isinstance(issued, IssuedCode) and issued.official_id == leader.id
    key = await world.enroll(leader.id, issued.enrollment_code)
    assert (key.code_issued_by, key.code_cosigned_by) == (second.id, first.id)
    assert key.added_by_other
    [event] = await world.events("enrollment_code.issued", leader.id)
    assert event["via"] == "four_eyes" and event["cosigned_by"] == first.id
    alerts = await world.value(
        "SELECT count(*) FROM supervision_alerts WHERE rule = 'key_added_by_other'"
        " AND subject = $1",
        f"key:{key.kid}",
    )
    assert alerts == 1
    # The leader hears of the key at its next login with its own key, once.
    first_login = await world.log_in(leader)
    assert [notice.kid for notice in first_login.notices or ()] == [key.kid]
    assert (await world.log_in(leader)).notices == ()


async def test_a_manager_alone_codes_only_a_keyless_ordinary_official(world: World) -> None:
    manager = await world.person(JYJ, ["dept_admin"])
    newcomer = await world.keyless(JYJ, ["clerk"])
    issued = await world.officials.enrollment_code(manager.caller, newcomer.official.id)
    assert isinstance(issued, IssuedCode)
    await world.enroll(newcomer.official.id, issued.enrollment_code)
    # Now it has a key: the next code from a manager needs a second one.
    _pending(await world.officials.enrollment_code(manager.caller, newcomer.official.id))


async def test_an_official_asks_its_own_code_and_inherits_its_keys_handlers(world: World) -> None:
    """A code asked with one's own key carries whoever handled that key's code, so a
    borrowed key cannot be re-keyed into a clean identity."""
    admin = await world.person(PLATFORM, ["admin"])
    clerk = await world.person(JYJ, ["clerk"], created_by=admin)
    own = await world.officials.enrollment_code(clerk.caller, clerk.id)
    assert isinstance(own, IssuedCode)
    key = await world.enroll(clerk.id, own.enrollment_code)
    assert key.code_issued_by == clerk.id and not key.added_by_other
    [event] = await world.events("enrollment_code.issued", clerk.id)
    assert event["via"] == "self" and event["inherited_handlers"] == [admin.id]


async def test_the_requester_cannot_approve_its_own_request(world: World) -> None:
    first, second = await world.person(PLATFORM, ["admin"]), await world.person(PLATFORM, ["admin"])
    inspector = await world.keyless(JYJ, ["inspector"])
    pending = _pending(await world.officials.enrollment_code(first.caller, inspector.official.id))
    with pytest.raises(SamePerson):
        await world.officials.approve_request(first.caller, pending, [])
    denied = await world.events("access.denied", first.id)
    assert [event["reason"] for event in denied] == ["same_person"]
    still = await world.officials.visible_request(first.caller, pending.id)
    assert still.status == "pending"
    # Withdrawing it is the requester's right: cancelled, not declined.
    withdrawn = await world.officials.decline_request(first.caller, pending.id)
    assert withdrawn.status == "cancelled" and withdrawn.decided_by is None
    with pytest.raises(RequestDecided):
        await world.officials.approve_request(second.caller, pending, [])


async def test_an_approver_whose_key_the_requester_handed_out_is_not_a_second_person(
    world: World,
) -> None:
    """The admin who created a dept_admin could hold its key: it cannot be the second eye."""
    admin = await world.person(PLATFORM, ["admin"])
    puppet = await world.person(JYJ, ["dept_admin"], created_by=admin)
    leader = await world.person(JYJ, ["leader"])
    pending = _pending(await world.officials.enrollment_code(admin.caller, leader.id))
    visible = await world.officials.visible_request(puppet.caller, pending.id)
    with pytest.raises(SamePerson):
        await world.officials.approve_request(puppet.caller, visible, [])
    assert [e["reason"] for e in await world.events("access.denied", puppet.id)] == ["same_person"]
    assert (await world.officials.visible_request(admin.caller, pending.id)).status == "pending"


async def test_a_privileged_new_official_takes_two_managers(world: World) -> None:
    first, second = await world.person(PLATFORM, ["admin"]), await world.person(PLATFORM, ["admin"])
    pending = _pending(
        await world.officials.create_official(
            first.caller, name=" 印章管理员 ", department=JYJ, roles=["seal_keeper"]
        )
    )
    assert pending.payload == {"name": "印章管理员", "department": JYJ, "roles": ["seal_keeper"]}
    created = await world.officials.approve_request(second.caller, pending, [])
    assert isinstance(created, NewOfficial)
    assert created.official.roles == ("seal_keeper",) and created.official.department == JYJ
    [event] = await world.events("official.created", created.official.id)
    assert event["via"] == "four_eyes" and event["cosigned_by"] == first.id
    assert event["actor"] == second.id
    # An ordinary official is made at once.
    clerk = await world.officials.create_official(
        first.caller, name="科员", department=JYJ, roles=["clerk"]
    )
    assert isinstance(clerk, NewOfficial)


async def test_a_dept_admin_grants_only_its_own_roles_in_its_own_department(
    world: World,
) -> None:
    manager = await world.person(JYJ, ["dept_admin"])
    with pytest.raises(Forbidden):
        await world.officials.create_official(
            manager.caller, name="督查", department=JYJ, roles=["inspector"]
        )
    with pytest.raises(NotFound):
        await world.officials.create_official(
            manager.caller, name="科员", department=GAJ, roles=["clerk"]
        )
    reasons = [e["reason"] for e in await world.events("access.denied", manager.id)]
    assert reasons == ["role_missing", "other_department"]


async def test_another_departments_official_is_hidden_and_an_admin_unmanageable(
    world: World,
) -> None:
    jyj_manager = await world.person(JYJ, ["dept_admin"])
    gaj_clerk = await world.person(GAJ, ["clerk"])
    with pytest.raises(NotFound):
        await world.officials.list_keys(jyj_manager.caller, gaj_clerk.id)
    with pytest.raises(OfficialNotFound):
        await world.officials.disable(jyj_manager.caller, str(uuid.uuid4()))
    jyj_admin_holder = await world.person(JYJ, ["inspector"])
    with pytest.raises(Forbidden):
        await world.officials.disable(jyj_manager.caller, jyj_admin_holder.id)
    # One's own keys are one's own business.
    own = await world.officials.list_keys(gaj_clerk.caller, gaj_clerk.id)
    assert [key.kid for key in own] == [gaj_clerk.principal.kid]


# --- transfers --------------------------------------------------------------------------------


async def test_a_transfer_drops_roles_keys_sessions_and_pending_acts(world: World) -> None:
    admin, other = await world.person(PLATFORM, ["admin"]), await world.person(PLATFORM, ["admin"])
    mover = await world.person(JYJ, ["clerk", "leader", "seal_keeper"])
    grant = await world.log_in(mover)
    waiting = _pending(await world.officials.enrollment_code(other.caller, mover.id))
    official = await world.officials.managed_official(admin.caller, mover.id)
    moved = await world.officials.transfer(
        admin.caller, official, department=GAJ, granted=["system"]
    )
    assert isinstance(moved, Official)
    assert moved.department == GAJ and moved.roles == ("clerk", "system")
    keys = await world.officials.list_keys(admin.caller, mover.id)
    assert [key.revoked_at is not None for key in keys] == [True]
    with pytest.raises(RefreshTokenInvalid):
        await world.refresh(mover, grant.refresh_token)
    assert (
        await world.value("SELECT count(*) FROM enrollment_codes WHERE official_id = $1", mover.id)
        == 0
    )
    cancelled = await world.officials.visible_request(admin.caller, waiting.id)
    assert cancelled.status == "cancelled"
    sides = {
        (e["side"], e["department"]) for e in await world.events("official.transferred", mover.id)
    }
    assert sides == {("out", JYJ), ("in", GAJ)}


async def test_a_dept_admin_proposes_a_transfer_and_the_receiving_side_accepts(
    world: World,
) -> None:
    releasing, receiving = (
        await world.person(JYJ, ["dept_admin"]),
        await world.person(GAJ, ["dept_admin"]),
    )
    clerk = await world.person(JYJ, ["clerk"])
    official = await world.officials.managed_official(releasing.caller, clerk.id)
    with pytest.raises(Forbidden):
        # Roles in the new department are the receiving side's to grant.
        await world.officials.transfer(
            releasing.caller, official, department=GAJ, granted=["leader"]
        )
    proposal = _pending(
        await world.officials.transfer(releasing.caller, official, department=GAJ, granted=[])
    )
    with pytest.raises(Forbidden):
        await world.officials.approve_request(releasing.caller, proposal, [])
    with pytest.raises(Forbidden):
        await world.officials.approve_request(receiving.caller, proposal, ["admin"])
    moved = await world.officials.approve_request(receiving.caller, proposal, ["leader"])
    assert isinstance(moved, Official)
    assert moved.department == GAJ and moved.roles == ("clerk", "leader")
    [event, _] = await world.events("official.transferred", clerk.id)
    assert event["proposed_by"] == releasing.id and event["request"] == proposal.id
    # A third department never saw it.
    stranger = await world.person("yl-kjj", ["dept_admin"])
    with pytest.raises(NotFound):
        await world.officials.visible_request(stranger.caller, proposal.id)


# --- enrollment and login ----------------------------------------------------------------------


async def test_wrong_enrollment_codes_are_counted_although_refused(world: World) -> None:
    newcomer = await world.keyless(JYJ, ["clerk"])
    for _ in range(5):
        with pytest.raises(EnrollmentCodeInvalid):
            await world.enroll(newcomer.official.id, generate_enrollment_code())
    with pytest.raises(EnrollmentCodeLocked):
        await world.enroll(newcomer.official.id, newcomer.enrollment_code)
    failures = await world.value(
        "SELECT sum(count) FROM auth_failures WHERE kind = 'enroll' AND source = $1", SOURCE
    )
    assert failures >= 6


async def test_a_reused_refresh_token_revokes_its_family(world: World) -> None:
    clerk = await world.person(JYJ, ["clerk"])
    first = await world.log_in(clerk)
    second = await world.refresh(clerk, first.refresh_token)
    assert second.refresh_token != first.refresh_token and second.notices is None
    with pytest.raises(RefreshTokenReused):
        await world.refresh(clerk, first.refresh_token)
    # The family is gone, the newest token included; the reuse is audited once.
    with pytest.raises(RefreshTokenInvalid):
        await world.refresh(clerk, second.refresh_token)
    reused = [
        e
        for e in await world.events("login.failed", clerk.id)
        if e["reason"] == "refresh_token_reused"
    ]
    assert len(reused) == 1


async def test_a_disabled_official_can_neither_log_in_nor_refresh(world: World) -> None:
    manager = await world.person(JYJ, ["dept_admin"])
    clerk = await world.person(JYJ, ["clerk"])
    grant = await world.log_in(clerk)
    disabled = await world.officials.disable(manager.caller, clerk.id)
    assert disabled.status == "disabled"
    with pytest.raises(RefreshTokenInvalid):
        await world.refresh(clerk, grant.refresh_token)
    with pytest.raises(OfficialDisabled):
        await world.log_in(clerk)
    [event] = await world.events("official.disabled", clerk.id)
    assert event["refresh_families_revoked"] == 1
