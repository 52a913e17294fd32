"""Who is asking: the authenticated official, and the request facts a refusal records.

Kept free of aiohttp so services can take them as plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as the database says it is now."""

    official_id: str
    name: str
    department: str
    roles: frozenset[str]
    kid: str
    # When the access token of this request expires: long-lived responses end there.
    token_expires_at: datetime | None = None
    # The key's kind ("browser": a console key, where passkeys apply; "file": SDK, CLI) and
    # the login's passkey state ("verified", "setup_required", "not_required").
    device_kind: str = "file"
    passkey: str = "not_required"
    device_label: str | None = None

    @property
    def console(self) -> bool:
        return self.device_kind == "browser"

    def has_any(self, roles: Iterable[str]) -> bool:
        return bool(self.roles & frozenset(roles))


@dataclass(frozen=True)
class Caller:
    """The principal (None on a public route) with what an ``access.denied`` event says
    about the request it was refused."""

    principal: Principal | None
    method: str
    path: str
    source: str

    @property
    def official(self) -> Principal:
        """The principal, on a route that authenticates."""
        if self.principal is None:
            raise RuntimeError("an authenticated caller was expected")
        return self.principal
