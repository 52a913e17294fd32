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

from gateway.exchange.errors import (
    DraftingNotAllowed,
    InvalidMeta,
    ResendRequiresApproval,
    SealRequiresApproval,
    SealRevokedMeanwhile,
)
from gateway.exchange.meta import DocumentMeta, due_at
from gateway.identity.auth import Principal
from gateway.workflow import rules as workflow
from keys.jws import (
    InvalidSignatureError,
    parse_public_jwk,
    read_unverified,
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


async def delete_quietly(store: ObjectStore, keys: Sequence[str]) -> None:
    """Undo objects of a send that did not commit (the sweeper is the backstop)."""
    for key in keys:
        # Best effort: whatever is left behind, the sweeper removes.
        with contextlib.suppress(Exception):
            await store.delete(key)
