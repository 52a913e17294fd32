"""Document exchange: what a send, a download, a receipt, a withdrawal and a resend do.

Handlers parse HTTP and call one method of ExchangeService (at the end of this module),
which owns each unit of work; the rules live here. Storage order is always object first,
database second: a crash in between leaves an unreferenced object for the sweeper, never
a row that points to nothing. The document, its deliveries and their audit events commit
in one transaction, followed by one NOTIFY.

A document with a ``workflow`` waits for its approval chain: gateway.workflow.service owns
those units of work and reuses the dispatch of this module once the document is sealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg

from gateway.exchange.errors import (
    DraftingNotAllowed,
    Hidden,
    InvalidMeta,
    InvalidRequest,
    NotFound,
    ResendRequiresApproval,
    RoleMissing,
    SealRequiresApproval,
    SealRevokedMeanwhile,
    SessionEnded,
)
from gateway.exchange.meta import DocumentMeta, due_at
from gateway.exchange.ranges import parse_range
from gateway.exchange.receipts import AuditIndexPending, Countersigner
from gateway.http.text import unsafe_character
from gateway.identity.auth import Principal
from gateway.passkeys.stepup import Signed, StepUps, as_signed, details_of
from gateway.spool import file_chunks, read_head, tee_to_file
from gateway.workflow import rules as workflow
from keys.jws import (
    InvalidSignatureError,
    parse_public_jwk,
    read_unverified,
    verify_receipt,
    verify_resend_approval,
)
from seals.pdfcheck import check_header
from storage import audit_events as events
from storage import audit_log, directory, documents, idempotency, identity
from storage import pki as pki_rows
from storage import seals as seal_rows
from storage import workflow as workflow_rows
from storage.audit_outbox import AuditEvent, record_event, record_events
from storage.db import DbConnection
from storage.objects import ObjectStore, PutResult
from storage.objects.staged import StagedObjects
from storage.vocabulary import DeliveryState, DocumentStatus, Role

# 用印 and 分发 at once, without an approval chain: the seal keeper's act.
DIRECT_SEND_ROLES: frozenset[Role] = frozenset({Role.SEAL_KEEPER})
# 签收 / 退回 for the department (every role but admin and inspector).
SIGN_FOR_ROLES: frozenset[Role] = frozenset(
    {Role.CLERK, Role.SYSTEM, Role.LEADER, Role.DEPT_ADMIN, Role.SEAL_KEEPER}
)
RESEND_APPROVER_ROLE = Role.LEADER


async def check_resend_approval(
    connection: DbConnection,
    document: documents.Document,
    codes: Sequence[str],
    approval: object,
    now: datetime,
) -> str | None:
    """补发 of a signed-off document widens what a leader signed off: it needs the signed
    approval (``sealhub-resend+jwt``) of an active leader of the sending department for
    exactly these recipients. Returns the approving official (None: no sign-off, so none
    is needed). A replay within the signature's age adds nothing: its recipients have their
    deliveries by then."""
    if not await workflow_rows.steps_of(connection, document.id):
        return None
    if not isinstance(approval, str) or not approval:
        raise ResendRequiresApproval(
            "this document was signed off: sending it to new recipients needs a leader's "
            "signed approval (approval)"
        )
    header, _ = read_unverified(approval, error=InvalidSignatureError)
    kid = header.get("kid")
    owner = await identity.key_owner(connection, kid) if isinstance(kid, str) else None
    if owner is None or owner.key.revoked_at is not None or not owner.official.active:
        raise InvalidSignatureError("unknown_key", "the approval's kid is not an enrolled key")
    official = owner.official
    if official.department != document.sender or RESEND_APPROVER_ROLE not in official.roles:
        raise ResendRequiresApproval(
            "the approval must be signed by a leader of the sending department"
        )
    verify_resend_approval(
        approval,
        key=parse_public_jwk(owner.key.public_jwk),
        document_id=str(document.id),
        sha256=str(document.sealed_sha256),
        recipients=codes,
        now=now,
    )
    return official.id


@dataclass(frozen=True)
class Fanout:
    recipients: tuple[str, ...]
    cc: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.recipients) + len(self.cc)


async def expand_fanout(connection: DbConnection, meta: DocumentMeta, sender: str) -> Fanout:
    """Groups to departments, de-duplicated; the sender never delivers to itself."""
    return await expand_codes(connection, meta.recipients, meta.cc, sender)


async def expand_codes(
    connection: DbConnection, recipients: Sequence[str], cc: Sequence[str], sender: str
) -> Fanout:
    to = [
        code for code in await directory.expand_recipients(connection, recipients) if code != sender
    ]
    cc_codes = await directory.expand_recipients(connection, cc) if cc else []
    cc = [code for code in cc_codes if code != sender and code not in set(to)]
    if not to:
        raise InvalidMeta("the recipients name no department other than the sender")
    return Fanout(tuple(to), tuple(cc))


def authorize_send(principal: Principal, *, with_workflow: bool = False) -> None:
    """用印 without a workflow is the seal keeper's act (a clerk needs an approval chain)."""
    if with_workflow:
        if not principal.has_any(workflow.DRAFTER_ROLES):
            raise DraftingNotAllowed("your roles do not allow drafting documents")
        return
    if not principal.has_any(DIRECT_SEND_ROLES):
        raise SealRequiresApproval(
            "only a seal keeper may seal and send directly; other roles need an approval workflow"
        )


