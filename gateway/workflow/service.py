"""Approval chains as units of work: the submission, each signed decision, reading a
draft, a new draft version and the seal after sign-off (gateway.workflow.rules holds the
pure rules; the HTTP edge only parses and renders).

Each change is one transaction with its audit events, under the document's row lock.
Objects go first, rows second (StagedObjects): an upload or a sealed PDF whose
transaction fails is removed again, and the object sweeper is the backstop after a crash.
A retry with the same ``Idempotency-Key`` gets the answer stored with the first request.

Each method first decides who may act (404 for another department's document, 403 for
the wrong official), then reads the request's body (a ``Later``) and its key: refusals
come before complaints about the body, as the HTTP contract orders them.

check_workflow and record_submission are the workflow's part of a send (拟稿), which the
exchange service runs in its own transaction (its ``Drafting`` dependency).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.exchange.errors import (
    DocumentLocked,
    DraftingNotAllowed,
    Hidden,
    InvalidMeta,
    NotFound,
    SealRevokedMeanwhile,
    WrongDocumentState,
)
from gateway.exchange.meta import DocumentMeta, due_at
from gateway.exchange.ranges import parse_range
from gateway.exchange.service import (
    Clock,
    DocumentSealer,
    Later,
    SentDocument,
    Spool,
    created_event,
    dispatch,
    expand_codes,
    new_document,
)
from gateway.http.text import unsafe_character
from gateway.identity.auth import Principal
from gateway.paging import Page
from gateway.passkeys.stepup import Signed, StepUps, as_signed, details_of
from gateway.spool import HEADER_WINDOW, file_chunks, save_chunks
from gateway.workflow import rules as workflow
from gateway.workflow.rules import DeniedAccess
from keys.jws import (
    Approval,
    InvalidSignatureError,
    SealRequest,
    parse_public_jwk,
    verify_approval,
    verify_seal_request,
)
from seals.pdfcheck import check_header
from storage import audit_events as events
from storage import documents, idempotency, identity
from storage import workflow as workflow_rows
from storage.audit_outbox import AuditEvent, record_event, record_events
from storage.db import DbConnection
from storage.objects import ObjectStore, PutResult
from storage.objects.staged import StagedObjects
from storage.vocabulary import ApprovalDecision, DocumentStatus, Role

# Who seals a signed-off document.
SEAL_ROLES: frozenset[Role] = frozenset({Role.SEAL_KEEPER})
# Signed off or sent: the draft and its approvals can no longer change.
LOCKED_STATES = (DocumentStatus.AWAITING_SEAL, DocumentStatus.DISPATCHED, DocumentStatus.WITHDRAWN)
SEAL_REQUEST_HASH = hashlib.sha256(b"seal").hexdigest()  # the request has no body to compare


class NotTheDrafter(DraftingNotAllowed, DeniedAccess):
    """Only the drafter revises its draft."""

    reason = "not_the_drafter"


class DraftRefused(workflow.WorkflowError, DeniedAccess):
    """The draft is not for this caller."""

    code = "forbidden"
    reason = "not_an_approver"


async def check_workflow(
    connection: DbConnection, spec: workflow.WorkflowSpec, sender: str, drafter: str
) -> None:
    """Assignees must be approvers of the sending department; the sign-off, leaders other
    than the drafter, so no drafter is the only approver of its own document (422)."""
    found = await workflow_rows.officials_by_id(connection, sorted(spec.assignees))
    workflow.check_assignees(
        spec,
        {
            official_id: workflow.Candidate(row.id, row.department, row.roles, row.active)
            for official_id, row in found.items()
        },
        sender,
        drafter,
    )


async def record_submission(
    connection: DbConnection,
    *,
    principal: Principal,
    meta: DocumentMeta,
    draft: PutResult,
    now: datetime,
) -> SentDocument:
    """拟稿: the document in ``in_approval``, version 1 of its draft, the steps, audit events."""
    spec = meta.workflow
    if spec is None:
        raise ValueError("record_submission needs a workflow")
    document_id = uuid.uuid4()
    await documents.insert_document(
        connection,
        new_document(document_id, principal, meta, draft, now, status=DocumentStatus.IN_APPROVAL),
    )
    await workflow_rows.insert_workflow(
        connection,
        document_id,
        steps=[
            workflow_rows.StepRow(index, step.name, step.mode, step.assignees)
            for index, step in enumerate(spec.steps)
        ],
        recipients=meta.recipients,
        cc=meta.cc,
        now=now,
    )
    await workflow_rows.insert_version(
        connection,
        document_id,
        version=1,
        draft_object=draft.key,
        draft_sha256=draft.sha256_hex,
        draft_size=draft.size,
        submitted_by=principal.official_id,
        now=now,
    )
    await record_events(
        connection,
        [
            created_event(principal, document_id, meta, draft.sha256_hex, now),
            _step_opened(principal, document_id, spec, 1, 0, now),
        ],
    )
    return SentDocument(document_id, DocumentStatus.IN_APPROVAL, draft.sha256_hex, None, 0)


def _step_opened(
    principal: Principal,
    document_id: uuid.UUID,
    spec: workflow.WorkflowSpec,
    version: int,
    step: int,
    now: datetime,
) -> AuditEvent:
    return events.step_opened(
        principal,
        now,
        department=principal.department,
        document=document_id,
        version=version,
        step=step,
        name=spec.steps[step].name,
        mode=spec.steps[step].mode,
        assignees=spec.steps[step].assignees,
    )


def _spec_of(steps: Sequence[workflow_rows.StepRow]) -> workflow.WorkflowSpec:
    return workflow.WorkflowSpec(
        tuple(workflow.StepSpec(row.name, row.mode, row.assignees) for row in steps)
    )


def _editable(status: str) -> None:
    if status in LOCKED_STATES:
        raise DocumentLocked(f"the document is {status}: it was signed off and cannot change")


@dataclass(frozen=True)
class ApprovalResult(idempotency.Replayable):
    id: uuid.UUID
    step: int
    decision: str
    outcome: workflow.Outcome
    status: str


@dataclass(frozen=True)
class Revision(idempotency.Replayable):
    id: uuid.UUID
    version: int
    draft_sha256: str
    status: str = DocumentStatus.IN_APPROVAL


def _verify_for_step(
    signature: str,
    key: ec.EllipticCurvePublicKey,
    document_id: uuid.UUID,
    draft_sha256: str,
    step: int,
    step_name: str,
    now: datetime,
) -> Approval:
    """The approval names the open step by index (or by its unique name)."""
    try:
        return verify_approval(
            signature,
            key=key,
            document_id=str(document_id),
            draft_sha256=draft_sha256,
            step=step,
            now=now,
        )
    except InvalidSignatureError as exc:
        if exc.reason != "step_mismatch":
            raise
    return verify_approval(
        signature,
        key=key,
        document_id=str(document_id),
        draft_sha256=draft_sha256,
        step=step_name,
        now=now,
    )


async def record_approval(
    connection: DbConnection,
    *,
    principal: Principal,
    document_id: uuid.UUID,
    signature: str,
    key: ec.EllipticCurvePublicKey,
    now: datetime,
    step_ups: StepUps,
    passkey: object | None = None,
) -> ApprovalResult:
    """核稿 / 会签 / 签发: one signed decision on the open step of the newest draft.

    Runs under the document's row lock, so two countersigners finishing a step at the
    same moment see each other and exactly one of them completes it. 签发 (approve on the
    last step) from a console key of an official with a passkey needs its step-up
    (*passkey*); any step records one when present.
    """
    document = await documents.lock_document(connection, document_id)
    _editable(document.status)
    if document.status != DocumentStatus.IN_APPROVAL:
        raise WrongDocumentState(
            f"the document is {document.status}: the drafter must submit a new version"
        )
    steps = await workflow_rows.steps_of(connection, document_id)
    version = await workflow_rows.latest_version(connection, document_id)
    if not steps or version is None:
        raise WrongDocumentState("this document has no approval workflow")
    spec = _spec_of(steps)
    before = [
        workflow.Decision(d.step, d.official, d.decision)
        for d in await workflow_rows.decisions_of(connection, document_id, version.version)
    ]
    step = workflow.open_step_for(spec, before, principal.official_id)
    if step == len(spec.steps) - 1 and workflow.SIGN_OFF_ROLE not in principal.roles:
        raise workflow.NotAnAssignee("the sign-off (签发) needs the leader role")
    approval = _verify_for_step(
        signature, key, document_id, version.draft_sha256, step, spec.steps[step].name, now
    )
    if (unsafe := unsafe_character(approval.opinion, multiline=True)) is not None:
        raise InvalidMeta(f"the opinion must not contain {unsafe}")
    sign_off = step == len(spec.steps) - 1 and approval.decision == ApprovalDecision.APPROVE
    confirmed = await step_ups.step_up(
        connection, principal, signature, passkey, needed=sign_off, now=now
    )
    decision = workflow.Decision(step, principal.official_id, approval.decision)
    outcome = workflow.outcome_of(spec, before, decision)
    approval_id = uuid.uuid4()
    await workflow_rows.insert_approval(
        connection,
        workflow_rows.NewApproval(
            id=approval_id,
            document=document_id,
            version=version.version,
            step=step,
            official=principal.official_id,
            kid=principal.kid,
            decision=approval.decision,
            opinion=approval.opinion,
            signature=signature,
            jti=approval.jti,
            signed_at=approval.issued_at,
            decided_at=now,
        ),
    )
    sender = document.sender
    made = [
        events.approval_recorded(
            principal,
            now,
            decision=approval.decision,
            department=sender,
            document=document_id,
            approval=approval_id,
            version=version.version,
            step=step,
            name=spec.steps[step].name,
            draft_sha256=version.draft_sha256,
            opinion=approval.opinion,
            jti=approval.jti,
            passkey=details_of(confirmed),
        )
    ]
    status = DocumentStatus.IN_APPROVAL
    if outcome in ("step_completed", "signed_off"):
        made.append(
            events.step_completed(
                principal,
                now,
                department=sender,
                document=document_id,
                version=version.version,
                step=step,
                name=spec.steps[step].name,
            )
        )
    if outcome == "step_completed":
        made.append(_step_opened(principal, document_id, spec, version.version, step + 1, now))
    elif outcome == "signed_off":
        status = DocumentStatus.AWAITING_SEAL
        made.append(
            events.document_signed_off(
                principal,
                now,
                department=sender,
                document=document_id,
                version=version.version,
                draft_sha256=version.draft_sha256,
            )
        )
    elif outcome == "returned":
        status = DocumentStatus.RETURNED
        made.append(
            events.document_returned(
                principal,
                now,
                department=sender,
                document=document_id,
                version=version.version,
                step=step,
                drafter=document.created_by,
            )
        )
    if status != DocumentStatus.IN_APPROVAL:
        await workflow_rows.set_status(connection, document_id, status)
    await record_events(connection, made)
    return ApprovalResult(approval_id, step, approval.decision, outcome, status)


async def record_revision(
    connection: DbConnection,
    *,
    principal: Principal,
    document_id: uuid.UUID,
    draft: PutResult,
    now: datetime,
) -> Revision:
    """A new draft version from the drafter; the chain starts again at its first step."""
    document = await documents.lock_document(connection, document_id)
    _editable(document.status)
    steps = await workflow_rows.steps_of(connection, document_id)
    latest = await workflow_rows.latest_version(connection, document_id)
    if not steps or latest is None:
        raise WrongDocumentState("this document has no approval workflow")
    if document.created_by != principal.official_id:
        raise NotTheDrafter("only the drafter may submit a new version")
    version = latest.version + 1
    await workflow_rows.insert_version(
        connection,
        document_id,
        version=version,
        draft_object=draft.key,
        draft_sha256=draft.sha256_hex,
        draft_size=draft.size,
        submitted_by=principal.official_id,
        now=now,
    )
    await workflow_rows.replace_draft(
        connection,
        document_id,
        draft_object=draft.key,
        draft_sha256=draft.sha256_hex,
        draft_size=draft.size,
    )
    await record_events(
        connection,
        [
            events.document_revised(
                principal,
                now,
                department=document.sender,
                document=document_id,
                version=version,
                draft_sha256=draft.sha256_hex,
                previous_sha256=latest.draft_sha256,
                previous_status=document.status,
            ),
            _step_opened(principal, document_id, _spec_of(steps), version, 0, now),
        ],
    )
    return Revision(document_id, version, draft.sha256_hex)


async def draft_to_seal(connection: DbConnection, document_id: uuid.UUID) -> documents.Document:
    """The signed-off document a seal keeper is about to seal (409 unless awaiting_seal)."""
    document = await documents.get_document(connection, document_id)
    if document.status != DocumentStatus.AWAITING_SEAL:
        raise WrongDocumentState(
            f"the document is {document.status}; only a signed-off document can be sealed"
        )
    return document


async def record_sealed_after_approval(
    connection: DbConnection,
    *,
    principal: Principal,
    document: documents.Document,
    sealed: PutResult,
    seal_id: uuid.UUID,
    now: datetime,
    sign_for_within: Mapping[str, timedelta],
    confirmation: Mapping[str, object] | None = None,
) -> SentDocument:
    """用印 after 签发: the sealed bytes, the deliveries, audit events, NOTIFY — one
    transaction. *confirmation*: the seal request's jti and passkey step-up, for ``seal.used``."""
    document_id: uuid.UUID = document.id
    recipients, cc = await workflow_rows.recipients_of(connection, document_id)
    fanout = await expand_codes(connection, recipients, cc, document.sender)
    marked = await workflow_rows.mark_sealed(
        connection,
        document_id,
        sealed_object=sealed.key,
        sealed_sha256=sealed.sha256_hex,
        sealed_size=sealed.size,
        seal_id=seal_id,
        sealed_by=principal.official_id,
        now=now,
    )
    if not marked:
        raise WrongDocumentState("the document was sealed or changed meanwhile")
    latest = await workflow_rows.latest_version(connection, document_id)
    steps = await workflow_rows.steps_of(connection, document_id)
    sign_off = [
        row.id
        for row in await workflow_rows.trail_of(connection, document_id)
        if latest is not None
        and row.version == latest.version
        and row.step == len(steps) - 1
        and row.decision == ApprovalDecision.APPROVE
    ]
    due = due_at(document.deadline, document.urgency, now, sign_for_within)
    count = await dispatch(
        connection,
        principal=principal,
        document_id=document_id,
        due=due,
        fanout=fanout,
        seal_id=seal_id,
        sealed_sha256=sealed.sha256_hex,
        draft_sha256=document.draft_sha256,
        sign_off=[str(approval_id) for approval_id in sign_off],
        now=now,
        confirmation=confirmation,
    )
    return SentDocument(
        document_id, DocumentStatus.DISPATCHED, document.draft_sha256, sealed.sha256_hex, count
    )


