"""Identity units of work: officials, their keys and four-eyes requests; logins and refresh.

Who may do what (docs/api.md): an ``admin`` anything anywhere; a ``dept_admin`` only inside
its own department and only for officials whose roles it could have granted itself
(``clerk``, ``leader``, ``seal_keeper``, ``system``); every official its own keys.
Officials of another department are 404, a missing right inside one's department is 403,
both audited as ``access.denied``.

Acts on someone else's identity take two people (issue 16): a manager-issued enrollment code
for an official that has a key or holds admin, inspector, leader or seal_keeper (the code of a
new official with one of those roles included), and a move from one department to another
(proposed by the releasing side, accepted by the receiving one, or done by a platform
admin). The first person opens an ``official_requests`` row, the second approves it; two
ids only count as two people when neither handled the enrollment code of the key the other
acts with.

Every method owns its transaction and writes its audit events (and alerts) in it; the
repositories in storage/identity only run statements on the connection they are given.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol, TypeGuard

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.http.ratelimit import Limit, pace_source
from gateway.http.ratelimit import check as rate_limit
from gateway.identity.access import AccessLog, Clock, reason_of
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.nonces import NonceIssuers
from gateway.identity.principal import Caller, Principal
from gateway.paging import Page
from gateway.passkeys.errors import InvalidPasskey, StepUpRequired
from keys import keystore as keystore_module
from keys.challenge import (
    NONCE_MAX_AGE,
    ChallengeError,
    enrollment_code_matches,
    generate_enrollment_code,
    hash_enrollment_code,
)
from keys.dpop import DpopProof
from keys.jws import (
    InvalidAssertionError,
    JwsError,
    LoginAssertion,
    issue_access_token,
    parse_public_jwk,
    read_unverified,
    verify_enrollment_proof,
    verify_login_assertion,
)
from keys.keystore import KeyStore, KeyStoreError
from storage import audit_events as events
from storage import passkeys as passkey_rows
from storage import supervision
from storage.audit_outbox import AuditEvent, AuditSink
from storage.db import DbConnection
from storage.identity import (
    enrollment_codes,
    keys,
    official_requests,
    officials,
    refresh,
    replay,
)
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
    ReplayedEnrollmentProof,
    RequestDecided,
    SamePerson,
)
from storage.identity.keys import AddedKey, KeyOwner, OfficialKey
from storage.identity.official_requests import Decision, OfficialRequest, RequestKind
from storage.identity.officials import (
    ADMIN_GRANTED_ROLES,
    DEPT_ADMIN_GRANTABLE,
    ListedOfficial,
    Official,
)
from storage.vocabulary import OfficialRequestKind, OfficialRequestStatus, Role

MANAGERS: frozenset[Role] = frozenset({Role.ADMIN, Role.DEPT_ADMIN})
# Who may list the officials of a department other than its own.
LIST_ANY_DEPARTMENT: frozenset[Role] = frozenset({Role.ADMIN, Role.INSPECTOR})
# A manager-issued enrollment code for an official holding one of these always takes two
# managers, whether or not the official still has a working key.
FOUR_EYES_ROLES: frozenset[Role] = frozenset(
    {Role.ADMIN, Role.INSPECTOR, Role.LEADER, Role.SEAL_KEEPER}
)
# Roles an official keeps when it moves; anything else the receiving side must grant again.
TRAVELLING_ROLES: frozenset[Role] = frozenset({Role.CLERK})

ENROLLMENT_CODE_LIFETIME = timedelta(hours=72)
ENROLLMENT_MAX_ATTEMPTS = 5
REFRESH_TOKEN_LIFETIME = timedelta(hours=12)
REFRESH_FAMILY_LIFETIME = timedelta(days=7)
REFRESH_TOKEN_PREFIX = "shrt_"  # noqa: S105 (a recognisable prefix, not a secret)
TOKEN_PATH = "/v1/auth/token"  # noqa: S105 (a path, not a secret)

_GRANT_LIMIT = "a dept_admin may grant only clerk, leader, seal_keeper, system"
_ADMIN_BY_TWO = "an admin is made only by two admins (POST /v1/officials)"
_MAX_SUBJECT_CHARS = 64

Limits = Mapping[tuple[str, str], Limit]


def is_official_id(value: object) -> TypeGuard[str]:
    """An official id as a login names it: short and printable (it keys rate-limit rows
    and log lines)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= _MAX_SUBJECT_CHARS
        and value.isprintable()
        and value.isascii()
    )


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialQuery:
    """Filters of the officials list: a department (None: the caller's), text in the name
    or id (found literally)."""

    department: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class NewOfficial:
    official: Official
    enrollment_code: str = field(repr=False)
    code_expires_at: datetime


