"""Identity repositories, one module per aggregate:

- :mod:`~storage.identity.officials`: officials (roles, department, status);
- :mod:`~storage.identity.enrollment_codes`: the one pending code per official;
- :mod:`~storage.identity.keys`: enrolled keys and who could hold them;
- :mod:`~storage.identity.refresh`: refresh families and tokens;
- :mod:`~storage.identity.replay`: single-use values;
- :mod:`~storage.identity.counters`: rate windows and failed attempts;
- :mod:`~storage.identity.gateway_secrets`: secrets shared by the gateway processes;
- :mod:`~storage.identity.official_requests`: four-eyes requests on people;
- :mod:`~storage.identity.errors`: the refusals they and the identity service raise.

They take the caller's connection and never open a transaction: the units of work, their
audit events and alerts are in gateway/identity/service.py. This package re-exports what
other domains read (``from storage import identity``; ``identity.key_owner(...)``).
"""

from __future__ import annotations

from datetime import datetime

from storage.db import DbConnection
from storage.identity import counters, replay
from storage.identity.counters import FailureKind, bump_counter, count_failure
from storage.identity.errors import (
    DepartmentUnknown,
    EnrollmentCodeExpired,
    EnrollmentCodeInvalid,
    EnrollmentCodeLocked,
    EnrollmentCodeUsed,
    IdentityError,
    InvalidRoles,
    KeyAlreadyEnrolled,
    KeyNotFound,
    OfficialDisabled,
    OfficialNotFound,
    RefreshTokenInvalid,
    RefreshTokenReused,
    Replayed,
    ReplayedAssertion,
    ReplayedDpop,
    ReplayedEnrollmentProof,
    ReplayedNonce,
    RequestDecided,
    RequestNotFound,
    SamePerson,
)
from storage.identity.gateway_secrets import gateway_secret
from storage.identity.keys import (
    KeyOwner,
    OfficialKey,
    authenticate_request,
    code_handlers_of_key,
    independent_people,
    key_owner,
)
from storage.identity.official_requests import OfficialRequest
from storage.identity.officials import (
    DEPT_ADMIN_GRANTABLE,
    ROLES,
    Official,
    get_official,
    normalize_roles,
)
from storage.identity.refresh import SESSIONS_CHANNEL
from storage.identity.replay import ReplayKind, spend_all, use_once


async def purge_expired(connection: DbConnection, *, now: datetime) -> None:
    """Forget single-use values and counters that can no longer matter."""
    await replay.purge_expired(connection, now=now)
    await counters.purge_expired(connection, now=now)


__all__ = [
    "DEPT_ADMIN_GRANTABLE",
    "ROLES",
    "SESSIONS_CHANNEL",
    "DepartmentUnknown",
    "EnrollmentCodeExpired",
    "EnrollmentCodeInvalid",
    "EnrollmentCodeLocked",
    "EnrollmentCodeUsed",
    "FailureKind",
    "IdentityError",
    "InvalidRoles",
    "KeyAlreadyEnrolled",
    "KeyNotFound",
    "KeyOwner",
    "Official",
    "OfficialDisabled",
    "OfficialKey",
    "OfficialNotFound",
    "OfficialRequest",
    "RefreshTokenInvalid",
    "RefreshTokenReused",
    "ReplayKind",
    "Replayed",
    "ReplayedAssertion",
    "ReplayedDpop",
    "ReplayedEnrollmentProof",
    "ReplayedNonce",
    "RequestDecided",
    "RequestNotFound",
    "SamePerson",
    "authenticate_request",
    "bump_counter",
    "code_handlers_of_key",
    "count_failure",
    "gateway_secret",
    "get_official",
    "independent_people",
    "key_owner",
    "normalize_roles",
    "purge_expired",
    "spend_all",
    "use_once",
]
