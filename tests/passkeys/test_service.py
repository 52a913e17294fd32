"""The passkey service in process on a real PostgreSQL, with the software authenticator:
what HTTPS tests reach only by luck (two assertions racing on one sign count) and the rules
of the checks other services call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.config import load_settings
from gateway.identity.principal import Caller, Principal
from gateway.passkeys.errors import InvalidPasskey, StepUpRequired
from gateway.passkeys.service import PasskeyService, removal_text
from gateway.runtime import Runtime, open_runtime
from tests.conftest import gateway_database_env
from tests.passkeys.support import passkey_service
from tests.people import new_person
from tests.softauthn import SoftAuthenticator

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEPARTMENT = "yl-jyj"


@dataclass
class World:
    runtime: Runtime
    service: PasskeyService
    origin: str

    async def official(self, roles: list[str], *, device: str = "browser") -> Principal:
        """An official with one enrolled key of kind *device*."""
        async with self.runtime.pool.acquire() as connection:
            person = await new_person(connection, DEPARTMENT, roles, device_kind=device)
        return person.principal

    async def register(self, principal: Principal, authenticator: SoftAuthenticator) -> uuid.UUID:
        caller = Caller(principal, "POST", "/v1/passkeys", "127.0.0.1")
        options = await self.service.registration_options(caller)
        added = await self.service.register(caller, authenticator.create(options), "手机", None)
        return added.id

    async def verify(self, principal: Principal, assertion: dict[str, object], signed: str) -> int:
        async with self.runtime.pool.acquire() as connection, connection.transaction():
            confirmed = await self.service.verify(
                connection, principal.official_id, assertion, signed, datetime.now(UTC)
            )
        return confirmed.sign_count


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("passkey-service")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_db_url: str, data_dir: Path) -> AsyncIterator[World]:
    settings = load_settings(
        {**gateway_database_env(module_db_url), "SEALHUB_DATA_DIR": str(data_dir)}
    )
    async with open_runtime(settings, demo=True) as runtime:
        service = passkey_service(runtime.pool, runtime.master_key, settings.public_origin)
        yield World(runtime, service, settings.public_origin)


async def test_two_assertions_racing_on_one_sign_count_only_one_is_accepted(world: World) -> None:
    official = await world.official(["clerk"])
    authenticator = SoftAuthenticator(world.origin)
    await world.register(official, authenticator)
    signed = "a.receipt.jws"
    # The same answer twice at the same moment (a replay racing the original).
    assertion = authenticator.confirm(signed)
    outcomes = await asyncio.gather(
        world.verify(official, assertion, signed),
        world.verify(official, assertion, signed),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidPasskey", "int"]
    # The next one from the authenticator counts on.
    assert await world.verify(official, authenticator.confirm(signed), signed) == 3


async def test_an_authenticator_without_a_counter_relies_on_what_it_confirms(
    world: World,
) -> None:
    """Sign count 0 every time (many synced passkeys): accepted, for what each confirms is
    single use itself (an assertion's nonce and jti, a receipt, an approval's jti)."""
    official = await world.official(["clerk"])
    authenticator = SoftAuthenticator(world.origin, counts=False)
    await world.register(official, authenticator)
    assert await world.verify(official, authenticator.confirm("x.y.z"), "x.y.z") == 0
    assert await world.verify(official, authenticator.confirm("x.y.z"), "x.y.z") == 0
    # But never over anything else.
    with pytest.raises(InvalidPasskey) as refused:
        await world.verify(official, authenticator.confirm("x.y.z"), "x.y.other")
    assert refused.value.reason == "assertion_refused"


async def test_step_up_is_demanded_only_of_console_keys_under_passkeys(
    world: World,
) -> None:
    console = await world.official(["leader"])
    key_file = await world.official(["leader"], device="file")
    now = datetime.now(UTC)

    async def step_up(principal: Principal, presented: object | None) -> object:
        async with world.runtime.pool.acquire() as connection, connection.transaction():
            return await world.service.step_up(
                connection, principal, "s.i.g", presented, needed=True, now=now
            )

    assert await step_up(console, None) is None  # no passkey yet
    authenticator = SoftAuthenticator(world.origin)
    passkey = await world.register(console, authenticator)
    with pytest.raises(StepUpRequired) as missing:
        await step_up(console, None)
    assert missing.value.status == 403
    confirmed = await step_up(console, authenticator.confirm("s.i.g"))
    assert confirmed is not None
    assert await step_up(key_file, None) is None
    # Another official's key cannot lean on this passkey.
    with pytest.raises(InvalidPasskey) as foreign:
        await step_up(key_file, authenticator.confirm("s.i.g"))
    assert foreign.value.reason == "unknown_credential"
    caller = Caller(console, "DELETE", "/v1/officials/x/passkeys/y", "127.0.0.1")
    with pytest.raises(StepUpRequired):  # its own console drops it only with a step-up
        await world.service.remove(caller, console.official_id, str(passkey))
    removed = await world.service.remove(
        caller, console.official_id, str(passkey), authenticator.confirm(removal_text(passkey))
    )
    assert removed.revoked_at is not None
    # The key it guarded still answers to passkeys (none left: no step-up can pass).
    with pytest.raises(StepUpRequired):
        await step_up(console, None)
    with pytest.raises(InvalidPasskey):
        await step_up(console, authenticator.confirm("s.i.g"))


async def test_registration_is_audited_with_its_rule(world: World) -> None:
    official = await world.official(["seal_keeper"])
    passkey = await world.register(official, SoftAuthenticator(world.origin))
    async with world.runtime.pool.acquire() as connection:
        details = await connection.fetchval(
            "SELECT details FROM audit_outbox WHERE type = 'passkey.registered'"
            " AND details->>'passkey' = $1",
            str(passkey),
        )
    assert details is not None
    assert details["via"] == "first" and details["official"] == official.official_id
    assert details["credential"] and "step_up" not in details