@dataclass(frozen=True)
class SealOutcome:
    pdf: Path  # the sealed PDF's spool file (the caller's *sealed* argument)
    seal_id: uuid.UUID


class DocumentSealer(Protocol):
    """Applies the department's active seal (keys stay in keys/, parsing in workers).

    Both documents are files: the draft is read from *draft*, the sealed PDF written to
    *sealed*, so no process holds a document in memory."""

    async def seal(
        self, department: str, draft: Path, sealed: Path, *, reason: str
    ) -> SealOutcome: ...

    async def record_refusal(self, department: str, seal_id: uuid.UUID) -> None:
        """``seal.use_refused``, committed on its own: the send that met it fails."""


def request_hash(meta: DocumentMeta, draft_sha256: str) -> str:
    return hashlib.sha256(meta.canonical() + b"\x00" + draft_sha256.encode()).hexdigest()


@dataclass(frozen=True)
class SentDocument(idempotency.Replayable):
    id: uuid.UUID
    status: str
    draft_sha256: str
    sha256: str | None
    deliveries: int


def created_event(
    principal: Principal,
    document_id: uuid.UUID,
    meta: DocumentMeta,
    draft_sha256: str,
    now: datetime,
) -> AuditEvent:
    """``document.created`` of a send or a 拟稿 (with the workflow it starts)."""
    return events.document_created(
        principal,
        now,
        department=principal.department,
        document=document_id,
        title=meta.title,
        doc_number=meta.doc_number,
        urgency=meta.urgency,
        classification=meta.classification,
        draft_sha256=draft_sha256,
        workflow=None if meta.workflow is None else meta.workflow.as_json(),
    )


async def dispatch(
    connection: DbConnection,
    *,
    principal: Principal,
    document_id: uuid.UUID,
    due: datetime,
    fanout: Fanout,
    seal_id: uuid.UUID,
    sealed_sha256: str,
    draft_sha256: str,
    sign_off: list[str] | None,
    now: datetime,
    confirmation: Mapping[str, object] | None = None,
) -> int:
    """Deliveries, their audit events and the NOTIFY of a sealed document (用印 → 分发);
    *confirmation* goes into ``seal.used`` (the seal request's jti, its passkey step-up).

    Inserting the deliveries also enqueues their webhook jobs: the insert fires trigger
    ``deliveries_enqueue_webhooks`` of migration 0008 (one job per live webhook of each
    recipient, same transaction), whose NOTIFY wakes the webhook workers at commit."""
    deliveries = [
        documents.NewDelivery(uuid.uuid4(), code, False, due) for code in fanout.recipients
    ] + [documents.NewDelivery(uuid.uuid4(), code, True, due) for code in fanout.cc]
    await documents.insert_deliveries(connection, document_id, deliveries, now)
    department = principal.department
    made = [
        events.seal_used(
            principal,
            now,
            department=department,
            document=document_id,
            seal_id=seal_id,
            sha256=sealed_sha256,
            draft_sha256=draft_sha256,
            sign_off=sign_off,
            confirmation=confirmation,
        ),
        events.document_dispatched(
            principal,
            now,
            department=department,
            document=document_id,
            sha256=sealed_sha256,
            deliveries=len(deliveries),
        ),
    ]
    made.extend(
        events.delivery_created(
            principal,
            now,
            recipient=d.recipient,
            document=document_id,
            delivery=d.id,
            due_at=d.due_at,
            copy=d.copy,
        )
        for d in deliveries
    )
    await record_events(connection, made)
    await documents.notify_deliveries(connection, document_id)
    # Last, after every other row of the dispatch: the seal was checked before sealing, but a
    # revocation may have committed since (seconds of sealing, on any process).
    if not await seal_rows.still_active_for_dispatch(connection, seal_id):
        raise SealRevokedMeanwhile(seal_id)
    return len(deliveries)


def new_document(
    document_id: uuid.UUID,
    principal: Principal,
    meta: DocumentMeta,
    draft: PutResult,
    now: datetime,
    *,
    status: DocumentStatus,
    sealed: PutResult | None = None,
    seal_id: uuid.UUID | None = None,
) -> documents.Document:
    return documents.Document(
        id=document_id,
        sender=principal.department,
        created_by=principal.official_id,
        title=meta.title,
        doc_number=meta.doc_number,
        doc_year=meta.doc_year,
        urgency=meta.urgency,
        classification=meta.classification,
        deadline=meta.deadline,
        status=status,
        draft_object=draft.key,
        draft_sha256=draft.sha256_hex,
        draft_size=draft.size,
        sealed_object=sealed.key if sealed else None,
        sealed_sha256=sealed.sha256_hex if sealed else None,
        sealed_size=sealed.size if sealed else None,
        seal_id=seal_id,
        sealed_by=principal.official_id if sealed else None,
        created_at=now,
        dispatched_at=now if sealed else None,
    )