@dataclass(frozen=True)
class IssuedCode:
    """A fresh enrollment code for an official (only its hash is stored)."""

    official_id: str
    enrollment_code: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class IssuedRefreshToken:
    token: str = field(repr=False)
    family_id: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint answers. ``notices``: logins only. ``passkey``: the login's
    passkey state, which its access tokens carry."""

    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    notices: tuple[AddedKey, ...] | None = None
    passkey: str = "not_required"


@dataclass(frozen=True)
class DeviceInfo:
    """What an enrolling client says it is: ``browser`` (a console key) or ``file``."""

    kind: str = "file"
    label: str | None = None


@dataclass(frozen=True)
class Challenge:
    nonce: str
    expires_in: int


# --- units of work on a connection ------------------------------------------------------------


async def _store_new_code(
    connection: DbConnection,
    official_id: str,
    now: datetime,
    *,
    issued_by: str | None,
    cosigned_by: str | None = None,
    inherited_handlers: Iterable[str] = (),
) -> tuple[str, datetime]:
    code = generate_enrollment_code()
    expires_at = now + ENROLLMENT_CODE_LIFETIME
    await enrollment_codes.store(
        connection,
        official_id,
        code_hash=hash_enrollment_code(code, official_id=official_id),
        now=now,
        expires_at=expires_at,
        issued_by=issued_by,
        cosigned_by=cosigned_by,
        inherited_handlers=inherited_handlers,
    )
    return code, expires_at


async def _create_official(
    connection: DbConnection,
    *,
    name: str,
    department: str,
    roles: Sequence[str],
    now: datetime,
    audit: AuditSink,
    actor: str | None,
    via: str,
    cosigned_by: str | None = None,
) -> NewOfficial:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRoles("name must have 1 to 200 characters")
    chosen = officials.normalize_roles(roles)
    if not await officials.department_exists(connection, department):
        raise DepartmentUnknown(f"no department {department!r}")
    official = await officials.insert_official(
        connection,
        official_id=str(uuid.uuid4()),
        name=name,
        department=department,
        roles=chosen,
        now=now,
    )
    code, expires_at = await _store_new_code(
        connection, official.id, now, issued_by=actor, cosigned_by=cosigned_by
    )
    await audit.record(
        connection,
        events.official_created(
            now,
            actor_official=actor,
            department=department,
            official=official.id,
            roles=chosen,
            via=via,
            cosigned_by=cosigned_by,
        ),
    )
    return NewOfficial(official, code, expires_at)


async def create_official(
    connection: DbConnection,
    *,
    name: str,
    department: str,
    roles: Sequence[str],
    now: datetime,
    audit: AuditSink,
    actor: str | None,
    via: str = "api",
    cosigned_by: str | None = None,
) -> NewOfficial:
    """A new official with a one-time enrollment code, in one transaction on *connection*.

    The bootstrap path (``sealhub official create``, where local access is the trust anchor
    and any role may be granted); *actor* receives the code and is recorded as its issuer.
    """
    async with connection.transaction():
        return await _create_official(
            connection,
            name=name,
            department=department,
            roles=roles,
            now=now,
            audit=audit,
            actor=actor,
            via=via,
            cosigned_by=cosigned_by,
        )


async def _new_enrollment_code(
    connection: DbConnection,
    official_id: str,
    *,
    now: datetime,
    audit: AuditSink,
    issued_by: str,
    issued_with_kid: str | None,
    cosigned_by: str | None = None,
) -> IssuedCode:
    """Replace the official's pending code (a second device, a lost code), audited with the
    official who receives the code as actor and the cosigning manager, if any."""
    official = await officials.get_official(connection, official_id, for_update=True)
    if not official.active:
        raise OfficialDisabled("the official is disabled")
    # Asked with its own key: the new code carries whoever could hold that key, so a
    # borrowed key cannot be re-keyed into a "fresh" identity of nobody's but its own.
    inherited = (
        await keys.code_handlers_of_key(connection, issued_with_kid) - {official.id}
        if issued_by == official.id
        else frozenset()
    )
    code, expires_at = await _store_new_code(
        connection,
        official.id,
        now,
        issued_by=issued_by,
        cosigned_by=cosigned_by,
        inherited_handlers=inherited,
    )
    if issued_by == official.id:
        via = "self"
    elif cosigned_by is None:
        via = "manager"
    else:
        via = "four_eyes"
    await audit.record(
        connection,
        events.enrollment_code_issued(
            now,
            issued_by=issued_by,
            issued_with_kid=issued_with_kid,
            department=official.department,
            official=official.id,
            cosigned_by=cosigned_by,
            inherited_handlers=inherited,
            via=via,
            expires_at=expires_at,
        ),
    )
    return IssuedCode(official.id, code, expires_at)


async def _enroll(
    connection: DbConnection,
    official_id: str,
    enrollment_code: str,
    kid: str,
    public_jwk: dict[str, str],
    now: datetime,
    audit: AuditSink,
    device: DeviceInfo,
) -> OfficialKey | IdentityError:
    """Consume the code and register the key, or the refusal (returned, not raised: a
    wrong code's counted attempt must commit)."""
    try:
        official = await officials.get_official(connection, official_id, for_update=True)
    except OfficialNotFound:
        # Unauthenticated callers learn nothing about which ids exist.
        return EnrollmentCodeInvalid("the enrollment code is not valid")
    code = await enrollment_codes.pending_code(connection, official.id)
    if code is None:
        return EnrollmentCodeInvalid("the enrollment code is not valid")
    if code.used_at is not None:
        return EnrollmentCodeUsed("the enrollment code was already used")
    if code.failed_attempts >= ENROLLMENT_MAX_ATTEMPTS:
        return EnrollmentCodeLocked("too many wrong attempts: ask for a new enrollment code")
    if now >= code.expires_at:
        return EnrollmentCodeExpired("the enrollment code has expired")
    if not enrollment_code_matches(enrollment_code, code.code_hash, official_id=official.id):
        await enrollment_codes.count_failed_attempt(connection, official.id)
        return EnrollmentCodeInvalid("the enrollment code is not valid")
    if not official.active:
        return OfficialDisabled("the official is disabled")
    # Someone else's code on an identity that already existed: the department and the
    # official must hear of it (a first key from the creator's code is the normal path).
    added_by_other = (
        code.issued_by != official.id and await keys.count_keys(connection, official.id) > 0
    )
    key = await keys.insert_key(
        connection,
        kid=kid,
        official_id=official.id,
        public_jwk=public_jwk,
        now=now,
        code_issued_by=code.issued_by,
        code_cosigned_by=code.cosigned_by,
        added_by_other=added_by_other,
        code_inherited_handlers=code.inherited_handlers,
        device_kind=device.kind,
        label=device.label,
    )
    if key is None:
        return KeyAlreadyEnrolled("this key is already enrolled")
    await enrollment_codes.mark_used(connection, official.id, now=now)
    details = events.key_enrolled_details(
        official=official.id,
        kid=kid,
        code_issued_by=code.issued_by,
        code_cosigned_by=code.cosigned_by,
        added_by_other=added_by_other,
    )
    await audit.record(
        connection,
        events.key_enrolled(
            now,
            # The real actor is whoever handed out the code; the key is only its instrument.
            actor_official=code.issued_by if code.issued_by is not None else official.id,
            kid=kid,
            department=official.department,
            details=details,
        ),
    )
    if added_by_other:
        await _alert_key_added_by_other(connection, official, kid, details, now, audit)
    return key


async def _alert_key_added_by_other(
    connection: DbConnection,
    official: Official,
    kid: str,
    details: dict[str, Any],
    now: datetime,
    audit: AuditSink,
) -> None:
    alert = await supervision.open_alert(
        connection,
        rule=supervision.KEY_ADDED_BY_OTHER,
        subject=f"key:{kid}",
        department=official.department,
        details=details,
        now=now,
    )
    if alert is not None:
        await audit.record(
            connection,
            events.alert_opened(
                now,
                department=official.department,
                alert=alert.id,
                rule=alert.rule,
                subject=alert.subject,
                details=details,
            ),
        )


async def _transfer(
    connection: DbConnection,
    official_id: str,
    *,
    department: str,
    granted: Sequence[str],
    now: datetime,
    audit: AuditSink,
    actor: str,
    actor_jkt: str | None,
    proposed_by: str | None = None,
    request_id: str | None = None,
) -> Official:
    """Move an official: it keeps only ``clerk`` plus the roles *granted* by the receiving
    side; every key, refresh family and pending enrollment code ends (it enrolls anew in its
    new department). Recorded in both departments' audit views."""
    extra = officials.normalize_roles(granted)
    official = await officials.get_official(connection, official_id, for_update=True)
    if not official.active:
        raise OfficialDisabled("the official is disabled")
    if department == official.department:
        raise InvalidRoles("the official is already in that department")
    if not await officials.department_exists(connection, department):
        raise DepartmentUnknown(f"no department {department!r}")
    chosen = tuple(sorted((set(official.roles) & TRAVELLING_ROLES) | set(extra)))
    moved = await officials.move(
        connection, official.id, department=department, roles=chosen, now=now
    )
    revoked = await keys.revoke_all_keys(connection, official.id, now=now)
    families = await refresh.revoke_families(
        connection, now=now, reason="transferred", official_id=official.id
    )
    await enrollment_codes.delete(connection, official.id)
    await official_requests.cancel_pending_for(connection, official.id, now=now, keep=request_id)
    details = {
        "official": official.id,
        "from": official.department,
        "to": department,
        "roles_before": list(official.roles),
        "roles_after": list(chosen),
        "keys_revoked": revoked,
        "refresh_families_revoked": families,
        "proposed_by": proposed_by,
        "request": request_id,
    }
    for side, concerned in (("out", official.department), ("in", department)):
        await audit.record(
            connection,
            events.official_transferred(
                now,
                actor_official=actor,
                actor_jkt=actor_jkt,
                department=concerned,
                side=side,
                details=details,
            ),
        )
    return moved


def _request_events(
    decision: Decision | None,
    request: OfficialRequest,
    now: datetime,
    actor: str | None,
    jkt: str | None,
) -> list[AuditEvent]:
    """``official_request.opened`` (*decision* None) or its decision, one event per
    department concerned (a transfer: both)."""
    departments = [request.department]
    if request.target_department is not None:
        departments.append(request.target_department)
    return [
        events.official_request_event(
            decision,
            now,
            actor_official=actor,
            actor_jkt=jkt,
            department=department,
            request=request.id,
            kind=request.kind,
            official=request.official,
            target_department=request.target_department,
            requested_by=request.requested_by,
            request_status=request.status,
        )
        for department in departments
    ]


async def _open_request(
    connection: DbConnection,
    caller: Principal,
    *,
    kind: RequestKind,
    official: str | None,
    department: str,
    now: datetime,
    audit: AuditSink,
    target_department: str | None = None,
    payload: dict[str, Any] | None = None,
) -> OfficialRequest:
    """A pending request, or the one already pending of this kind for this official."""
    if official is not None:
        await officials.get_official(connection, official, for_update=True)
        existing = await official_requests.find_pending(connection, kind, official)
        if existing is not None:
            return existing
    for code in (department, target_department):
        if code is not None and not await officials.department_exists(connection, code):
            raise DepartmentUnknown(f"no department {code!r}")
    opened = await official_requests.insert_request(
        connection,
        kind=kind,
        official=official,
        department=department,
        target_department=target_department,
        payload=payload or {},
        requested_by=caller.official_id,
        requested_with_kid=caller.kid,
        now=now,
    )
    for event in _request_events(None, opened, now, caller.official_id, caller.kid):
        await audit.record(connection, event)
    return opened


async def _decide(
    connection: DbConnection,
    request_id: str,
    caller: Principal,
    *,
    status: Decision,
    now: datetime,
    audit: AuditSink,
) -> OfficialRequest:
    """Close a pending request (the caller's transaction then performs the act)."""
    current = await official_requests.get_request(connection, request_id, for_update=True)
    if current.status != OfficialRequestStatus.PENDING:
        raise RequestDecided("this request was already decided")
    if status == OfficialRequestStatus.APPROVED and caller.official_id == current.requested_by:
        raise SamePerson("a second, different official must approve this request")
    decided = await official_requests.set_decision(
        connection,
        current.id,
        status=status,
        decided_by=None if status == OfficialRequestStatus.CANCELLED else caller.official_id,
        now=now,
    )
    for event in _request_events(status, decided, now, caller.official_id, caller.kid):
        await audit.record(connection, event)
    return decided


def admins_only(request: OfficialRequest, official_roles: Iterable[str] = ()) -> bool:
    """A request only an admin may see and decide: a new official, or a code for an
    official, with a role only an admin grants. *official_roles*: the current roles of the
    official an enrollment-code request is for."""
    if request.kind == OfficialRequestKind.CREATE_OFFICIAL:
        roles: Iterable[str] = request.payload.get("roles", [])
    elif request.kind == OfficialRequestKind.ENROLLMENT_CODE:
        roles = official_roles
    else:
        return False
    return bool(set(roles) & ADMIN_GRANTED_ROLES)


# --- officials ------------------------------------------------------------------------------


class OfficialsService:
    """Officials, their keys and the four-eyes requests on them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        audit: AuditSink,
        clock: Clock,
        access: AccessLog,
        limits: Limits,
    ) -> None:
        self._pool = pool
        self._audit = audit
        self._clock = clock
        self._access = access
        self._limits = dict(limits)

    # Who may: every refusal is audited before it is raised.

    async def _forbid(self, caller: Caller, detail: str) -> NoReturn:
        await self._access.deny(caller, "role_missing")
        raise Forbidden(detail)

    async def _require_department(self, caller: Caller, department: str) -> None:
        """Another department's official is 404 for all but an admin."""
        principal = caller.official
        if principal.department != department and Role.ADMIN not in principal.roles:
            raise await self._access.hide(caller, "other_department")

    async def _require_manager(self, caller: Caller, official: Official) -> Principal:
        """An admin, or a dept_admin of the official's department managing an ordinary
        official."""
        principal = caller.official
        if Role.ADMIN in principal.roles:
            return principal
        if Role.DEPT_ADMIN in principal.roles and principal.department == official.department:
            if set(official.roles) <= DEPT_ADMIN_GRANTABLE:
                return principal
            await self._forbid(caller, "only an admin may manage an official with these roles")
        await self._forbid(caller, "you may not manage this official")

    async def _check_grant(self, caller: Caller, department: str, roles: Iterable[str]) -> None:
        if Role.ADMIN in caller.official.roles:
            return
        await self._require_department(caller, department)
        if not set(roles) <= DEPT_ADMIN_GRANTABLE:
            await self._forbid(caller, _GRANT_LIMIT)

    async def official(self, caller: Caller, official_id: str) -> Official:
        """The official, 404 when absent or (unless it is the caller) in another department."""
        async with self._pool.acquire() as connection:
            official = await officials.get_official(connection, official_id)
        if official.id != caller.official.official_id:
            await self._require_department(caller, official.department)
        return official

    async def managed_official(self, caller: Caller, official_id: str) -> Official:
        """The official, when the caller may manage it (404 or 403 otherwise)."""
        official = await self.official(caller, official_id)
        await self._require_manager(caller, official)
        return official

    async def _own_or_managed(self, caller: Caller, official_id: str) -> Official:
        official = await self.official(caller, official_id)
        if official.id != caller.official.official_id:
            await self._require_manager(caller, official)
        return official

    # Officials.

    async def create_official(
        self, caller: Caller, *, name: str, department: str, roles: Sequence[str]
    ) -> NewOfficial | OfficialRequest:
        """A new official holding admin, inspector, leader or seal_keeper takes two managers:
        the first call opens a request; another manager who could grant those roles approves
        it and receives the enrollment code (so nobody alone holds a privileged key)."""
        await self._check_grant(caller, department, roles)
        principal = caller.official
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            if set(roles) & FOUR_EYES_ROLES:
                return await _open_request(
                    connection,
                    principal,
                    kind=OfficialRequestKind.CREATE_OFFICIAL,
                    official=None,
                    department=department,
                    payload={"name": name.strip(), "department": department, "roles": list(roles)},
                    now=now,
                    audit=self._audit,
                )
            return await _create_official(
                connection,
                name=name,
                department=department,
                roles=roles,
                now=now,
                audit=self._audit,
                actor=principal.official_id,
                via="api",
            )

    async def enrollment_code(
        self, caller: Caller, official_id: str
    ) -> IssuedCode | OfficialRequest:
        """A new code: the official's own (asked with its key; not from a console key under
        passkeys), a manager's for an official without a key or privileged role, else a
        four-eyes request."""
        official = await self.official(caller, official_id)
        principal = caller.official
        own = official.id == principal.official_id
        if not own:
            await self._require_manager(caller, official)
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            if (
                own
                and principal.console
                and await passkey_rows.binds(connection, official.id, principal.kid)
            ):
                # A key of one's own would shed the passkey (a new key registers its own,
                # a key file needs none): from a console under passkeys, ask the managers.
                raise StepUpRequired("a console key under passkeys asks its managers for a code")
            if not own and (
                set(official.roles) & FOUR_EYES_ROLES
                or await keys.has_active_key(connection, official.id)
            ):
                return await _open_request(
                    connection,
                    principal,
                    kind=OfficialRequestKind.ENROLLMENT_CODE,
                    official=official.id,
                    department=official.department,
                    now=now,
                    audit=self._audit,
                )
            return await _new_enrollment_code(
                connection,
                official.id,
                now=now,
                audit=self._audit,
                issued_by=principal.official_id,
                issued_with_kid=principal.kid,
            )

    async def pace_enrollment(self, official_id: str, source: str) -> None:
        """Slow a flooding source down, refuse a flooded official (429), before the body is
        even read."""
        now = self._clock()
        await pace_source(self._pool, "enroll", source, now=now, limits=self._limits)
        async with self._pool.acquire() as connection:
            await rate_limit(
                connection, "enroll", "subject", official_id[:64], now=now, limits=self._limits
            )

    async def enroll_key(
        self, official_id: str, proof: str, *, source: str, device: DeviceInfo | None = None
    ) -> OfficialKey:
        """Consume the enrollment code the proof carries and register the key that signed
        it; a wrong code costs one attempt (committed although the call fails)."""
        now = self._clock()
        try:
            checked = verify_enrollment_proof(proof, official_id=official_id, now=now)
            async with self._pool.acquire() as connection, connection.transaction():
                outcome = await _enroll(
                    connection,
                    official_id,
                    checked.enrollment_code,
                    checked.thumbprint,
                    checked.public_jwk,
                    now,
                    self._audit,
                    device or DeviceInfo(),
                )
                if isinstance(outcome, OfficialKey) and not await replay.use_once(
                    connection, "enroll", checked.thumbprint, checked.jti, checked.replay_until
                ):
                    raise ReplayedEnrollmentProof("this enrollment proof was already used")
            if isinstance(outcome, IdentityError):
                raise outcome
        except (JwsError, IdentityError) as exc:
            await self._access.failure(source, "enroll", reason_of(exc))
            raise
        return outcome

    async def list_officials(
        self, caller: Caller, query: OfficialQuery, *, after: tuple[str, str] | None, limit: int
    ) -> Page[ListedOfficial]:
        """A department's officials (the caller's own unless named): an admin or inspector
        may name any department; anyone else naming another, or a department that does not
        exist, gets the audited 404 that hides it (the same answer for both)."""
        principal = caller.official
        department = query.department or principal.department
        may_look_anywhere = principal.has_any(LIST_ANY_DEPARTMENT)
        if department != principal.department and not may_look_anywhere:
            raise await self._access.hide(caller, "other_department")
        async with self._pool.acquire() as connection:
            if not await officials.department_exists(connection, department):
                raise await self._access.hide(caller, "no_such_department")
            found = await officials.list_officials(
                connection, department, text=query.text, after=after, limit=limit + 1
            )
        return Page.of(found, limit)

    async def list_keys(self, caller: Caller, official_id: str) -> list[OfficialKey]:
        official = await self._own_or_managed(caller, official_id)
        async with self._pool.acquire() as connection:
            return await keys.list_keys(connection, official.id)

    async def revoke_key(self, caller: Caller, official_id: str, kid: str) -> OfficialKey:
        """Revoke at once: the next request with a token bound to it fails the key check."""
        official = await self._own_or_managed(caller, official_id)
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            official = await officials.get_official(connection, official.id, for_update=True)
            key = await keys.revoke_key(connection, official.id, kid, now=now)
            if key is None:
                raise KeyNotFound("no such key")
            families = await refresh.revoke_families(
                connection, now=now, reason="key_revoked", kid=kid
            )
            await self._audit.record(
                connection,
                events.key_revoked(
                    now,
                    actor_official=caller.official.official_id,
                    department=official.department,
                    official=official.id,
                    kid=kid,
                    refresh_families_revoked=families,
                ),
            )
        return key

    async def disable(self, caller: Caller, official_id: str) -> Official:
        """No more logins; its tokens are refused at once and its refresh families end."""
        official = await self.managed_official(caller, official_id)
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            official = await officials.get_official(connection, official.id, for_update=True)
            disabled = await officials.set_disabled(connection, official.id, now=now)
            families = await refresh.revoke_families(
                connection, now=now, reason="disabled", official_id=official.id
            )
            await self._audit.record(
                connection,
                events.official_disabled(
                    now,
                    actor_official=caller.official.official_id,
                    department=official.department,
                    official=official.id,
                    refresh_families_revoked=families,
                ),
            )
        return disabled

    async def transfer(
        self, caller: Caller, official: Official, *, department: str, granted: Sequence[str]
    ) -> Official | OfficialRequest:
        """*official* (from :meth:`managed_official`) to *department*: at once by an admin,
        else a proposal the receiving dept_admin accepts. The official arrives with ``clerk``
        (if it had it) plus the roles the receiving side grants."""
        principal = caller.official
        if Role.ADMIN in granted:
            await self._forbid(caller, _ADMIN_BY_TWO)
        if department == official.department:
            raise InvalidRoles("the official is already in that department")
        if Role.ADMIN not in principal.roles and granted:
            await self._forbid(caller, "roles in the new department are granted by its side")
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            if Role.ADMIN not in principal.roles:
                return await _open_request(
                    connection,
                    principal,
                    kind=OfficialRequestKind.TRANSFER,
                    official=official.id,
                    department=official.department,
                    target_department=department,
                    now=now,
                    audit=self._audit,
                )
            return await _transfer(
                connection,
                official.id,
                department=department,
                granted=granted,
                now=now,
                audit=self._audit,
                actor=principal.official_id,
                actor_jkt=principal.kid,
            )

    # The second person.

    async def list_requests(self, caller: Caller, status: str | None) -> list[OfficialRequest]:
        """Newest first: an admin's all, a dept_admin's those concerning its department that
        a dept_admin could decide."""
        principal = caller.official
        department = None if Role.ADMIN in principal.roles else principal.department
        async with self._pool.acquire() as connection:
            found = await official_requests.list_requests(
                connection, department=department, status=status
            )
        return [item for item, roles in found if department is None or not admins_only(item, roles)]

    async def visible_request(self, caller: Caller, request_id: str) -> OfficialRequest:
        """The request: an admin sees all, a dept_admin those concerning its department
        (either side of a transfer) that a dept_admin could decide (not a code for an admin,
        inspector or dept_admin); else 404, for approving and declining alike."""
        principal = caller.official
        async with self._pool.acquire() as connection:
            pending = await official_requests.get_request(connection, request_id)
            if Role.ADMIN in principal.roles:
                return pending
            official_roles: tuple[str, ...] = ()
            if pending.official is not None:
                found = await officials.get_official(connection, pending.official)
                official_roles = found.roles
        concerned = principal.department in (pending.department, pending.target_department)
        if concerned and not admins_only(pending, official_roles):
            return pending
        await self._access.deny(caller, "other_department")
        raise NotFound()

    async def _check_approval(
        self, caller: Caller, pending: OfficialRequest, granted: Sequence[str]
    ) -> None:
        """The approver could have done the act alone, were it not for the four eyes."""
        principal = caller.official
        if pending.kind != OfficialRequestKind.TRANSFER and granted:
            raise InvalidRoles("roles are granted only when accepting a transfer")
        if pending.kind == OfficialRequestKind.ENROLLMENT_CODE:
            assert pending.official is not None
            async with self._pool.acquire() as connection:
                official = await officials.get_official(connection, pending.official)
            await self._require_manager(caller, official)
            if official.id == principal.official_id:
                raise SamePerson("ask for your own code yourself, signed with your key")
        elif pending.kind == OfficialRequestKind.CREATE_OFFICIAL:
            await self._check_grant(caller, pending.department, pending.payload.get("roles", []))
        else:
            if Role.ADMIN not in principal.roles:
                if principal.department != pending.target_department:
                    await self._forbid(caller, "the receiving department accepts a transfer")
                if not set(granted) <= DEPT_ADMIN_GRANTABLE:
                    await self._forbid(caller, _GRANT_LIMIT)
            if Role.ADMIN in granted:
                await self._forbid(caller, _ADMIN_BY_TWO)

    async def _require_independent(
        self, connection: DbConnection, caller: Caller, pending: OfficialRequest
    ) -> None:
        """The approver is another person: not the requester, and neither handled the
        enrollment code of the key the other acts with."""
        principal = caller.official
        if not keys.independent_people(
            pending.requested_by,
            await keys.code_handlers_of_key(connection, pending.requested_with_kid),
            principal.official_id,
            await keys.code_handlers_of_key(connection, principal.kid),
        ):
            await self._access.deny(caller, "same_person")
            raise SamePerson("a second, different person must approve this request")

    async def approve_request(
        self, caller: Caller, pending: OfficialRequest, granted: Sequence[str]
    ) -> IssuedCode | NewOfficial | Official:
        """*pending* (from :meth:`visible_request`) approved and its act done, in one
        transaction: the approver receives a four-eyes code or the new official's code, or
        the official arrives in the approver's department with the *granted* roles."""
        await self._check_approval(caller, pending, granted)
        principal = caller.official
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            if pending.official is not None:
                # The official's row before the request's, as a transfer takes them: else an
                # approval racing a transfer of the same official deadlocks (a 500).
                await officials.get_official(connection, pending.official, for_update=True)
            await self._require_independent(connection, caller, pending)
            decided = await _decide(
                connection,
                pending.id,
                principal,
                status=OfficialRequestStatus.APPROVED,
                now=now,
                audit=self._audit,
            )
            return await self._perform(connection, principal, decided, granted, now)

    async def _perform(
        self,
        connection: DbConnection,
        principal: Principal,
        decided: OfficialRequest,
        granted: Sequence[str],
        now: datetime,
    ) -> IssuedCode | NewOfficial | Official:
        if decided.kind == OfficialRequestKind.ENROLLMENT_CODE:
            assert decided.official is not None
            return await _new_enrollment_code(
                connection,
                decided.official,
                now=now,
                audit=self._audit,
                issued_by=principal.official_id,
                issued_with_kid=principal.kid,
                cosigned_by=decided.requested_by,
            )
        if decided.kind == OfficialRequestKind.CREATE_OFFICIAL:
            return await _create_official(
                connection,
                name=str(decided.payload["name"]),
                department=str(decided.payload["department"]),
                roles=[str(role) for role in decided.payload["roles"]],
                now=now,
                audit=self._audit,
                actor=principal.official_id,
                via="four_eyes",
                cosigned_by=decided.requested_by,
            )
        assert decided.official is not None
        assert decided.target_department is not None
        return await _transfer(
            connection,
            decided.official,
            department=decided.target_department,
            granted=granted,
            now=now,
            audit=self._audit,
            actor=principal.official_id,
            actor_jkt=principal.kid,
            proposed_by=decided.requested_by,
            request_id=decided.id,
        )

    async def decline_request(self, caller: Caller, request_id: str) -> OfficialRequest:
        """Its requester withdraws it (cancelled), or a would-be approver declines it."""
        pending = await self.visible_request(caller, request_id)
        principal = caller.official
        withdrawn = pending.requested_by == principal.official_id
        async with self._pool.acquire() as connection, connection.transaction():
            return await _decide(
                connection,
                pending.id,
                principal,
                status=(
                    OfficialRequestStatus.CANCELLED if withdrawn else OfficialRequestStatus.DECLINED
                ),
                now=self._clock(),
                audit=self._audit,
            )


# --- logins ---------------------------------------------------------------------------------

# The DPoP proof of a token request, checked by the HTTP edge when the service asks for it
# (after the grant parses, as the errors' order has always been).
ProofCheck = Callable[[], Awaitable[DpopProof]]


def _token_signing_key(store: KeyStore) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """The active ``token`` key, created on first use."""
    kid = store.ensure(keystore_module.TOKEN, "ES256")
    key = store.get_private(keystore_module.TOKEN, kid)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyStoreError("the token key is not an EC key")
    return kid, key


class PasskeyGate(Protocol):
    """The passkey checks of logins (gateway.passkeys.service.PasskeyService)."""

    async def login_state(
        self,
        connection: DbConnection,
        owner: KeyOwner,
        assertion: str,
        presented: str | None,
        now: datetime,
    ) -> tuple[str, Any]: ...

    async def refresh_state(
        self, connection: DbConnection, owner: KeyOwner, family_state: str
    ) -> str: ...


class LoginService:
    """Challenges, logins (RFC 7523 assertion + RFC 9449 DPoP), refresh-token rotation."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        audit: AuditSink,
        clock: Clock,
        access: AccessLog,
        nonces: NonceIssuers,
        limits: Limits,
        keystore: KeyStore,
        public_origin: str,
        access_token_seconds: int,
        passkeys: PasskeyGate,
    ) -> None:
        self._pool = pool
        self._audit = audit
        self._clock = clock
        self._access = access
        self._passkeys = passkeys
        self._nonces = nonces
        self._limits = dict(limits)
        self._keystore = keystore
        self._origin = public_origin
        self._token_seconds = access_token_seconds

    async def pace(self, endpoint: str, source: str) -> None:
        """Slow a flooding source down (never refused: an office may share its address)."""
        await pace_source(self._pool, endpoint, source, now=self._clock(), limits=self._limits)

    async def challenge(self, subject: str, source: str) -> Challenge:
        """A single-use login nonce, paced per source only: a per-subject limit here would
        let anyone who knows an official's id use up that official's challenges."""
        await self.pace("challenge", source)
        now = self._clock()
        nonces = await self._nonces.login(now)
        return Challenge(nonces.issue_nonce(subject, now), NONCE_MAX_AGE)

    def jwks(self) -> dict[str, Any]:
        """The published token and receipt keys, each created on first use."""
        for purpose in keystore_module.JWKS_PURPOSES:
            self._keystore.ensure(purpose, "ES256")
        return self._keystore.jwks(now=self._clock())

    async def log_in(
        self, assertion: str, prove: ProofCheck, *, source: str, passkey: str | None = None
    ) -> TokenGrant:
        """A new refresh family and an access token bound to the official's enrolled key,
        which must both sign the assertion and be the DPoP key. A failure counts against the
        official only once the caller proved it holds the key (anyone can name an id).
        A console key's login carries its passkey state (gateway.passkeys.service); *passkey*
        is the AuthenticationResponseJSON whose challenge is the assertion's hash."""
        now = self._clock()
        proved = ""
        try:
            _, unverified = read_unverified(assertion, error=InvalidAssertionError)
            subject = unverified.get("sub")
            if not is_official_id(subject):
                raise InvalidAssertionError("claim_invalid", "sub must be the official id")
            proof = await prove()
            async with self._pool.acquire() as connection:
                found = await keys.key_owner(connection, proof.jkt)
            owner, checked = self._verify_assertion(assertion, subject, found, now)
            proved = subject
            async with self._pool.acquire() as connection:
                await rate_limit(
                    connection, "token", "subject", subject, now=now, limits=self._limits
                )
            nonces = await self._nonces.login(now)
            nonce_expiry = nonces.check_nonce(checked.nonce, subject, now)
            if not owner.official.active:
                raise OfficialDisabled("the official is disabled")
            async with self._pool.acquire() as connection, connection.transaction():
                await replay.spend_all(
                    connection,
                    [
                        ("assertion", subject, checked.jti, checked.replay_until),
                        ("nonce", "", checked.nonce, nonce_expiry),
                        ("dpop", proof.jkt, proof.jti, proof.replay_until),
                    ],
                )
                state, confirmed = await self._passkeys.login_state(
                    connection, owner, assertion, passkey, now
                )
                issued = await self._start_family(connection, owner, now, state)
                notices = await keys.take_added_keys(connection, subject, owner.key.kid, now=now)
                await keys.mark_used(connection, owner.key.kid, now=now)
                await self._audit.record(
                    connection,
                    events.login_succeeded(
                        now,
                        official=subject,
                        kid=owner.key.kid,
                        department=owner.official.department,
                        source=source,
                        family=issued.family_id,
                        passkey=_login_passkey(owner, state, confirmed),
                    ),
                )
        except (JwsError, ChallengeError, IdentityError, InvalidPasskey) as exc:
            await self._access.failure(source, "login", reason_of(exc), subject=proved)
            raise
        return self._grant(owner, issued, tuple(notices), now, state)

    def _verify_assertion(
        self, assertion: str, subject: str, owner: KeyOwner | None, now: datetime
    ) -> tuple[KeyOwner, LoginAssertion]:
        # The DPoP key must be the enrolled key that signs the assertion: the token is then
        # bound to a key whose revocation the gateway sees on every request.
        if owner is None or owner.official.id != subject:
            raise InvalidAssertionError("unknown_key", "the DPoP key is not a key of this official")
        if owner.key.revoked_at is not None:
            raise InvalidAssertionError("key_revoked", "this key has been revoked")
        header_kid = read_unverified(assertion, error=InvalidAssertionError)[0].get("kid")
        if header_kid is not None and header_kid != owner.key.kid:
            raise InvalidAssertionError("kid_mismatch", "kid must be the DPoP key's thumbprint")
        return owner, verify_login_assertion(
            assertion,
            key=parse_public_jwk(owner.key.public_jwk),
            token_url=self._origin + TOKEN_PATH,
            now=now,
            expected_subject=subject,
        )

    async def refresh(self, token: str, prove: ProofCheck, *, source: str) -> TokenGrant:
        """The next refresh token of the family and a new access token. A token presented a
        second time means two parties hold it: the whole family is revoked (committed, and
        audited) before the refusal is raised."""
        now = self._clock()
        try:
            proof = await prove()
            async with self._pool.acquire() as connection:
                # Spent first: a replayed proof must not rotate (and so lose) the refresh token.
                await replay.spend_all(
                    connection, [("dpop", proof.jkt, proof.jti, proof.replay_until)]
                )
                async with connection.transaction():
                    outcome = await self._rotate(connection, token, proof.jkt, now, source)
            if isinstance(outcome, IdentityError):
                raise outcome
        except (JwsError, ChallengeError, IdentityError) as exc:
            await self._access.failure(source, "refresh", reason_of(exc))
            raise
        owner, issued, state = outcome
        return self._grant(owner, issued, None, now, state)

    async def _rotate(
        self, connection: DbConnection, token: str, jkt: str, now: datetime, source: str
    ) -> tuple[KeyOwner, IssuedRefreshToken, str] | IdentityError:
        invalid = RefreshTokenInvalid("the refresh token is not valid")
        if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > 100:
            return invalid
        presented = await refresh.presented_token(connection, token)
        if presented is None or presented.family_revoked is not None:
            return invalid
        if presented.family_kid != jkt:
            # Not reuse by a second holder of the token: the proof key is simply wrong.
            return RefreshTokenInvalid("the refresh token is bound to another key")
        if presented.used_at is not None:
            await refresh.revoke_family(connection, presented.family_id, now=now, reason="reused")
            await self._audit.record(
                connection,
                events.refresh_token_reused(
                    now,
                    official=presented.family_official,
                    jkt=jkt,
                    family=presented.family_id,
                    source=source,
                ),
            )
            return RefreshTokenReused("the refresh token was already used: its family is revoked")
        if now >= presented.token_expires or now >= presented.family_expires:
            return RefreshTokenInvalid("the refresh token has expired")
        owner = await keys.key_owner(connection, presented.family_kid)
        if owner is None or owner.key.revoked_at is not None:
            return RefreshTokenInvalid("the key of this refresh token is revoked")
        if not owner.official.active:
            return OfficialDisabled("the official is disabled")
        # Raises (nothing used up) when the family no longer has the passkey it now needs.
        state = await self._passkeys.refresh_state(connection, owner, presented.family_passkey)
        await refresh.mark_token_used(connection, presented.token_hash, now=now)
        await keys.mark_used(connection, owner.key.kid, now=now)
        issued = await self._next_token(
            connection, presented.family_id, presented.family_expires, now
        )
        return owner, issued, state

    async def _start_family(
        self, connection: DbConnection, owner: KeyOwner, now: datetime, passkey: str
    ) -> IssuedRefreshToken:
        family_id = str(uuid.uuid4())
        family_expires = now + REFRESH_FAMILY_LIFETIME
        await refresh.insert_family(
            connection,
            family_id=family_id,
            official_id=owner.official.id,
            kid=owner.key.kid,
            now=now,
            expires_at=family_expires,
            passkey=passkey,
        )
        return await self._next_token(connection, family_id, family_expires, now)

    async def _next_token(
        self, connection: DbConnection, family_id: str, family_expires: datetime, now: datetime
    ) -> IssuedRefreshToken:
        token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = min(now + REFRESH_TOKEN_LIFETIME, family_expires)
        await refresh.insert_token(
            connection, token, family_id=family_id, now=now, expires_at=expires_at
        )
        return IssuedRefreshToken(token, family_id, expires_at)

    def _grant(
        self,
        owner: KeyOwner,
        issued: IssuedRefreshToken,
        notices: tuple[AddedKey, ...] | None,
        now: datetime,
        passkey: str,
    ) -> TokenGrant:
        kid, private_key = _token_signing_key(self._keystore)
        official = owner.official
        token, _ = issue_access_token(
            private_key=private_key,
            kid=kid,
            public_url=self._origin,
            subject=official.id,
            department=official.department,
            roles=official.roles,
            jkt=owner.key.kid,
            jti=uuid.uuid4().hex,
            now=now,
            lifetime=self._token_seconds,
            passkey=passkey,
        )
        return TokenGrant(token, self._token_seconds, issued.token, notices, passkey)


def _login_passkey(owner: KeyOwner, state: str, confirmed: Any) -> dict[str, Any] | None:
    """What ``login.succeeded`` says of a console login's passkey (nothing for key files)."""
    if owner.key.device_kind != "browser":
        return None
    details: dict[str, Any] = {"state": state}
    if confirmed is not None:
        details.update(confirmed.details())
    return details
