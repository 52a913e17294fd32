"""Department seals: issued and revoked only when two different admins agree.

"Different" counts people, not ids: an approval is refused when either admin handled the
enrollment code of the key the other one acts with (it may hold that key).

Each method is one unit of work: its transaction, its audit event, and, for a revocation,
telling this process's CRL cache and signer cache once it has committed (other processes
see the revocation in the database within the CRL cache's bound).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.identity.principal import Principal
from gateway.paging import Page
from gateway.pki.crls import CrlCache
from gateway.sealing.sealer import SealSigners, issue_seal
from keys import pki
from keys.codes import Code, CodedError
from keys.platform import PlatformPki
from seals.image import render_seal
from storage import audit_events as events
from storage import directory, identity
from storage import seals as seal_rows
from storage.audit_outbox import AuditEvent, record_event
from storage.db import DbConnection
from storage.vocabulary import SealRequestKind, SealRequestStatus, SealStatus


class SealingRefused(CodedError):
    code: str = Code.INVALID_REQUEST


class SealNotFound(SealingRefused):
    code = Code.NOT_FOUND
    default_detail = "no such resource"


class SameAdmin(SealingRefused):
    code = Code.SAME_PERSON
    default_detail = "a second, different admin must approve what one admin requested"


class RequestDecided(SealingRefused):
    code = Code.CONFLICT
    default_detail = "this request was already decided"


@dataclass(frozen=True)
class RevocationAsk:
    """What the first admin gives for a revocation; ``invalid_since`` is the RFC 5280
    invalidity date (key compromise only: seals timestamped after it count as revoked)."""

    reason: str
    reason_code: str = "unspecified"
    invalid_since: datetime | None = None


@dataclass(frozen=True)
class SealRequestQuery:
    """Which requests the admins' list shows: ``before`` is the (requested_at, id) the
    previous page ended at."""

    status: SealRequestStatus | None = None
    department: str | None = None
    before: tuple[datetime, uuid.UUID] | None = None
    limit: int = 50


@dataclass(frozen=True)
class Decision:
    """The seal as the approval left it: newly issued, or just revoked."""

    seal: seal_rows.Seal
    kind: SealRequestKind


def _check_ask(ask: RevocationAsk, now: datetime) -> None:
    """An invalidity date only for a compromised key, and never in the future."""
    if ask.invalid_since is None:
        return
    if ask.reason_code != "key_compromise":
        raise SealingRefused("invalid_since goes only with reason_code key_compromise")
    if ask.invalid_since > now:
        raise SealingRefused("invalid_since must not be in the future")


class SealService:
    """Seal requests, the two-admin rule, and the seals they produce."""

    def __init__(
        self, pool: asyncpg.Pool, platform: PlatformPki, crls: CrlCache, signers: SealSigners
    ) -> None:
        self._pool = pool
        self._platform = platform
        self._crls = crls
        self._signers = signers

    async def request_seal(
        self, principal: Principal, department: str, purpose: str, now: datetime
    ) -> seal_rows.SealRequest:
        """The first admin's half of issuing a seal; another admin approves it."""
        async with self._pool.acquire() as connection, connection.transaction():
            await directory.get_department(connection, department)
            made = await seal_rows.insert_issue_request(
                connection,
                department=department,
                purpose=purpose,
                requested_by=principal.official_id,
                requested_with_kid=principal.kid,
                now=now,
            )
            await record_event(
                connection,
                events.seal_requested(
                    principal, now, department=department, request=made.id, purpose=purpose
                ),
            )
        return made

    async def request_revocation(
        self, principal: Principal, seal_id: uuid.UUID, ask: RevocationAsk, now: datetime
    ) -> seal_rows.SealRequest:
        """The first admin's half of revoking an active seal."""
        _check_ask(ask, now)
        async with self._pool.acquire() as connection, connection.transaction():
            seal = await seal_rows.get_seal(connection, seal_id)
            if seal is None:
                raise SealNotFound()
            if seal.status != SealStatus.ACTIVE:
                raise RequestDecided()
            if ask.invalid_since is not None and ask.invalid_since < seal.issued_at:
                raise SealingRefused("invalid_since is before the seal was issued")
            made = await seal_rows.insert_revoke_request(
                connection,
                seal,
                reason=ask.reason,
                reason_code=ask.reason_code,
                invalid_since=ask.invalid_since,
                requested_by=principal.official_id,
                requested_with_kid=principal.kid,
                now=now,
            )
            await record_event(
                connection,
                events.seal_revocation_requested(
                    principal,
                    now,
                    department=seal.department,
                    request=made.id,
                    seal_id=seal_id,
                    reason=ask.reason,
                    reason_code=ask.reason_code,
                    invalid_since=ask.invalid_since,
                ),
            )
        return made

    async def approve(self, principal: Principal, request_id: uuid.UUID, now: datetime) -> Decision:
        """The second admin's half: the seal is issued or revoked in the same transaction as
        the decision, so a request is decided once and a seal never exists undecided."""
        async with self._pool.acquire() as connection, connection.transaction():
            pending = await seal_rows.lock_request(connection, request_id)
            if pending is None:
                raise SealNotFound()
            if pending.status != SealRequestStatus.PENDING:
                raise RequestDecided()
            await _require_two_people(connection, pending, principal)
            await seal_rows.mark_request_approved(
                connection, request_id, decided_by=principal.official_id, now=now
            )
            if pending.kind == SealRequestKind.ISSUE:
                seal = await issue_seal(
                    self._platform,
                    connection,
                    department=pending.department,
                    purpose=pending.purpose,
                    request_id=request_id,
                    now=now,
                )
            else:
                seal = await _revoke(connection, pending, now)
            await record_event(connection, _decided_event(principal, pending, seal, now))
        if pending.kind == SealRequestKind.REVOKE:
            self._revoked(seal.id)
        return Decision(seal, pending.kind)

    async def decline(
        self, principal: Principal, request_id: uuid.UUID, now: datetime
    ) -> seal_rows.SealRequest:
        """A pending request ends without a seal: its requester withdraws it (cancelled), or
        another admin declines it. Saying no needs no second person, so any admin may."""
        async with self._pool.acquire() as connection, connection.transaction():
            pending = await seal_rows.lock_request(connection, request_id)
            if pending is None:
                raise SealNotFound()
            if pending.status != SealRequestStatus.PENDING:
                raise RequestDecided()
            withdrawn = pending.requested_by == principal.official_id
            closed = await seal_rows.mark_request_closed(
                connection,
                request_id,
                status=SealRequestStatus.CANCELLED if withdrawn else SealRequestStatus.DECLINED,
                decided_by=None if withdrawn else principal.official_id,
                now=now,
            )
            await record_event(
                connection,
                events.seal_request_closed(
                    principal,
                    now,
                    withdrawn=withdrawn,
                    department=pending.department,
                    request=pending.id,
                    kind=pending.kind,
                    seal_id=pending.seal_id,
                    requested_by=pending.requested_by,
                ),
            )
        return closed

    async def requests(self, query: SealRequestQuery) -> Page[seal_rows.ListedSealRequest]:
        """The seal requests, newest first (the second admin finds what waits for it here)."""
        async with self._pool.acquire() as connection:
            if query.department is not None:
                await directory.get_department(connection, query.department)
            found = await seal_rows.list_requests(
                connection,
                status=query.status,
                department=query.department,
                before=query.before,
                limit=query.limit + 1,
            )
        return Page.of(found, query.limit)

    def _revoked(self, seal_id: uuid.UUID) -> None:
        """After the commit: this process's next CRL is re-read at once, and the seal's
        signer is never used again."""
        self._crls.invalidate(pki.SEAL_CA_NAME)
        self._signers.forget(seal_id)

    async def department_seals(self, department: str) -> list[seal_rows.Seal]:
        async with self._pool.acquire() as connection:
            await directory.get_department(connection, department)
            return await seal_rows.seals_of_department(connection, department)

    async def seal(self, seal_id: uuid.UUID) -> seal_rows.Seal:
        async with self._pool.acquire() as connection:
            seal = await seal_rows.get_seal(connection, seal_id)
        if seal is None:
            raise SealNotFound()
        return seal

    async def seal_image(self, seal_id: uuid.UUID) -> bytes:
        """The red stamp (PNG) the seal puts on documents."""
        async with self._pool.acquire() as connection:
            named = await seal_rows.get_named_seal(connection, seal_id)
        if named is None:
            raise SealNotFound()
        return render_seal(named.department_name, named.seal.purpose)