async def record_dispatch(
    connection: DbConnection,
    *,
    principal: Principal,
    meta: DocumentMeta,
    fanout: Fanout,
    draft: PutResult,
    sealed: PutResult,
    seal_id: uuid.UUID,
    now: datetime,
    sign_for_within: Mapping[str, timedelta],
) -> SentDocument:
    """The one transaction of a direct send: document, deliveries, audit events, NOTIFY."""
    document_id = uuid.uuid4()
    await documents.insert_document(
        connection,
        new_document(
            document_id,
            principal,
            meta,
            draft,
            now,
            status=DocumentStatus.DISPATCHED,
            sealed=sealed,
            seal_id=seal_id,
        ),
    )
    await record_events(
        connection, [created_event(principal, document_id, meta, draft.sha256_hex, now)]
    )
    count = await dispatch(
        connection,
        principal=principal,
        document_id=document_id,
        due=due_at(meta.deadline, meta.urgency, now, sign_for_within),
        fanout=fanout,
        seal_id=seal_id,
        sealed_sha256=sealed.sha256_hex,
        draft_sha256=draft.sha256_hex,
        sign_off=None,
        now=now,
    )
    return SentDocument(
        document_id, DocumentStatus.DISPATCHED, draft.sha256_hex, sealed.sha256_hex, count
    )


# --- the exchange's units of work -------------------------------------------------------------

T = TypeVar("T")
# A part of the request the service reads only once it has decided who may act: refusals
# (404, 403) come before complaints about the body (400), as the HTTP contract orders them.
Later = Callable[[], Awaitable[T]]
Clock = Callable[[], datetime]
Spool = Callable[[int], AbstractContextManager[list[Path]]]

# 撤回 and 补发 of a sent document: its department's clerks, seal keepers and admins.
FOLLOW_UP_ROLES: frozenset[Role] = frozenset({Role.SEAL_KEEPER, Role.CLERK, Role.DEPT_ADMIN})
# Withdrawing has no body: every retry of one Idempotency-Key asks the same thing.
WITHDRAW_HASH = hashlib.sha256(b"withdraw").hexdigest()
# What an inbox may be filtered by (a withdrawn delivery leaves the inbox).
INBOX_STATES = tuple(state for state in DeliveryState if state != DeliveryState.WITHDRAWN)
HEARTBEAT_SECONDS = 15
STREAM_BATCH = 100
AUDIT_INDEX_WAIT_SECONDS = 10.0
NO_EXPIRY_SECONDS = 86400.0


class Drafting(Protocol):
    """The approval workflow's part of a send with a ``workflow`` (拟稿), as
    gateway.workflow.service provides it; handed in because that module imports this one."""

    async def check_workflow(
        self, connection: DbConnection, spec: workflow.WorkflowSpec, sender: str, drafter: str
    ) -> None: ...

    async def record_submission(
        self,
        connection: DbConnection,
        *,
        principal: Principal,
        meta: DocumentMeta,
        draft: PutResult,
        now: datetime,
    ) -> SentDocument: ...


class InboxWakeups(Protocol):
    """Wake-ups for waiters of a department (gateway.exchange.inbox.InboxHub)."""

    def waiting(self, department: str) -> AbstractAsyncContextManager[asyncio.Event]: ...

    @property
    def closing(self) -> bool: ...


@dataclass(frozen=True)
class DocumentView:
    """A document as its caller may see it: recipients see only the sign-off they got."""

    document: documents.Document
    deliveries: list[documents.Delivery]
    steps: list[workflow_rows.StepRow]
    versions: list[workflow_rows.VersionRow]
    trail: list[workflow_rows.TrailRow]


@dataclass(frozen=True)
class Content:
    """The sealed PDF, or the requested bytes of it, ready to stream."""

    document_id: uuid.UUID
    sha256: str
    size: int
    byte_range: tuple[int, int] | None
    chunks: AsyncIterator[bytes]

    @property
    def start(self) -> int:
        return self.byte_range[0] if self.byte_range else 0

    @property
    def end(self) -> int:
        return self.byte_range[1] if self.byte_range else self.size


@dataclass(frozen=True)
class Countersigned:
    delivery: uuid.UUID
    state: str
    audit_index: int
    countersigned: str


@dataclass(frozen=True)
class Withdrawn:
    id: uuid.UUID

    def as_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "status": DocumentStatus.WITHDRAWN.value}


@dataclass(frozen=True)
class ResendRequest:
    recipients: tuple[str, ...]
    approval: object  # the leader's sealhub-resend+jwt, checked only when it is needed


