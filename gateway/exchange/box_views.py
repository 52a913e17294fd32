"""The JSON of ``GET /v1/documents?box=``: one TypedDict per shape (shown in /openapi.json)."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.exchange.boxes import BoxEntry, PlannedSeal
from gateway.exchange.views import Drafter, iso, stamp
from gateway.http.bodies import time_id_cursor
from gateway.paging import Page
from storage.vocabulary import DocumentStatus


class DeliveryCounts(TypedDict):
    """``pending`` counts deliveries not yet signed for nor returned (fetched included)."""

    total: int
    pending: int
    received: int
    rejected: int


class PlannedSealJson(TypedDict):
    """Where the department's active seal will go: page 0-based, ``box`` [x1, y1, x2, y2]
    in PDF points from the page's lower left corner, ``page_size`` [width, height]."""

    id: str
    image_url: str
    page: int
    box: list[float]
    page_size: list[float]


class BoxDocumentJson(TypedDict):
    id: str
    title: str
    doc_number: str
    urgency: str
    classification: str
    status: DocumentStatus
    created_at: str
    deadline: str | None
    drafter: Drafter
    recipients: list[str]
    cc: list[str]
    sha256: str | None
    draft_sha256: str
    deliveries: DeliveryCounts
    seal: NotRequired[PlannedSealJson]


class BoxPage(TypedDict):
    items: list[BoxDocumentJson]
    next_cursor: str | None


def _seal(planned: PlannedSeal) -> PlannedSealJson:
    position = planned.position
    return {
        "id": str(planned.seal_id),
        "image_url": f"/v1/seals/{planned.seal_id}/image.png",
        "page": position.page,
        "box": list(position.box),
        "page_size": list(position.page_size),
    }


def box_document(entry: BoxEntry) -> BoxDocumentJson:
    row = entry.document
    item: BoxDocumentJson = {
        "id": str(row.id),
        "title": row.title,
        "doc_number": row.doc_number,
        "urgency": row.urgency,
        "classification": row.classification,
        "status": row.status,
        "created_at": stamp(row.created_at),
        "deadline": iso(row.deadline),
        "drafter": {"id": row.created_by, "name": row.drafter_name},
        "recipients": row.recipients,
        "cc": row.cc,
        "sha256": row.sealed_sha256,
        "draft_sha256": row.draft_sha256,
        "deliveries": {
            "total": row.total,
            "pending": row.pending,
            "received": row.received,
            "rejected": row.rejected,
        },
    }
    if entry.seal is not None:
        item["seal"] = _seal(entry.seal)
    return item


def box_page(page: Page[BoxEntry]) -> BoxPage:
    last = page.last
    cursor = None if last is None else time_id_cursor(last.document.created_at, last.document.id)
    return {"items": [box_document(entry) for entry in page.items], "next_cursor": cursor}