async def _require_two_people(
    connection: DbConnection, pending: seal_rows.SealRequest, approver: Principal
) -> None:
    if pending.requested_by == approver.official_id:
        raise SameAdmin()
    if not identity.independent_people(
        pending.requested_by,
        await identity.code_handlers_of_key(connection, pending.requested_with_kid),
        approver.official_id,
        await identity.code_handlers_of_key(connection, approver.kid),
    ):
        raise identity.SamePerson(
            "the approver handled the requester's enrollment code (or the other way"
            " round): a second, independent admin must approve"
        )


async def _revoke(
    connection: DbConnection, pending: seal_rows.SealRequest, now: datetime
) -> seal_rows.Seal:
    assert pending.seal_id is not None  # a revoke request names its seal (table CHECK)
    # A revocation dated back can never be later than the revocation itself.
    invalid_since = pending.invalid_since
    if invalid_since is not None:
        invalid_since = min(invalid_since, now)
    revoked = await seal_rows.revoke_seal(
        connection,
        pending.seal_id,
        now=now,
        reason_code=pending.reason_code,
        invalid_since=invalid_since,
    )
    if revoked is None:
        raise RequestDecided()
    return revoked


def _decided_event(
    approver: Principal, pending: seal_rows.SealRequest, seal: seal_rows.Seal, now: datetime
) -> AuditEvent:
    return events.seal_decided(
        approver,
        now,
        issued=pending.kind == SealRequestKind.ISSUE,
        department=pending.department,
        request=pending.id,
        seal_id=seal.id,
        requested_by=pending.requested_by,
        serial_number=seal.serial_number,
        invalid_since=seal.invalid_since,
    )