# --- the service: one method per unit of work ----------------------------------------------


@dataclass(frozen=True)
class DraftFile:
    version: int
    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DraftDownload:
    """The draft bytes the caller may read: ``byte_range`` is the requested [start, end),
    None for the whole draft; ``chunks`` yields exactly those bytes."""

    version: int
    sha256: str
    size: int
    byte_range: tuple[int, int] | None
    chunks: AsyncIterator[bytes]

    @property
    def length(self) -> int:
        start, end = self.byte_range or (0, self.size)
        return end - start


async def _own_document(
    connection: DbConnection, principal: Principal, document_id: uuid.UUID
) -> documents.Document:
    """Workflow actions belong to the sending department; anyone else gets 404."""
    try:
        document = await documents.get_document(connection, document_id)
    except documents.DocumentNotFound:
        raise Hidden("unknown_id") from None
    if document.sender != principal.department:
        raise Hidden("other_department", document=str(document_id))
    return document


def _readable_draft(
    principal: Principal,
    document: documents.Document,
    steps: Sequence[workflow_rows.StepRow],
    versions: Sequence[workflow_rows.VersionRow],
    wanted: str | None,
) -> DraftFile:
    """Drafts are for the drafter and the assignees. A seal keeper reads what it is about to
    seal, and only then: not drafts still in approval, not earlier versions, not drafts of
    documents already sent. *wanted* is the version as the caller wrote it (None: newest)."""
    assignees = {official for step in steps for official in step.assignees}
    newest = versions[-1].version if versions else 1
    sealing = (
        principal.has_any(SEAL_ROLES)
        and document.status == DocumentStatus.AWAITING_SEAL
        and wanted in (None, str(newest))
    )
    if not (
        principal.official_id == document.created_by
        or principal.official_id in assignees
        or sealing
    ):
        raise DraftRefused(
            "drafts are for the drafter and the approvers, and for seal keepers while the "
            "document awaits its seal"
        )
    if wanted is None:
        return DraftFile(
            newest, document.draft_object, document.draft_sha256, int(document.draft_size)
        )
    try:
        chosen = next(v for v in versions if v.version == int(wanted))
    except (ValueError, StopIteration):
        raise NotFound("no such draft version") from None
    return DraftFile(chosen.version, chosen.draft_object, chosen.draft_sha256, chosen.draft_size)


