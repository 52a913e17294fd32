"""How the workflow's answers look over HTTP: the draft's headers and the JSON bodies, each
a TypedDict that ``/openapi.json`` shows (a retried request gets the stored first answer,
rebuilt by the service, so it renders the same)."""

from __future__ import annotations

from aiohttp import web
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.exchange.views import Drafter, iso, stamp
from gateway.http.bodies import time_id_cursor
from gateway.paging import Page
from gateway.workflow.rules import Outcome
from gateway.workflow.service import ApprovalResult, DraftDownload, Revision
from storage import workflow as workflow_rows
from storage.vocabulary import ApprovalDecision


class Approved(TypedDict):
    """A recorded decision and what it did to the chain."""

    id: str
    step: int
    decision: ApprovalDecision
    outcome: Outcome
    status: str


class Submitted(TypedDict):
    """A new draft version, back in approval."""

    id: str
    status: str
    version: int
    draft_sha256: str


class WaitingDocument(TypedDict):
    id: str
    title: str
    doc_number: str
    urgency: str
    deadline: str | None
    status: str
    created_at: str
    drafter: Drafter


class WaitingStep(TypedDict):
    index: int
    name: str
    mode: str


class WaitingApproval(TypedDict):
    """A step waiting for the caller's decision (待办), on the newest draft version."""

    document: WaitingDocument
    step: WaitingStep
    draft_version: int
    draft_sha256: str


class WaitingPage(TypedDict):
    items: list[WaitingApproval]
    next_cursor: str | None


def waiting_approval(row: workflow_rows.WaitingStep) -> WaitingApproval:
    return {
        "document": {
            "id": str(row.document),
            "title": row.title,
            "doc_number": row.doc_number,
            "urgency": row.urgency,
            "deadline": iso(row.deadline),
            "status": row.status,
            "created_at": stamp(row.created_at),
            "drafter": {"id": row.drafter, "name": row.drafter_name},
        },
        "step": {"index": row.step, "name": row.step_name, "mode": row.mode},
        "draft_version": row.version,
        "draft_sha256": row.draft_sha256,
    }


def waiting_page(page: Page[workflow_rows.WaitingStep]) -> WaitingPage:
    last = page.last
    return {
        "items": [waiting_approval(row) for row in page.items],
        "next_cursor": None if last is None else time_id_cursor(last.created_at, last.document),
    }


def approved(result: ApprovalResult) -> Approved:
    return {
        "id": str(result.id),
        "step": result.step,
        "decision": ApprovalDecision(result.decision),
        "outcome": result.outcome,
        "status": result.status,
    }


def submitted(revision: Revision) -> Submitted:
    return {
        "id": str(revision.id),
        "status": revision.status,
        "version": revision.version,
        "draft_sha256": revision.draft_sha256,
    }


def draft_headers(download: DraftDownload) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{download.sha256}"',
        "Sealhub-Draft-Version": str(download.version),
    }
    if download.byte_range is not None:
        start, end = download.byte_range
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{download.size}"
    return headers


async def stream_draft(request: web.Request, download: DraftDownload) -> web.StreamResponse:
    """The draft as application/pdf, 206 for a range, streamed as the store yields it."""
    response = web.StreamResponse(
        status=206 if download.byte_range is not None else 200, headers=draft_headers(download)
    )
    response.content_type = "application/pdf"
    response.content_length = download.length
    await response.prepare(request)
    async for chunk in download.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
