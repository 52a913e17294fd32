"""What the exchange and workflow services need of passkeys: a signed act with its optional
step-up, and the check that verifies (or demands) it. Kept apart from the service so those
services depend on this small interface only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.identity.principal import Principal
from storage.db import DbConnection


@dataclass(frozen=True)
class Signed:
    """A signed act as its body carried it: the JWS and the passkey step-up confirming it
    (an AuthenticationResponseJSON whose challenge is b64url(SHA-256(ASCII of the JWS)))."""

    signature: str
    passkey: dict[str, Any] | None = None


def as_signed(value: str | Signed) -> Signed:
    return value if isinstance(value, Signed) else Signed(value)


class Confirmation(Protocol):
    def details(self) -> dict[str, Any]: ...


class StepUps(Protocol):
    async def step_up(
        self,
        connection: DbConnection,
        principal: Principal,
        signed: str,
        presented: object | None,
        *,
        needed: bool,
        now: datetime,
    ) -> Confirmation | None: ...


def details_of(confirmed: Confirmation | None) -> dict[str, Any] | None:
    return None if confirmed is None else confirmed.details()
