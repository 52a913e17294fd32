"""Document exchange: what a send, a download, a receipt, a withdrawal and a resend do.

Handlers parse HTTP and call these functions; the rules live here. Storage order is
always object first, database second: a crash in between leaves an unreferenced object
for the sweeper, never a row that points to nothing. The document, its deliveries and
their audit events commit in one transaction, followed by one NOTIFY.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from gateway.auth import Principal
from storage import directory, documents
from storage.audit_outbox import AuditEvent, record_events
from storage.db import DbConnection
from storage.objects import ObjectStore, PutResult

URGENCIES = ("normal", "urgent", "very_urgent")
ALLOWED_CLASSIFICATIONS = ("public", "internal")
CLASSIFIED = ("confidential", "secret", "top_secret", "秘密", "机密", "绝密")
DEFAULT_SIGN_FOR_WITHIN = {
    "very_urgent": timedelta(hours=2),
    "urgent": timedelta(hours=24),
    "normal": timedelta(hours=72),
}
MAX_RECIPIENTS = 2000
SENDER_ROLES = frozenset({"seal_keeper"})
RECEIVER_ROLES = frozenset({"clerk", "system", "leader", "dept_admin", "seal_keeper"})
_YEAR_IN_NUMBER = re.compile(r"[〔\[(（](\d{4})[〕\])）]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_META_KEYS = frozenset(
    {"title", "doc_number", "urgency", "classification", "recipients", "cc", "deadline"}
)


class ExchangeError(Exception):
    code = "invalid_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidMeta(ExchangeError):
    code = "invalid_request"


class ClassifiedNotAllowed(ExchangeError):
    code = "classified_not_allowed"


class SealRequiresApproval(ExchangeError):
    code = "seal_requires_approval"


@dataclass(frozen=True)
class DocumentMeta:
    title: str
    doc_number: str
    doc_year: int
    urgency: str
    classification: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    deadline: datetime | None

    def canonical(self) -> bytes:
        """Stable bytes of the request for Idempotency-Key comparison."""
        body = {
            "title": self.title,
            "doc_number": self.doc_number,
            "urgency": self.urgency,
            "classification": self.classification,
            "recipients": sorted(self.recipients),
            "cc": sorted(self.cc),
            "deadline": self.deadline.isoformat() if self.deadline else None,
        }
        return json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _text(raw: dict[str, Any], name: str, max_length: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidMeta(f"meta.{name} must be a non-empty string")
    if len(value) > max_length:
        raise InvalidMeta(f"meta.{name} must have at most {max_length} characters")
    if _CONTROL.search(value):
        raise InvalidMeta(f"meta.{name} must not contain control characters")
    return value.strip()


def _codes(raw: dict[str, Any], name: str, *, required: bool) -> tuple[str, ...]:
    value = raw.get(name, [] if not required else None)
    if not isinstance(value, list) or (required and not value):
        raise InvalidMeta(
            f"meta.{name} must be a non-empty list of department or group codes"
            if required
            else f"meta.{name} must be a list of codes"
        )
    if len(value) > MAX_RECIPIENTS:
        raise InvalidMeta(f"meta.{name} may name at most {MAX_RECIPIENTS} codes")
    codes = []
    for code in value:
        if not isinstance(code, str) or not directory.CODE_PATTERN.fullmatch(code):
            raise InvalidMeta(f"meta.{name} has an invalid code")
        codes.append(code)
    return tuple(dict.fromkeys(codes))


def parse_recipient_codes(value: Any) -> tuple[str, ...]:
    """The ``recipients`` of a resend: the same rules as in ``meta``."""
    return _codes({"recipients": value}, "recipients", required=True)


def parse_meta(raw: Any, *, now: datetime) -> DocumentMeta:
    """Validate the ``meta`` part (GB/T 9704 elements we carry) before any file is read."""
    if not isinstance(raw, dict):
        raise InvalidMeta("meta must be a JSON object")
    if "workflow" in raw:
        raise InvalidMeta("approval workflows are not available on this gateway yet")
    unknown = sorted(set(raw) - _META_KEYS)
    if unknown:
        raise InvalidMeta("unknown meta field(s): " + ", ".join(unknown)[:200])
    classification = raw.get("classification")
    if classification in CLASSIFIED:
        raise ClassifiedNotAllowed("classified documents may not travel on an Internet platform")
    if classification not in ALLOWED_CLASSIFICATIONS:
        raise InvalidMeta("meta.classification must be public or internal")
    urgency = raw.get("urgency", "normal")
    if urgency not in URGENCIES:
        raise InvalidMeta("meta.urgency must be normal, urgent or very_urgent")
    doc_number = _text(raw, "doc_number", 100)
    year_match = _YEAR_IN_NUMBER.search(doc_number)
    doc_year = int(year_match[1]) if year_match else now.year
    deadline = _deadline(raw.get("deadline"), now)
    recipients = _codes(raw, "recipients", required=True)
    cc = tuple(code for code in _codes(raw, "cc", required=False) if code not in recipients)
    return DocumentMeta(
        title=_text(raw, "title", 500),
        doc_number=doc_number,
        doc_year=doc_year,
        urgency=urgency,
        classification=classification,
        recipients=recipients,
        cc=cc,
        deadline=deadline,
    )


def _deadline(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidMeta("meta.deadline must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidMeta("meta.deadline must be an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise InvalidMeta("meta.deadline needs a time zone (e.g. Z)")
    if parsed <= now:
        raise InvalidMeta("meta.deadline must be in the future")
    return parsed


def due_at(meta: DocumentMeta, created_at: datetime) -> datetime:
    """When a delivery must be signed for: the deadline, else by urgency."""
    return meta.deadline or created_at + DEFAULT_SIGN_FOR_WITHIN[meta.urgency]


@dataclass(frozen=True)
class Fanout:
    recipients: tuple[str, ...]
    cc: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.recipients) + len(self.cc)


async def expand_fanout(connection: DbConnection, meta: DocumentMeta, sender: str) -> Fanout:
    """Groups to departments, de-duplicated; the sender never delivers to itself."""
    to = [
        code
        for code in await directory.expand_recipients(connection, meta.recipients)
        if code != sender
    ]
    cc_codes = await directory.expand_recipients(connection, meta.cc) if meta.cc else []
    cc = [code for code in cc_codes if code != sender and code not in set(to)]
    if not to:
        raise InvalidMeta("the recipients name no department other than the sender")
    return Fanout(tuple(to), tuple(cc))


def authorize_send(principal: Principal) -> None:
    """用印 without a workflow is the seal keeper's act (a clerk needs an approval chain)."""
    if not principal.has_any(SENDER_ROLES):
        raise SealRequiresApproval(
            "only a seal keeper may seal and send directly; other roles need an approval workflow"
        )