@dataclass(frozen=True)
class Resent:
    id: uuid.UUID
    added: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "added": list(self.added)}


@dataclass(frozen=True)
class InboxQuery:
    states: tuple[str, ...] | None  # None: every state but withdrawn
    after_seq: int
    limit: int
    wait_seconds: int = 0
    text: str | None = None  # found literally in the title or 文号


@dataclass(frozen=True)
class InboxPage:
    items: list[documents.InboxItem]
    last_seq: int  # where a poller continues from (the cursor it gets back)


@dataclass(frozen=True)
class DeliveryArrived:
    """An event of the inbox stream: one delivery row, in seq order."""

    row: documents.InboxItem


@dataclass(frozen=True)
class KeepAlive:
    """Nothing new for a while: the stream says it is still there."""


@dataclass(frozen=True)
class StreamEnded:
    """The stream's authorization ran out; the client should log in or refresh."""

    reason: str


InboxEvent = DeliveryArrived | KeepAlive | StreamEnded


class ExchangeService:
    """Every unit of work of the document exchange: 发文 (send), reading and downloading,
    签收 / 退回 with the countersigned receipt, 撤回, 补发 and the inbox.

    Each method decides who may act, then owns its transaction, its Idempotency-Key, its
    audit events and the NOTIFY that wakes inboxes; objects are written before the rows
    that reference them and removed again if the unit of work fails (StagedObjects).
    """

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        objects: ObjectStore,
        sealer: DocumentSealer,
        drafting: Drafting,
        countersigner: Countersigner,
        inbox: InboxWakeups,
        spool: Spool,
        clock: Clock,
        max_document_bytes: int,
        sign_for_within: Mapping[str, timedelta],
        passkeys: StepUps,
    ) -> None:
        self._pool = pool
        self._objects = objects
        self._sealer = sealer
        self._passkeys = passkeys
        self._drafting = drafting
        self._countersigner = countersigner
        self._inbox = inbox
        self._spool = spool
        self._clock = clock
        self._max_document_bytes = max_document_bytes
        self._sign_for_within = dict(sign_for_within)

    # --- send ---------------------------------------------------------------------------

    async def send(
        self,
        principal: Principal,
        meta: DocumentMeta,
        file: Later[AsyncIterable[bytes]],
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> SentDocument:
        """发文: seal and dispatch at once (a seal keeper), or store draft version 1 and
        start its approval chain (拟稿 with a workflow). The draft goes to the store and to
        a spool file as it arrives; the worker seals from that file. Memory stays flat."""
        authorize_send(principal, with_workflow=meta.workflow is not None)
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        async with self._pool.acquire() as connection:
            fanout = await expand_fanout(connection, meta, principal.department)
            if meta.workflow is not None:
                await self._drafting.check_workflow(
                    connection, meta.workflow, principal.department, principal.official_id
                )
        chunks = await file()
        with self._spool(2) as (draft_file, sealed_file):
            body_hash: str | None = None
            try:
                async with StagedObjects(self._objects) as staged:
                    draft = await staged.put(
                        tee_to_file(chunks, draft_file), max_bytes=self._max_document_bytes
                    )
                    body_hash = request_hash(meta, draft.sha256_hex)
                    earlier = await self._remembered(scope, body_hash)
                    if earlier is not None:
                        await staged.discard()
                        return SentDocument.from_json(earlier.body)
                    if meta.workflow is not None:
                        return await self._submit(principal, meta, draft, draft_file, scope)
                    return await self._seal_and_dispatch(
                        principal, meta, fanout, staged, draft, (draft_file, sealed_file), scope
                    )
            except idempotency.UniqueViolation:
                # A twin with the same Idempotency-Key committed first: answer as it did.
                earlier = await self._remembered(scope, body_hash) if body_hash else None
                if earlier is None:
                    raise
                return SentDocument.from_json(earlier.body)
            except SealRevokedMeanwhile as revoked:
                await self._sealer.record_refusal(principal.department, revoked.seal_id)
                raise

    async def _submit(
        self,
        principal: Principal,
        meta: DocumentMeta,
        draft: PutResult,
        draft_file: Path,
        scope: idempotency.Scope | None,
    ) -> SentDocument:
        """拟稿 with a workflow: stored as draft version 1, sealed only after sign-off."""
        check_header(read_head(draft_file))
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            sent = await self._drafting.record_submission(
                connection, principal=principal, meta=meta, draft=draft, now=now
            )
            await self._remember(connection, scope, request_hash(meta, draft.sha256_hex), 201, sent)
        return sent

    async def _seal_and_dispatch(
        self,
        principal: Principal,
        meta: DocumentMeta,
        fanout: Fanout,
        staged: StagedObjects,
        draft: PutResult,
        files: tuple[Path, Path],
        scope: idempotency.Scope | None,
    ) -> SentDocument:
        """用印 → 分发: the worker seals the spooled draft; the sealed PDF is stored, then the
        document, its deliveries and their events commit in one transaction."""
        outcome = await self._sealer.seal(
            principal.department, files[0], files[1], reason=meta.doc_number
        )
        sealed = await staged.put(
            file_chunks(outcome.pdf), max_bytes=outcome.pdf.stat().st_size + 1
        )
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            sent = await record_dispatch(
                connection,
                principal=principal,
                meta=meta,
                fanout=fanout,
                draft=draft,
                sealed=sealed,
                seal_id=outcome.seal_id,
                now=now,
                sign_for_within=self._sign_for_within,
            )
            await self._remember(connection, scope, request_hash(meta, draft.sha256_hex), 201, sent)
        return sent

    async def _remembered(
        self, scope: idempotency.Scope | None, body_hash: str
    ) -> idempotency.StoredResponse | None:
        if scope is None:
            return None
        async with self._pool.acquire() as connection:
            return await idempotency.find(connection, scope, body_hash)

    async def _remember(
        self,
        connection: DbConnection,
        scope: idempotency.Scope | None,
        body_hash: str,
        status: int,
        answer: SentDocument | Withdrawn | Resent | Mapping[str, Any],
    ) -> None:
        """The answer, kept with the unit of work that made it (both commit or neither)."""
        if scope is None:
            return
        body = dict(answer) if isinstance(answer, Mapping) else answer.as_json()
        stored = idempotency.StoredResponse(status, body)
        await idempotency.remember(connection, scope, body_hash, stored, self._clock())

    # --- reading ------------------------------------------------------------------------

    async def _visible(
        self, connection: DbConnection, principal: Principal, document_id: uuid.UUID
    ) -> tuple[documents.Document, documents.Delivery | None]:
        """The document and the caller's delivery; hidden from anyone not its sender or a
        recipient it was not withdrawn from."""
        try:
            document = await documents.get_document(connection, document_id)
        except documents.DocumentNotFound:
            raise Hidden("unknown_id") from None
        delivery = await documents.recipient_delivery(connection, document_id, principal.department)
        if document.sender != principal.department and (
            delivery is None or delivery.state == DeliveryState.WITHDRAWN
        ):
            raise Hidden("other_department", document=str(document_id))
        return document, delivery

    async def document(self, principal: Principal, document_id: uuid.UUID) -> DocumentView:
        """Metadata, status, deliveries and the approval trail a caller may see."""
        async with self._pool.acquire() as connection:
            document, _ = await self._visible(connection, principal, document_id)
            deliveries = await documents.document_deliveries(connection, document_id)
            steps = await workflow_rows.steps_of(connection, document_id)
            versions = await workflow_rows.versions_of(connection, document_id)
            trail = await workflow_rows.trail_of(connection, document_id)
        if document.sender != principal.department and versions:
            # Recipients see the sign-off of what they received; earlier drafts, their
            # rejections and opinions stay inside the sending department.
            final = versions[-1].version
            versions = [v for v in versions if v.version == final]
            trail = [row for row in trail if row.version == final]
        return DocumentView(document, deliveries, steps, versions, trail)

    async def content(
        self, principal: Principal, document_id: uuid.UUID, range_header: str | None
    ) -> Content:
        """The sealed PDF (or one byte range of it). A recipient's first download marks its
        delivery fetched; every download is audited."""
        async with self._pool.acquire() as connection:
            document, delivery = await self._visible(connection, principal, document_id)
        if document.sealed_object is None or document.sealed_size is None:
            raise NotFound("the document has not been sealed yet")
        size = document.sealed_size
        byte_range = parse_range(range_header, size)
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            if delivery is not None and await documents.mark_fetched(connection, delivery.id, now):
                await record_event(
                    connection,
                    events.delivery_fetched(
                        principal,
                        now,
                        department=principal.department,
                        document=document_id,
                        delivery=delivery.id,
                    ),
                )
            shown = f"{byte_range[0]}-{byte_range[1] - 1}" if byte_range else None
            await record_event(
                connection,
                events.document_downloaded(
                    principal,
                    now,
                    department=principal.department,
                    document=document_id,
                    byte_range=shown,
                ),
            )
        start, end = byte_range or (0, size)
        return Content(
            document_id,
            str(document.sealed_sha256),
            size,
            byte_range,
            self._objects.open(document.sealed_object, start=start, end=end),
        )

    # --- 签收 / 退回 and the countersigned receipt ------------------------------------------

    async def decide(
        self,
        principal: Principal,
        delivery_id: uuid.UUID,
        action: str,
        signature: Later[str | Signed],
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> Countersigned:
        """签收 (``receive``) or 退回 (``reject``) with the official's signed receipt; a
        console key of an official with a passkey confirms 签收 with a passkey step-up
        (recorded in the event when present, 退回 too).

        Repeating the same signed receipt answers as the first time did (and finishes its
        countersignature if that was lost), so a client may simply retry; an
        Idempotency-Key reused with another receipt is an ``idempotency_conflict``."""
        async with self._pool.acquire() as connection:
            delivery = await self._own_delivery(connection, principal, delivery_id)
        if not principal.has_any(SIGN_FOR_ROLES):
            raise RoleMissing("signing for documents needs a clerk")
        act = as_signed(await signature())
        receipt = act.signature
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        body_hash = hashlib.sha256(f"{action} {receipt}".encode()).hexdigest()
        state = DeliveryState.RECEIVED if action == "receive" else DeliveryState.REJECTED
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            decision = await documents.lock_decision(connection, delivery_id)
            if scope is not None:
                # After the lock, so a twin with the same key is seen. Only a conflict
                # matters here: a repeat of the same receipt is answered below.
                await idempotency.find(connection, scope, body_hash)
            repeated = decision.receipt_jws is not None and hmac.compare_digest(
                decision.receipt_jws.encode(), receipt.encode()
            )
            if repeated and decision.state != state:
                raise documents.WrongState(documents.ALREADY_DECIDED)
            if not repeated:
                decision = await self._record_decision(
                    connection, principal, delivery, act, action, state, now
                )
                answer = {"delivery": str(delivery_id), "state": state}
                await self._remember(connection, scope, body_hash, 200, answer)
        countersigned, audit_index = await self._countersigned(delivery_id, decision, now)
        return Countersigned(delivery_id, state, audit_index, countersigned)

    async def _own_delivery(
        self, connection: DbConnection, principal: Principal, delivery_id: uuid.UUID
    ) -> documents.AddressedDelivery:
        """A delivery addressed to the caller's department (anything else is hidden)."""
        try:
            delivery = await documents.get_delivery(connection, delivery_id)
        except documents.DocumentNotFound:
            raise Hidden("unknown_id") from None
        if delivery.recipient != principal.department or delivery.state == DeliveryState.WITHDRAWN:
            raise Hidden("other_department", delivery=str(delivery_id))
        return delivery

    async def _record_decision(
        self,
        connection: DbConnection,
        principal: Principal,
        delivery: documents.AddressedDelivery,
        act: Signed,
        action: str,
        state: DeliveryState,
        now: datetime,
    ) -> documents.Decision:
        """A new receipt: verified against the caller's enrolled key (and its passkey
        step-up), then the delivery's decision and its audit event, in the caller's
        transaction."""
        signature = act.signature
        owner = await identity.key_owner(connection, principal.kid)
        if owner is None:
            raise NotFound()
        receipt = verify_receipt(
            signature,
            key=parse_public_jwk(owner.key.public_jwk),
            delivery_id=str(delivery.id),
            sha256=delivery.sealed_sha256,
            now=now,
            expected_action=action,
        )
        # The 退回 reason lands in the audit log, the sender's screen and the receipt: the
        # free-text rule of every official record applies (gateway/http/text.py).
        if (unsafe := unsafe_character(receipt.reason, multiline=True)) is not None:
            raise InvalidRequest(f"the reason must not contain {unsafe}")
        confirmed = await self._passkeys.step_up(
            connection, principal, signature, act.passkey, needed=action == "receive", now=now
        )
        event = await record_event(
            connection,
            events.delivery_decided(
                principal,
                now,
                state=state,
                department=principal.department,
                document=delivery.document,
                delivery=delivery.id,
                sha256=receipt.sha256,
                reason=receipt.reason,
                receipt_jti=receipt.jti,
                passkey=details_of(confirmed),
            ),
        )
        await documents.decide_delivery(
            connection,
            delivery.id,
            state=state,
            at=now,
            official=principal.official_id,
            receipt_jws=signature,
            reason=receipt.reason or None,
            event=event,
        )
        return documents.Decision(state, now, signature, event, None)

    async def receipt(self, principal: Principal, delivery_id: uuid.UUID) -> Countersigned:
        """The countersigned receipt, for the recipient, the sender and inspectors."""
        async with self._pool.acquire() as connection:
            try:
                delivery = await documents.get_delivery(connection, delivery_id)
            except documents.DocumentNotFound:
                raise Hidden("unknown_id") from None
        allowed = principal.department in (delivery.recipient, delivery.sender) or (
            principal.has_any({Role.INSPECTOR})
        )
        if not allowed:
            raise Hidden("other_department", delivery=str(delivery_id))
        if delivery.receipt_jws is None:
            raise NotFound()
        decision = documents.decision_of(delivery)
        countersigned, audit_index = await self._countersigned(delivery_id, decision, self._clock())
        return Countersigned(delivery_id, delivery.state, audit_index, countersigned)

    async def _countersigned(
        self, delivery_id: uuid.UUID, decision: documents.Decision, now: datetime
    ) -> tuple[str, int]:
        """The decision's countersigned receipt and audit index, made and kept on first need.

        Also finishes a decision whose countersignature was never stored (the gateway stopped
        after the decision's commit, or its audit index was not ready in time).
        """
        if decision.countersigned is not None:
            return decision.countersigned, _audit_index_in(decision.countersigned)
        if decision.event is None or decision.receipt_jws is None or decision.decided_at is None:
            raise NotFound()  # no receipt, or one from before its event was kept (migration 0011)
        audit_index = await self._audit_index_of(decision.event)
        async with self._pool.acquire() as connection:
            (serial,) = await pki_rows.next_tsa_serials(connection, 1)
        made = self._countersigner.countersign(
            receipt_jws=decision.receipt_jws,
            delivery_id=delivery_id,
            action=str(read_unverified(decision.receipt_jws)[1]["action"]),
            received_at=decision.decided_at,
            audit_index=audit_index,
            tsa_serial=serial,
            now=now,
        )
        async with self._pool.acquire() as connection:
            kept = await documents.store_countersigned(connection, delivery_id, made)
        return kept, _audit_index_in(kept)

    async def _audit_index_of(self, outbox_id: int) -> int:
        """Wait (briefly) for the sequencer to give the event its place in the log, taking a
        pooled connection only for each look, never across the wait."""
        deadline = asyncio.get_running_loop().time() + AUDIT_INDEX_WAIT_SECONDS
        delay = 0.01
        while True:
            async with self._pool.acquire() as connection:
                index = await audit_log.index_of_event(connection, outbox_id)
            if index is not None:
                return index
            if asyncio.get_running_loop().time() > deadline:
                raise AuditIndexPending()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    # --- 撤回 and 补发 ----------------------------------------------------------------------

    async def _own_document(
        self, connection: DbConnection, principal: Principal, document_id: uuid.UUID
    ) -> None:
        """A document the caller's department sent, and a caller who may follow it up."""
        try:
            document = await documents.get_document(connection, document_id)
        except documents.DocumentNotFound:
            raise Hidden("unknown_id") from None
        if document.sender != principal.department:
            raise Hidden("other_department", document=str(document_id))
        if not principal.has_any(FOLLOW_UP_ROLES):
            raise RoleMissing("withdrawing or resending needs a clerk")

    async def withdraw(
        self,
        principal: Principal,
        document_id: uuid.UUID,
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> Withdrawn:
        """撤回: refused once any recipient signed for or returned the document."""
        async with self._pool.acquire() as connection:
            await self._own_document(connection, principal, document_id)
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            await documents.lock_document(connection, document_id)
            # Under the document lock a retried twin sees the first one's stored answer.
            earlier = await idempotency.find(connection, scope, WITHDRAW_HASH) if scope else None
            if earlier is not None:
                return Withdrawn(uuid.UUID(earlier.body["id"]))
            recipients = await documents.withdraw_document(connection, document_id, now)
            await record_event(
                connection,
                events.document_withdrawn(
                    principal,
                    now,
                    department=principal.department,
                    document=document_id,
                    recipients=len(recipients),
                ),
            )
            withdrawn = Withdrawn(document_id)
            await self._remember(connection, scope, WITHDRAW_HASH, 200, withdrawn)
        return withdrawn

    async def resend(
        self,
        principal: Principal,
        document_id: uuid.UUID,
        request: Later[ResendRequest],
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> Resent:
        """补发: deliveries to recipients the document did not reach yet (a leader's signed
        approval is needed once the document was signed off)."""
        async with self._pool.acquire() as connection:
            await self._own_document(connection, principal, document_id)
        asked = await request()
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        body_hash = hashlib.sha256(json.dumps(sorted(asked.recipients)).encode()).hexdigest()
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            document = await documents.lock_document(connection, document_id)
            earlier = await idempotency.find(connection, scope, body_hash) if scope else None
            if earlier is not None:
                return Resent(uuid.UUID(earlier.body["id"]), tuple(earlier.body["added"]))
            if document.status != DocumentStatus.DISPATCHED:
                raise documents.WrongState("only a dispatched document can be sent again")
            added = await self._add_deliveries(connection, principal, document, asked, now)
            resent = Resent(document_id, tuple(d.recipient for d in added))
            await self._remember(connection, scope, body_hash, 200, resent)
        return resent

    async def _add_deliveries(
        self,
        connection: DbConnection,
        principal: Principal,
        document: documents.Document,
        asked: ResendRequest,
        now: datetime,
    ) -> list[documents.NewDelivery]:
        """The new deliveries of a 补发, their events and the NOTIFY (none: nothing new).

        As in :func:`dispatch`, the insert fires trigger ``deliveries_enqueue_webhooks`` of
        migration 0008, which enqueues the recipients' webhook jobs in this transaction."""
        document_id: uuid.UUID = document.id
        expanded = await directory.expand_recipients(connection, asked.recipients)
        existing = await documents.existing_recipients(connection, document_id)
        new = [code for code in expanded if code not in existing and code != principal.department]
        due = due_at(document.deadline, document.urgency, now, self._sign_for_within)
        deliveries = [documents.NewDelivery(uuid.uuid4(), code, False, due) for code in new]
        if not deliveries:
            return []
        approved_by = await check_resend_approval(
            connection, document, asked.recipients, asked.approval, now
        )
        await documents.insert_deliveries(connection, document_id, deliveries, now)
        created = [
            events.delivery_created(
                principal,
                now,
                recipient=d.recipient,
                document=document_id,
                delivery=d.id,
                due_at=d.due_at,
                resent=True,
            )
            for d in deliveries
        ]
        await record_events(connection, created)
        await record_event(
            connection,
            events.document_resent(
                principal,
                now,
                department=principal.department,
                document=document_id,
                recipients=[d.recipient for d in deliveries],
                approved_by=approved_by,
            ),
        )
        await documents.notify_deliveries(connection, document_id)
        return deliveries

    # --- the inbox ------------------------------------------------------------------------

    async def inbox(self, principal: Principal, query: InboxQuery) -> InboxPage:
        """Deliveries to the caller's department after a position; with ``wait_seconds``, a
        long-poll that returns as soon as something arrives (or the wait is over)."""
        department = principal.department
        async with self._pool.acquire() as connection:
            rows = await documents.inbox_page(
                connection,
                department,
                states=query.states,
                text=query.text,
                after_seq=query.after_seq,
                limit=query.limit + 1,
            )
        if not rows and query.wait_seconds:
            rows = await self._wait_for_deliveries(principal, query)
        items = rows[: query.limit]
        return InboxPage(items, items[-1].seq if items else query.after_seq)

    async def _wait_for_deliveries(
        self, principal: Principal, query: InboxQuery
    ) -> list[documents.InboxItem]:
        loop = asyncio.get_running_loop()
        async with self._inbox.waiting(principal.department) as event:
            deadline = loop.time() + query.wait_seconds
            while True:
                # Cleared before looking: a send committing during the query sets it
                # again, so no wake-up can slip between the look and the wait.
                event.clear()
                async with self._pool.acquire() as connection:
                    valid, rows = await documents.inbox_page_if_valid(
                        connection,
                        principal.department,
                        principal.kid,
                        states=query.states,
                        text=query.text,
                        after_seq=query.after_seq,
                        limit=query.limit + 1,
                    )
                if not valid:
                    raise SessionEnded(
                        "the key of this session was revoked or the official "
                        "disabled or moved: log in again"
                    )
                remaining = deadline - loop.time()
                if rows or remaining <= 0:
                    return rows
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await event.wait()

    async def inbox_stream(
        self, principal: Principal, after_seq: int | None
    ) -> AsyncGenerator[InboxEvent, None]:
        """The inbox as events: deliveries after *after_seq* (None: only those still to
        come), keep-alives when quiet, and an end when the caller's authorization runs out.
        The start position is read here, before the caller opens its response."""
        if after_seq is None:
            async with self._pool.acquire() as connection:
                after_seq = await documents.latest_delivery_seq(connection, principal.department)
        return self._stream(principal, after_seq)

    async def _stream(self, principal: Principal, after: int) -> AsyncGenerator[InboxEvent, None]:
        department = principal.department
        async with self._inbox.waiting(department) as event:
            while True:
                event.clear()
                async with self._pool.acquire() as connection:
                    rows = await documents.inbox_page(
                        connection, department, states=None, after_seq=after, limit=STREAM_BATCH
                    )
                for row in rows:
                    after = row.seq
                    yield DeliveryArrived(row)
                if rows:
                    continue
                try:
                    wait = min(HEARTBEAT_SECONDS, max(self._seconds_left(principal), 0.0))
                    async with asyncio.timeout(wait):
                        await event.wait()
                except TimeoutError:
                    yield KeepAlive()
                if self._inbox.closing:
                    yield StreamEnded("the gateway is restarting: reconnect")
                    return
                try:
                    if self._seconds_left(principal) <= 0:
                        # The stream was authorized by a token that is no longer valid: a
                        # stolen or outdated token must not keep a stream open for ever.
                        raise SessionEnded("the access token expired: refresh it and reconnect")
                    await self._ensure_still_valid(principal)
                except SessionEnded as ended:
                    yield StreamEnded(ended.detail)
                    return

    def _seconds_left(self, principal: Principal) -> float:
        """Seconds until the caller's access token expires (a day when it carries none)."""
        if principal.token_expires_at is None:
            return NO_EXPIRY_SECONDS
        return (principal.token_expires_at - self._clock()).total_seconds()

    async def _ensure_still_valid(self, principal: Principal) -> None:
        """Each wake re-checks the key and the official, so revocation ends a wait at once."""
        async with self._pool.acquire() as connection:
            owner = await identity.key_owner(connection, principal.kid)
        if owner is None or owner.key.revoked_at is not None:
            raise SessionEnded("the key of this session has been revoked")
        if not owner.official.active or owner.official.department != principal.department:
            raise SessionEnded("the official was disabled or moved: log in again")


def _audit_index_in(countersigned: str) -> int:
    """The audit index a countersignature this gateway made carries."""
    return int(read_unverified(countersigned)[1]["audit_index"])
