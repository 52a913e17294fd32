"""A department's own documents as lists (发文 screens): sent, awaiting its seal, drafts.

Only the caller's department is ever listed: there is no parameter naming another one, so
no other department's documents can be asked for. For documents awaiting the seal the list
says where the department's active seal will go, computed from the draft by the same code
that places it when sealing (seals.pades), parsed in a PDF worker and remembered by the
draft's SHA-256 (a pure function of the bytes, so the memory holds no state to share).
"""

from __future__ import annotations

import collections
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import asyncpg

from gateway.exchange.service import Spool
from gateway.identity.principal import Principal
from gateway.paging import Page
from gateway.spool import save_chunks
from seals.errors import PdfInputError
from seals.pades import SealPosition
from storage import seals as seal_rows
from storage.documents import BoxDocument, department_documents
from storage.objects import ObjectStore
from storage.vocabulary import DocumentStatus, SealStatus

log = logging.getLogger(__name__)

BOXES: dict[str, tuple[DocumentStatus, ...]] = {
    "sent": (DocumentStatus.DISPATCHED, DocumentStatus.WITHDRAWN),
    "awaiting_seal": (DocumentStatus.AWAITING_SEAL,),
    "drafts": (DocumentStatus.IN_APPROVAL, DocumentStatus.RETURNED),
}
REMEMBERED_POSITIONS = 512


class SealPlacer(Protocol):
    """Where the next seal goes on a draft (gateway.sealing.sealer.DepartmentSealer)."""

    async def seal_position(self, draft: Path) -> SealPosition: ...


@dataclass(frozen=True)
class BoxQuery:
    box: str
    text: str | None
    before: tuple[datetime, uuid.UUID] | None
    limit: int


@dataclass(frozen=True)
class PlannedSeal:
    """The department's active seal and where it will go on this document."""

    seal_id: uuid.UUID
    position: SealPosition


@dataclass(frozen=True)
class BoxEntry:
    document: BoxDocument
    seal: PlannedSeal | None = None


class DocumentBoxService:
    def __init__(
        self, *, pool: asyncpg.Pool, objects: ObjectStore, placer: SealPlacer, spool: Spool
    ) -> None:
        self._pool = pool
        self._objects = objects
        self._placer = placer
        self._spool = spool
        self._positions: collections.OrderedDict[str, SealPosition] = collections.OrderedDict()

    async def documents(self, principal: Principal, query: BoxQuery) -> Page[BoxEntry]:
        """The caller's department's documents of one box, newest first; awaiting_seal
        items carry the planned seal when the department has an active one."""
        async with self._pool.acquire() as connection:
            found = await department_documents(
                connection,
                principal.department,
                statuses=BOXES[query.box],
                text=query.text,
                before=query.before,
                limit=query.limit + 1,
            )
            named = None
            if query.box == "awaiting_seal" and found:
                named = await seal_rows.seal_for_sealing(connection, principal.department)
        page = Page.of(found, query.limit)
        if named is None or named.seal.status != SealStatus.ACTIVE:
            return Page([BoxEntry(row) for row in page.items], page.more)
        entries = []
        for row in page.items:
            position = await self._position(row)
            planned = None if position is None else PlannedSeal(named.seal.id, position)
            entries.append(BoxEntry(row, planned))
        return Page(entries, page.more)

    async def _position(self, row: BoxDocument) -> SealPosition | None:
        known = self._positions.get(row.draft_sha256)
        if known is not None:
            self._positions.move_to_end(row.draft_sha256)
            return known
        try:
            with self._spool(1) as (draft,):
                await save_chunks(self._objects.open(row.draft_object), draft)
                position = await self._placer.seal_position(draft)
        except PdfInputError as exc:  # checked at upload; a worker may still refuse it
            log.warning("no seal position for document %s: %s", row.id, exc)
            return None
        self._positions[row.draft_sha256] = position
        while len(self._positions) > REMEMBERED_POSITIONS:
            self._positions.popitem(last=False)
        return position
