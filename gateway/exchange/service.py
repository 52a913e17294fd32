"""Document exchange: what a send, a download, a receipt, a withdrawal and a resend do.

Handlers parse HTTP and call these functions; the rules live here. Storage order is
always object first, database second: a crash in between leaves an unreferenced object
for the sweeper, never a row that points to nothing. The document, its deliveries and
their audit events commit in one transaction, followed by one NOTIFY.

A document with a ``workflow`` waits for its approval chain (gateway.workflow.rules holds the
rules): each signed decision, the sign-off and the seal keeper's seal are one
transaction each, with their audit events, under the document's row lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.exchange.errors import (
    DocumentLocked,
    DraftingNotAllowed,
    InvalidMeta,
    ResendRequiresApproval,
    SealRequiresApproval,
    SealRevokedMeanwhile,
    WrongDocumentState,
)
from gateway.exchange.meta import DocumentMeta, due_at
from gateway.http.text import unsafe_character
from gateway.identity.auth import Principal
from gateway.workflow import rules as workflow
from keys.jws import (
    Approval,
    InvalidSignatureError,
    parse_public_jwk,
    read_unverified,
    verify_approval,
    verify_resend_approval,
)
from storage import directory, documents, identity
from storage import seals as seal_rows
from storage import workflow as workflow_rows
from storage.audit_outbox import AuditEvent, record_events
from storage.db import DbConnection
from storage.objects import ObjectStore, PutResult

SENDER_ROLES = frozenset({"seal_keeper"})
RECEIVER_ROLES = frozenset({"clerk", "system", "leader", "dept_admin", "seal_keeper"})

RESEND_APPROVER_ROLE = "leader"


async def check_resend_approval(
    connection: DbConnection,
    document: Mapping[str, Any],
    codes: Sequence[str],
    approval: object,
    now: datetime,
) -> str | None:
    """补发 of a signed-off document widens what a leader signed off: it needs the signed
    approval (``sealhub-resend+jwt``) of an active leader of the sending department for
    exactly these recipients. Returns the approving official (None: no sign-off, so none
    is needed). A replay within the signature's age adds nothing: its recipients have their
    deliveries by then."""
    if not await workflow_rows.steps_of(connection, document["id"]):
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
    if official.department != document["sender"] or RESEND_APPROVER_ROLE not in official.roles:
        raise ResendRequiresApproval(
            "the approval must be signed by a leader of the sending department"
        )
    verify_resend_approval(
        approval,
        key=parse_public_jwk(owner.key.public_jwk),
        document_id=str(document["id"]),
        sha256=str(document["sealed_sha256"]),
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
    if not principal.has_any(SENDER_ROLES):
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


async def chunks_of(data: bytes, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
    if not data:
        yield b""


def request_hash(meta: DocumentMeta, draft_sha256: str) -> str:
    return hashlib.sha256(meta.canonical() + b"\x00" + draft_sha256.encode()).hexdigest()


@dataclass(frozen=True)
class SentDocument:
    id: uuid.UUID
    status: str
    draft_sha256: str
    sha256: str | None
    deliveries: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "status": self.status,
            "draft_sha256": self.draft_sha256,
            "sha256": self.sha256,
            "deliveries": self.deliveries,
        }


def _actor(principal: Principal) -> dict[str, str]:
    return {"actor_official": principal.official_id, "actor_jkt": principal.kid}


def _created_event(
    principal: Principal,
    document_id: uuid.UUID,
    meta: DocumentMeta,
    draft_sha256: str,
    now: datetime,
) -> AuditEvent:
    details: dict[str, Any] = {
        "title": meta.title,
        "doc_number": meta.doc_number,
        "urgency": meta.urgency,
        "classification": meta.classification,
        "draft_sha256": draft_sha256,
    }
    if meta.workflow is not None:
        details["workflow"] = meta.workflow.as_json()
    return AuditEvent(
        "document.created",
        now,
        department=principal.department,
        document=str(document_id),
        details=details,
        **_actor(principal),
    )


async def _dispatch(
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
) -> int:
    """Deliveries, their audit events and the NOTIFY of a sealed document (用印 → 分发)."""
    deliveries = [
        documents.NewDelivery(uuid.uuid4(), code, False, due) for code in fanout.recipients
    ] + [documents.NewDelivery(uuid.uuid4(), code, True, due) for code in fanout.cc]
    await documents.insert_deliveries(connection, document_id, deliveries, now)
    doc = str(document_id)
    events = [
        AuditEvent(
            "seal.used",
            now,
            department=principal.department,
            document=doc,
            details={
                "seal_id": str(seal_id),
                "sha256": sealed_sha256,
                "draft_sha256": draft_sha256,
                "sign_off": sign_off,
            },
            **_actor(principal),
        ),
        AuditEvent(
            "document.dispatched",
            now,
            department=principal.department,
            document=doc,
            details={"sha256": sealed_sha256, "deliveries": len(deliveries)},
            **_actor(principal),
        ),
    ]
    events.extend(
        AuditEvent(
            "delivery.created",
            now,
            department=d.recipient,
            document=doc,
            details={"delivery": str(d.id), "copy": d.copy, "due_at": d.due_at.isoformat()},
            **_actor(principal),
        )
        for d in deliveries
    )
    await record_events(connection, events)
    await documents.notify_deliveries(connection, document_id)
    # Last, after every other row of the dispatch: the seal was checked before sealing, but a
    # revocation may have committed since (seconds of sealing, on any process).
    if not await seal_rows.still_active_for_dispatch(connection, seal_id):
        raise SealRevokedMeanwhile(seal_id)
    return len(deliveries)


def _new_document(
    document_id: uuid.UUID,
    principal: Principal,
    meta: DocumentMeta,
    draft: PutResult,
    now: datetime,
    *,
    status: str,
    sealed: PutResult | None = None,
    seal_id: uuid.UUID | None = None,
) -> documents.NewDocument:
    return documents.NewDocument(
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
        _new_document(
            document_id,
            principal,
            meta,
            draft,
            now,
            status="dispatched",
            sealed=sealed,
            seal_id=seal_id,
        ),
    )
    await record_events(
        connection, [_created_event(principal, document_id, meta, draft.sha256_hex, now)]
    )
    count = await _dispatch(
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
    return SentDocument(document_id, "dispatched", draft.sha256_hex, sealed.sha256_hex, count)


# --- approval workflows -------------------------------------------------------------------


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
        connection, _new_document(document_id, principal, meta, draft, now, status="in_approval")
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
            _created_event(principal, document_id, meta, draft.sha256_hex, now),
            _step_opened(principal, document_id, spec, 1, 0, now),
        ],
    )
    return SentDocument(document_id, "in_approval", draft.sha256_hex, None, 0)


def _step_opened(
    principal: Principal,
    document_id: uuid.UUID,
    spec: workflow.WorkflowSpec,
    version: int,
    step: int,
    now: datetime,
) -> AuditEvent:
    return AuditEvent(
        "workflow.step_opened",
        now,
        department=principal.department,
        document=str(document_id),
        details={
            "version": version,
            "step": step,
            "name": spec.steps[step].name,
            "mode": spec.steps[step].mode,
            "assignees": list(spec.steps[step].assignees),
        },
        **_actor(principal),
    )


def _spec_of(steps: Sequence[workflow_rows.StepRow]) -> workflow.WorkflowSpec:
    return workflow.WorkflowSpec(
        tuple(workflow.StepSpec(row.name, row.mode, row.assignees) for row in steps)
    )


def _editable(document: dict[str, Any]) -> None:
    status = document["status"]
    if status in ("awaiting_seal", "dispatched", "withdrawn"):
        raise DocumentLocked(f"the document is {status}: it was signed off and cannot change")


@dataclass(frozen=True)
class ApprovalResult:
    id: uuid.UUID
    step: int
    decision: str
    outcome: workflow.Outcome
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "step": self.step,
            "decision": self.decision,
            "outcome": self.outcome,
            "status": self.status,
        }


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
) -> ApprovalResult:
    """核稿 / 会签 / 签发: one signed decision on the open step of the newest draft.

    Runs under the document's row lock, so two countersigners finishing a step at the
    same moment see each other and exactly one of them completes it.
    """
    document = await documents.lock_document(connection, document_id)
    _editable(document)
    if document["status"] != "in_approval":
        raise WrongDocumentState(
            f"the document is {document['status']}: the drafter must submit a new version"
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
    doc = str(document_id)
    sender = document["sender"]
    events = [
        AuditEvent(
            f"approval.{'approved' if approval.decision == 'approve' else 'rejected'}",
            now,
            department=sender,
            document=doc,
            details={
                "approval": str(approval_id),
                "version": version.version,
                "step": step,
                "name": spec.steps[step].name,
                "draft_sha256": version.draft_sha256,
                "opinion": approval.opinion,
                "jti": approval.jti,
            },
            **_actor(principal),
        )
    ]
    status = "in_approval"
    if outcome in ("step_completed", "signed_off"):
        events.append(
            AuditEvent(
                "workflow.step_completed",
                now,
                department=sender,
                document=doc,
                details={"version": version.version, "step": step, "name": spec.steps[step].name},
                **_actor(principal),
            )
        )
    if outcome == "step_completed":
        events.append(_step_opened(principal, document_id, spec, version.version, step + 1, now))
    elif outcome == "signed_off":
        status = "awaiting_seal"
        events.append(
            AuditEvent(
                "document.signed_off",
                now,
                department=sender,
                document=doc,
                details={"version": version.version, "draft_sha256": version.draft_sha256},
                **_actor(principal),
            )
        )
    elif outcome == "returned":
        status = "returned"
        events.append(
            AuditEvent(
                "document.returned",
                now,
                department=sender,
                document=doc,
                details={
                    "version": version.version,
                    "step": step,
                    "drafter": document["created_by"],
                },
                **_actor(principal),
            )
        )
    if status != "in_approval":
        await workflow_rows.set_status(connection, document_id, status)
    await record_events(connection, events)
    return ApprovalResult(approval_id, step, approval.decision, outcome, status)


async def record_revision(
    connection: DbConnection,
    *,
    principal: Principal,
    document_id: uuid.UUID,
    draft: PutResult,
    now: datetime,
) -> dict[str, Any]:
    """A new draft version from the drafter; the chain starts again at its first step."""
    document = await documents.lock_document(connection, document_id)
    _editable(document)
    steps = await workflow_rows.steps_of(connection, document_id)
    latest = await workflow_rows.latest_version(connection, document_id)
    if not steps or latest is None:
        raise WrongDocumentState("this document has no approval workflow")
    if document["created_by"] != principal.official_id:
        raise DraftingNotAllowed("only the drafter may submit a new version")
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
            AuditEvent(
                "document.revised",
                now,
                department=document["sender"],
                document=str(document_id),
                details={
                    "version": version,
                    "draft_sha256": draft.sha256_hex,
                    "previous_sha256": latest.draft_sha256,
                    "previous_status": document["status"],
                },
                **_actor(principal),
            ),
            _step_opened(principal, document_id, _spec_of(steps), version, 0, now),
        ],
    )
    return {
        "id": str(document_id),
        "status": "in_approval",
        "version": version,
        "draft_sha256": draft.sha256_hex,
    }


async def draft_to_seal(connection: DbConnection, document_id: uuid.UUID) -> dict[str, Any]:
    """The signed-off document a seal keeper is about to seal (409 unless awaiting_seal)."""
    document = await documents.get_document(connection, document_id)
    if document["status"] != "awaiting_seal":
        raise WrongDocumentState(
            f"the document is {document['status']}; only a signed-off document can be sealed"
        )
    return document


async def record_sealed_after_approval(
    connection: DbConnection,
    *,
    principal: Principal,
    document: dict[str, Any],
    sealed: PutResult,
    seal_id: uuid.UUID,
    now: datetime,
    sign_for_within: Mapping[str, timedelta],
) -> SentDocument:
    """用印 after 签发: the sealed bytes, the deliveries, audit events, NOTIFY — one transaction."""
    document_id: uuid.UUID = document["id"]
    recipients, cc = await workflow_rows.recipients_of(connection, document_id)
    fanout = await expand_codes(connection, recipients, cc, document["sender"])
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
        row["id"]
        for row in await workflow_rows.trail_of(connection, document_id)
        if latest is not None
        and row["version"] == latest.version
        and row["step"] == len(steps) - 1
        and row["decision"] == "approve"
    ]
    due = due_at(document["deadline"], document["urgency"], now, sign_for_within)
    count = await _dispatch(
        connection,
        principal=principal,
        document_id=document_id,
        due=due,
        fanout=fanout,
        seal_id=seal_id,
        sealed_sha256=sealed.sha256_hex,
        draft_sha256=document["draft_sha256"],
        sign_off=[str(approval_id) for approval_id in sign_off],
        now=now,
    )
    return SentDocument(
        document_id, "dispatched", document["draft_sha256"], sealed.sha256_hex, count
    )


async def delete_quietly(store: ObjectStore, keys: Sequence[str]) -> None:
    """Undo objects of a send that did not commit (the sweeper is the backstop)."""
    for key in keys:
        # Best effort: whatever is left behind, the sweeper removes.
        with contextlib.suppress(Exception):
            await store.delete(key)
