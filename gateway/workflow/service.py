"""Approval chains as units of work: the submission, each signed decision, a new draft
version and the seal after sign-off (gateway.workflow.rules holds the pure rules).

Each change is one transaction with its audit events, under the document's row lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.exchange.errors import (
    DocumentLocked,
    DraftingNotAllowed,
    InvalidMeta,
    WrongDocumentState,
)
from gateway.exchange.meta import DocumentMeta, due_at
from gateway.exchange.service import (
    SentDocument,
    _actor,
    _created_event,
    _dispatch,
    _new_document,
    expand_codes,
)
from gateway.http.text import unsafe_character
from gateway.identity.auth import Principal
from gateway.workflow import rules as workflow
from keys.jws import Approval, InvalidSignatureError, verify_approval
from storage import documents
from storage import workflow as workflow_rows
from storage.audit_outbox import AuditEvent, record_events
from storage.db import DbConnection
from storage.objects import PutResult


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
