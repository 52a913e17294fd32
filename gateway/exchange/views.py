"""The exchange's JSON: documents, receipts and inbox items as the HTTP contract shows them.

Each answer is a TypedDict: mypy holds the views to it, and ``/openapi.json`` shows its JSON
Schema (the routes name them in ``responses``); states are the vocabulary's enums.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal, NotRequired

from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.exchange import service
from gateway.exchange.service import Content, DeliveryArrived, DocumentView, InboxEvent, KeepAlive
from gateway.http.bodies import encode_cursor
from gateway.workflow import rules as workflow
from storage import documents
from storage import workflow as workflow_rows
from storage.vocabulary import ApprovalDecision, DeliveryState, DocumentStatus


class SentDocument(TypedDict):
    """The answer to a send: sealed and dispatched, or in approval (no sealed hash yet)."""

    id: str
    status: str
    draft_sha256: str
    sha256: str | None
    deliveries: int


class Delivery(TypedDict):
    id: str
    recipient: str
    copy: bool
    state: DeliveryState
    created_at: str
    due_at: str
    fetched_at: str | None
    decided_at: str | None
    decided_by: str | None
    reason: str | None


class Approval(TypedDict):
    id: str
    version: int
    step: int
    step_name: str
    official: str
    official_name: str
    decision: ApprovalDecision
    opinion: str
    at: str
    signed_at: str
    kid: str
    signature: str


class WorkflowStep(TypedDict):
    step: int
    name: str
    mode: str
    assignees: list[str]
    state: Literal["done", "open", "rejected", "waiting"]


class DraftVersion(TypedDict):
    version: int
    draft_sha256: str
    size: int
    submitted_by: str
    submitted_at: str


class Workflow(TypedDict):
    version: int
    current_step: int | None
    steps: list[WorkflowStep]
    versions: list[DraftVersion]


class Document(TypedDict):
    id: str
    title: str
    doc_number: str
    urgency: str
    classification: str
    sender: str
    status: DocumentStatus
    deadline: str | None
    draft_sha256: str
    sha256: str | None
    size: int | None
    seal_id: str | None
    created_at: str
    dispatched_at: str | None
    withdrawn_at: str | None
    deliveries: list[Delivery]
    sealed_by: str | None
    created_by: str
    workflow: Workflow | None
    approvals: list[Approval]


class Countersigned(TypedDict):
    """签收 / 退回 (with the decision's audit index) and the stored receipt (without)."""

    delivery: str
    state: str
    audit_index: NotRequired[int]
    countersigned: str


class Withdrawn(TypedDict):
    id: str
    status: Literal["withdrawn"]


class Resent(TypedDict):
    id: str
    added: list[str]


class Drafter(TypedDict):
    """Who drafted (or sent) a document."""

    id: str
    name: str


class InboxDocument(TypedDict):
    id: str
    title: str
    doc_number: str
    urgency: str
    sender: str
    deadline: str | None
    classification: str


class InboxItem(TypedDict):
    id: str
    document: InboxDocument
    state: DeliveryState
    copy: bool
    created_at: str


class InboxPage(TypedDict):
    items: list[InboxItem]
    next_cursor: str


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def stamp(value: datetime) -> str:
    """A time that is always there, in the contract's RFC 3339 form."""
    return value.isoformat().replace("+00:00", "Z")


def document(view: DocumentView) -> Document:
    row = view.document
    return {
        "id": str(row.id),
        "title": row.title,
        "doc_number": row.doc_number,
        "urgency": row.urgency,
        "classification": row.classification,
        "sender": row.sender,
        "status": row.status,
        "deadline": iso(row.deadline),
        "draft_sha256": row.draft_sha256,
        "sha256": row.sealed_sha256,
        "size": row.sealed_size,
        "seal_id": str(row.seal_id) if row.seal_id else None,
        "created_at": stamp(row.created_at),
        "dispatched_at": iso(row.dispatched_at),
        "withdrawn_at": iso(row.withdrawn_at),
        "deliveries": [_delivery(d) for d in view.deliveries],
        "sealed_by": row.sealed_by,
        "created_by": row.created_by,
        "workflow": _workflow(row, view.steps, view.versions, view.trail),
        "approvals": [_approval(a) for a in view.trail],
    }


def _delivery(row: documents.Delivery) -> Delivery:
    return {
        "id": str(row.id),
        "recipient": row.recipient,
        "copy": row.copy,
        "state": row.state,
        "created_at": stamp(row.created_at),
        "due_at": stamp(row.due_at),
        "fetched_at": iso(row.fetched_at),
        "decided_at": iso(row.decided_at),
        "decided_by": row.decided_by,
        "reason": row.reason,
    }


def _approval(row: workflow_rows.TrailRow) -> Approval:
    return {
        "id": str(row.id),
        "version": row.version,
        "step": row.step,
        "step_name": row.step_name,
        "official": row.official,
        "official_name": row.official_name,
        "decision": row.decision,
        "opinion": row.opinion,
        "at": stamp(row.decided_at),
        "signed_at": stamp(row.signed_at),
        "kid": row.kid,
        "signature": row.signature,
    }


def _workflow(
    document: documents.Document,
    steps: list[workflow_rows.StepRow],
    versions: list[workflow_rows.VersionRow],
    trail: list[workflow_rows.TrailRow],
) -> Workflow | None:
    """Each step of the newest draft version: who may act, who did, whether it is done."""
    if not steps:
        return None
    latest = versions[-1].version if versions else 1
    spec = workflow.WorkflowSpec(
        tuple(workflow.StepSpec(row.name, row.mode, row.assignees) for row in steps)
    )
    decisions = [
        workflow.Decision(row.step, row.official, row.decision)
        for row in trail
        if row.version == latest
    ]
    state = workflow.progress(spec, decisions)
    current = state.current if document.status == DocumentStatus.IN_APPROVAL else None
    return {
        "version": latest,
        "current_step": current,
        "steps": [
            {
                "step": row.step,
                "name": row.name,
                "mode": row.mode,
                "assignees": list(row.assignees),
                "state": (
                    "done"
                    if row.step in state.completed
                    else "open"
                    if row.step == current
                    else "rejected"
                    if any(
                        d.step == row.step and d.decision == ApprovalDecision.REJECT
                        for d in decisions
                    )
                    else "waiting"
                ),
            }
            for row in steps
        ],
        "versions": [
            {
                "version": v.version,
                "draft_sha256": v.draft_sha256,
                "size": v.draft_size,
                "submitted_by": v.submitted_by,
                "submitted_at": stamp(v.submitted_at),
            }
            for v in versions
        ],
    }


def sent(result: service.SentDocument) -> SentDocument:
    return {
        "id": str(result.id),
        "status": result.status,
        "draft_sha256": result.draft_sha256,
        "sha256": result.sha256,
        "deliveries": result.deliveries,
    }


def withdrawn(result: service.Withdrawn) -> Withdrawn:
    return {"id": str(result.id), "status": "withdrawn"}


def resent(result: service.Resent) -> Resent:
    return {"id": str(result.id), "added": list(result.added)}


def decided(result: service.Countersigned) -> Countersigned:
    """The answer to 签收 / 退回: the countersignature and the decision's audit index."""
    return {
        "delivery": str(result.delivery),
        "state": result.state,
        "audit_index": result.audit_index,
        "countersigned": result.countersigned,
    }


def receipt(result: service.Countersigned) -> Countersigned:
    return {
        "delivery": str(result.delivery),
        "state": result.state,
        "countersigned": result.countersigned,
    }


def inbox_item(row: documents.InboxItem) -> InboxItem:
    return {
        "id": str(row.id),
        "document": {
            "id": str(row.document_id),
            "title": row.title,
            "doc_number": row.doc_number,
            "urgency": row.urgency,
            "sender": row.sender,
            "deadline": iso(row.deadline),
            "classification": row.classification,
        },
        "state": row.state,
        "copy": row.copy,
        "created_at": stamp(row.created_at),
    }


def inbox_page(page: service.InboxPage) -> InboxPage:
    return {
        "items": [inbox_item(row) for row in page.items],
        # Always a cursor to continue from: a poller passes it back to wait for more.
        "next_cursor": encode_cursor({"seq": page.last_seq}),
    }


def server_sent(event: InboxEvent) -> bytes:
    """One event of ``/v1/inbox/events`` in text/event-stream framing."""
    if isinstance(event, DeliveryArrived):
        data = json.dumps(inbox_item(event.row), ensure_ascii=False)
        cursor = encode_cursor({"seq": event.row.seq})
        return f"id: {cursor}\nevent: delivery\ndata: {data}\n\n".encode()
    if isinstance(event, KeepAlive):
        return b": keep-alive\n\n"
    return f"event: end\ndata: {json.dumps({'reason': event.reason})}\n\n".encode()


def content_headers(content: Content) -> dict[str, str]:
    """A download's headers beyond type and length (Range answers carry Content-Range)."""
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{content.sha256}"',
        "Content-Disposition": f'attachment; filename="{content.document_id}.pdf"',
    }
    if content.byte_range:
        headers["Content-Range"] = f"bytes {content.start}-{content.end - 1}/{content.size}"
    return headers
