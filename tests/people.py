"""Officials for the in-process service tests, made as the storage layer makes them: the
official created in one go and one key inserted directly (no enrollment proof), so a test
can act as that person at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity import service as identity
from gateway.identity.principal import Caller, Principal
from keys.jws import jwk_thumbprint, public_jwk
from storage.audit_outbox import OutboxSink
from storage.db import DbConnection
from storage.identity import keys

SOURCE = "192.0.2.9"


@dataclass(frozen=True)
class Person:
    """An official with its key, as the gateway would authenticate it."""

    principal: Principal
    key: ec.EllipticCurvePrivateKey
    method: str = "GET"
    source: str = SOURCE

    @property
    def id(self) -> str:
        return self.principal.official_id

    @property
    def caller(self) -> Caller:
        return Caller(self.principal, self.method, "/v1/test", self.source)


async def new_person(
    connection: DbConnection,
    department: str,
    roles: list[str],
    *,
    name: str | None = None,
    with_key: bool = True,
    device_kind: str = "file",
    token_lifetime: timedelta | None = None,
) -> Person:
    """A new active official of *department* (named *name*, else a fresh 官员……) with a key
    of kind *device_kind* enrolled unless not *with_key*; its principal's token lasts
    *token_lifetime* from now when given."""
    now = datetime.now(UTC)
    private = ec.generate_private_key(ec.SECP256R1())
    kid = jwk_thumbprint(private.public_key())
    created = await identity.create_official(
        connection,
        name=name or "官员" + uuid.uuid4().hex[:6],
        department=department,
        roles=roles,
        now=now,
        audit=OutboxSink(),
        actor=None,
    )
    if with_key:
        await keys.insert_key(
            connection,
            kid=kid,
            official_id=created.official.id,
            public_jwk=public_jwk(private.public_key()),
            now=now,
            code_issued_by=None,
            code_cosigned_by=None,
            added_by_other=False,
            code_inherited_handlers=(),
            device_kind=device_kind,
        )
    principal = Principal(
        created.official.id,
        created.official.name,
        department,
        frozenset(roles),
        kid,
        token_expires_at=None if token_lifetime is None else now + token_lifetime,
        device_kind=device_kind,
    )
    return Person(principal, private)