@dataclass(frozen=True)
class SealOutcome:
    pdf: bytes
    seal_id: uuid.UUID


class DocumentSealer(Protocol):
    """Applies the department's active seal (keys stay in keys/, parsing in workers)."""

    async def seal(
        self, connection: DbConnection, department: str, pdf: bytes, *, reason: str
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
    sha256: str
    deliveries: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "status": self.status,
            "draft_sha256": self.draft_sha256,
            "sha256": self.sha256,
            "deliveries": self.deliveries,
        }


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
) -> SentDocument:
    """The one transaction of a direct send: document, deliveries, audit events, NOTIFY."""
    document_id = uuid.uuid4()
    await documents.insert_document(
        connection,
        documents.NewDocument(
            id=document_id,
            sender=principal.department,
            created_by=principal.official_id,
            title=meta.title,
            doc_number=meta.doc_number,
            doc_year=meta.doc_year,
            urgency=meta.urgency,
            classification=meta.classification,
            deadline=meta.deadline,
            status="dispatched",
            draft_object=draft.key,
            draft_sha256=draft.sha256_hex,
            draft_size=draft.size,
            sealed_object=sealed.key,
            sealed_sha256=sealed.sha256_hex,
            sealed_size=sealed.size,
            seal_id=seal_id,
            sealed_by=principal.official_id,
            created_at=now,
            dispatched_at=now,
        ),
    )
    due = due_at(meta, now)
    deliveries = [
        documents.NewDelivery(uuid.uuid4(), code, False, due) for code in fanout.recipients
    ] + [documents.NewDelivery(uuid.uuid4(), code, True, due) for code in fanout.cc]
    await documents.insert_deliveries(connection, document_id, deliveries, now)
    actor = {"actor_official": principal.official_id, "actor_jkt": principal.kid}
    doc = str(document_id)
    events = [
        AuditEvent(
            "document.created",
            now,
            department=principal.department,
            document=doc,
            details={
                "title": meta.title,
                "doc_number": meta.doc_number,
                "urgency": meta.urgency,
                "classification": meta.classification,
                "draft_sha256": draft.sha256_hex,
            },
            **actor,
        ),
        AuditEvent(
            "seal.used",
            now,
            department=principal.department,
            document=doc,
            details={
                "seal_id": str(seal_id),
                "sha256": sealed.sha256_hex,
                "draft_sha256": draft.sha256_hex,
                "sign_off": None,
            },
            **actor,
        ),
        AuditEvent(
            "document.dispatched",
            now,
            department=principal.department,
            document=doc,
            details={"sha256": sealed.sha256_hex, "deliveries": len(deliveries)},
            **actor,
        ),
    ]
    events.extend(
        AuditEvent(
            "delivery.created",
            now,
            department=d.recipient,
            document=doc,
            details={"delivery": str(d.id), "copy": d.copy, "due_at": d.due_at.isoformat()},
            **actor,
        )
        for d in deliveries
    )
    await record_events(connection, events)
    await documents.notify_deliveries(connection, document_id)
    return SentDocument(
        document_id, "dispatched", draft.sha256_hex, sealed.sha256_hex, len(deliveries)
    )


async def delete_quietly(store: ObjectStore, keys: Sequence[str]) -> None:
    """Undo objects of a send that did not commit (the sweeper is the backstop)."""
    for key in keys:
        # Best effort: whatever is left behind, the sweeper removes.
        with contextlib.suppress(Exception):
            await store.delete(key)
