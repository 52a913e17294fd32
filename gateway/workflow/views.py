"""How the workflow's answers look over HTTP: the draft's headers and the JSON bodies, each
a TypedDict that ``/openapi.json`` shows (a retried request gets the stored first answer,
rebuilt by the service, so it renders the same)."""

from __future__ import annotations

from aiohttp import web
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.workflow.rules import Outcome
from gateway.workflow.service import ApprovalResult, DraftDownload, Revision
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