class WorkflowService:
    """Every unit of work of the approval chain after its submission: 核稿 / 会签 / 签发,
    reading a draft, a new version, 用印 after sign-off."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        objects: ObjectStore,
        sealer: DocumentSealer,
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
        self._spool = spool
        self._clock = clock
        self._max_document_bytes = max_document_bytes
        self._sign_for_within = dict(sign_for_within)

    async def _own(self, principal: Principal, document_id: uuid.UUID) -> documents.Document:
        async with self._pool.acquire() as connection:
            return await _own_document(connection, principal, document_id)

    async def waiting(
        self,
        principal: Principal,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Page[workflow_rows.WaitingStep]:
        """待办: documents of the caller's department whose open step names the caller and
        that it has not decided yet for the newest draft version, oldest first."""
        async with self._pool.acquire() as connection:
            found = await workflow_rows.waiting_for(
                connection,
                principal.official_id,
                principal.department,
                after=after,
                limit=limit + 1,
            )
        return Page.of(found, limit)

    async def approve(
        self,
        principal: Principal,
        document_id: uuid.UUID,
        signature: Later[str | Signed],
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> ApprovalResult:
        """核稿 / 会签 / 签发: the caller's signed decision, checked with its enrolled key
        (and its passkey step-up: :func:`record_approval`)."""
        await self._own(principal, document_id)
        act = as_signed(await signature())
        jws = act.signature
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        body_hash = hashlib.sha256(jws.encode()).hexdigest()
        async with self._pool.acquire() as connection:
            if scope is not None:
                earlier = await idempotency.find(connection, scope, body_hash)
                if earlier is not None:
                    return ApprovalResult.from_json(earlier.body)
            owner = await identity.key_owner(connection, principal.kid)
            if owner is None or owner.key.revoked_at is not None:
                raise NotFound()
            now = self._clock()
            async with connection.transaction():
                result = await record_approval(
                    connection,
                    principal=principal,
                    document_id=document_id,
                    signature=jws,
                    key=parse_public_jwk(owner.key.public_jwk),
                    now=now,
                    step_ups=self._passkeys,
                    passkey=act.passkey,
                )
                if scope is not None:
                    answer = idempotency.StoredResponse(200, result.as_json())
                    await idempotency.remember(connection, scope, body_hash, answer, now)
        return result

    async def draft(
        self,
        principal: Principal,
        document_id: uuid.UUID,
        version: str | None,
        range_header: str | None,
    ) -> DraftDownload:
        """The draft (newest, or *version*) to those who may read it; each download that is
        served is audited as ``draft.downloaded``."""
        async with self._pool.acquire() as connection:
            document = await _own_document(connection, principal, document_id)
            steps = await workflow_rows.steps_of(connection, document_id)
            versions = await workflow_rows.versions_of(connection, document_id)
        chosen = _readable_draft(principal, document, steps, versions, version)
        byte_range = parse_range(range_header, chosen.size)
        async with self._pool.acquire() as connection, connection.transaction():
            await record_event(
                connection,
                events.draft_downloaded(
                    principal,
                    self._clock(),
                    department=principal.department,
                    document=document_id,
                    version=chosen.version,
                    draft_sha256=chosen.sha256,
                ),
            )
        start, end = byte_range or (0, chosen.size)
        chunks = self._objects.open(chosen.key, start=start, end=end)
        return DraftDownload(chosen.version, chosen.sha256, chosen.size, byte_range, chunks)

    async def submit_version(
        self,
        principal: Principal,
        document_id: uuid.UUID,
        file: Later[AsyncIterable[bytes]],
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> Revision:
        """A new draft version from the drafter; the chain starts again at its first step.
        A retry with the same key and bytes gets the first answer (its upload is dropped)."""
        document = await self._own(principal, document_id)
        _editable(document.status)
        if document.created_by != principal.official_id:
            raise NotTheDrafter("only the drafter may submit a new version")
        chunks = await file()
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        head = bytearray()

        async def watched() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                if len(head) < HEADER_WINDOW:
                    head.extend(chunk[:HEADER_WINDOW])
                yield chunk

        async with StagedObjects(self._objects) as staged:
            draft = await staged.put(watched(), max_bytes=self._max_document_bytes)
            check_header(bytes(head))
            now = self._clock()
            async with self._pool.acquire() as connection, connection.transaction():
                await documents.lock_document(connection, document_id)
                # Under the document lock a retried twin sees the first one's stored answer.
                earlier = None
                if scope is not None:
                    earlier = await idempotency.find(connection, scope, draft.sha256_hex)
                if earlier is None:
                    revision = await record_revision(
                        connection,
                        principal=principal,
                        document_id=document_id,
                        draft=draft,
                        now=now,
                    )
                    if scope is not None:
                        answer = idempotency.StoredResponse(201, revision.as_json())
                        await idempotency.remember(connection, scope, draft.sha256_hex, answer, now)
            if earlier is not None:
                await staged.discard()
                return Revision.from_json(earlier.body)
        return revision

    async def seal(
        self,
        principal: Principal,
        document_id: uuid.UUID,
        signed: Later[Signed | None] | None = None,
        *,
        idempotency_key: idempotency.Key | None = None,
    ) -> SentDocument:
        """用印 after 签发: seal the signed-off draft and dispatch it to the workflow's
        recipients. No connection is held while the sealer works. *signed*: the seal
        keeper's ``sealhub-seal+jwt`` over the document and draft, and its passkey step-up
        (needed from a console key of an official with a passkey)."""
        await self._own(principal, document_id)
        act = None if signed is None else await signed()
        scope = idempotency.scope_of(idempotency_key, principal.official_id)
        request_hash = (
            SEAL_REQUEST_HASH
            if act is None
            else hashlib.sha256(b"seal " + act.signature.encode()).hexdigest()
        )
        async with self._pool.acquire() as connection:
            if scope is not None:
                earlier = await idempotency.find(connection, scope, request_hash)
                if earlier is not None:
                    return SentDocument.from_json(earlier.body)
            document = await draft_to_seal(connection, document_id)
            confirmation = await self._confirm_seal(connection, principal, document, act)
        try:
            async with StagedObjects(self._objects) as staged:
                with self._spool(2) as (draft_file, sealed_file):
                    await save_chunks(self._objects.open(document.draft_object), draft_file)
                    outcome = await self._sealer.seal(
                        principal.department, draft_file, sealed_file, reason=document.doc_number
                    )
                    sealed = await staged.put(
                        file_chunks(outcome.pdf), max_bytes=outcome.pdf.stat().st_size + 1
                    )
                now = self._clock()
                async with self._pool.acquire() as connection, connection.transaction():
                    sent = await record_sealed_after_approval(
                        connection,
                        principal=principal,
                        document=document,
                        sealed=sealed,
                        seal_id=outcome.seal_id,
                        now=now,
                        sign_for_within=self._sign_for_within,
                        confirmation=confirmation,
                    )
                    if scope is not None:
                        answer = idempotency.StoredResponse(200, sent.as_json())
                        await idempotency.remember(connection, scope, request_hash, answer, now)
        except SealRevokedMeanwhile as revoked:
            await self._sealer.record_refusal(principal.department, revoked.seal_id)
            raise
        return sent

    async def _confirm_seal(
        self,
        connection: DbConnection,
        principal: Principal,
        document: documents.Document,
        act: Signed | None,
    ) -> dict[str, object] | None:
        """The seal request checked with the caller's key and its passkey step-up (kept at
        once: the sign count only ever grows), before any sealing work."""
        now = self._clock()
        checked: SealRequest | None = None
        if act is not None:
            owner = await identity.key_owner(connection, principal.kid)
            if owner is None or owner.key.revoked_at is not None:
                raise NotFound()
            checked = verify_seal_request(
                act.signature,
                key=parse_public_jwk(owner.key.public_jwk),
                document_id=str(document.id),
                draft_sha256=document.draft_sha256,
                now=now,
            )
        async with connection.transaction():
            confirmed = await self._passkeys.step_up(
                connection,
                principal,
                "" if act is None else act.signature,
                None if act is None else act.passkey,
                needed=True,
                now=now,
            )
        if checked is None:
            return None
        confirmation: dict[str, object] = {"signature_jti": checked.jti}
        if confirmed is not None:
            confirmation["passkey"] = confirmed.details()
        return confirmation
