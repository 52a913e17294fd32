"""Every audit event sealhub writes: one ``EventType`` each, and one factory per event.

The event types and their detail keys are part of the audit log's contract (auditors and
tests read them), so they are written here once: a service builds an event by calling
its factory, never by spelling the type and the details itself. Kept in storage/ (no
gateway imports) so every domain service and storage itself can use it without cycles;
an actor is anything with ``official_id`` and ``kid`` (gateway.identity's Principal).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum, unique
from typing import Any, Protocol

from storage.audit_outbox import AuditEvent
from storage.directory import Department, Group
from storage.supervision import Alert
from storage.vocabulary import ApprovalDecision, DeliveryState, OfficialRequestStatus
from storage.webhooks import Policy


@unique
class EventType(StrEnum):
    """Every ``audit_outbox.type`` sealhub writes, grouped by the domain that writes it."""

    # exchange
    DOCUMENT_CREATED = "document.created"
    DOCUMENT_DISPATCHED = "document.dispatched"
    DOCUMENT_DOWNLOADED = "document.downloaded"
    DOCUMENT_WITHDRAWN = "document.withdrawn"
    DOCUMENT_RESENT = "document.resent"
    DELIVERY_CREATED = "delivery.created"
    DELIVERY_FETCHED = "delivery.fetched"
    DELIVERY_RECEIVED = "delivery.received"
    DELIVERY_REJECTED = "delivery.rejected"
    # workflow
    WORKFLOW_STEP_OPENED = "workflow.step_opened"
    WORKFLOW_STEP_COMPLETED = "workflow.step_completed"
    APPROVAL_APPROVED = "approval.approved"
    APPROVAL_REJECTED = "approval.rejected"
    DOCUMENT_SIGNED_OFF = "document.signed_off"
    DOCUMENT_RETURNED = "document.returned"
    DOCUMENT_REVISED = "document.revised"
    DRAFT_DOWNLOADED = "draft.downloaded"
    # sealing
    SEAL_REQUESTED = "seal.requested"
    SEAL_REVOCATION_REQUESTED = "seal.revocation_requested"
    SEAL_ISSUED = "seal.issued"
    SEAL_REVOKED = "seal.revoked"
    SEAL_REQUEST_DECLINED = "seal.request_declined"
    SEAL_REQUEST_CANCELLED = "seal.request_cancelled"
    SEAL_USED = "seal.used"
    SEAL_USE_REFUSED = "seal.use_refused"
    # identity
    OFFICIAL_CREATED = "official.created"
    OFFICIAL_DISABLED = "official.disabled"
    OFFICIAL_TRANSFERRED = "official.transferred"
    ENROLLMENT_CODE_ISSUED = "enrollment_code.issued"
    KEY_ENROLLED = "key.enrolled"
    KEY_REVOKED = "key.revoked"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    ACCESS_DENIED = "access.denied"
    OFFICIAL_REQUEST_OPENED = "official_request.opened"
    OFFICIAL_REQUEST_APPROVED = "official_request.approved"
    OFFICIAL_REQUEST_DECLINED = "official_request.declined"
    OFFICIAL_REQUEST_CANCELLED = "official_request.cancelled"
    # passkeys
    PASSKEY_REGISTERED = "passkey.registered"
    PASSKEY_REMOVED = "passkey.removed"
    DEPARTMENT_SETTINGS_CHANGED = "department.settings_changed"
    # directory
    DEPARTMENT_CREATED = "department.created"
    GROUP_CREATED = "group.created"
    # supervision
    SUPERVISION_ALERT_OPENED = "supervision.alert_opened"
    SUPERVISION_ALERT_ACKNOWLEDGED = "supervision.alert_acknowledged"
    SUPERVISION_ALERT_NOTED = "supervision.alert_noted"
    SUPERVISION_ALERT_CLOSED = "supervision.alert_closed"
    # webhooks
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_ATTEMPTED = "webhook.attempted"
    WEBHOOK_DEAD_LETTERED = "webhook.dead_lettered"
    WEBHOOK_REPLAYED = "webhook.replayed"
    WEBHOOK_POLICY_CHANGED = "webhook.policy_changed"
    WEBHOOK_ALLOWLIST_ADDED = "webhook.allowlist_added"
    WEBHOOK_ALLOWLIST_REMOVED = "webhook.allowlist_removed"


class Actor(Protocol):
    """Who acted: the official and the key (its JWK thumbprint) it acted with."""

    @property
    def official_id(self) -> str: ...

    @property
    def kid(self) -> str: ...


def by(
    actor: Actor,
    type: EventType,
    at: datetime,
    *,
    department: str | None,
    document: uuid.UUID | str | None = None,
    details: dict[str, Any],
) -> AuditEvent:
    """An event an authenticated official caused (every factory below that takes *actor*)."""
    return AuditEvent(
        type,
        at,
        actor_official=actor.official_id,
        actor_jkt=actor.kid,
        department=department,
        document=None if document is None else str(document),
        details=details,
    )


def _with_passkey(details: dict[str, Any], passkey: Mapping[str, Any] | None) -> None:
    """A step's passkey step-up, ``{"credential", "sign_count", "challenge"}``, when present."""
    if passkey is not None:
        details["passkey"] = dict(passkey)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# --- exchange ----------------------------------------------------------------------------------


def document_created(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    title: str,
    doc_number: str,
    urgency: str,
    classification: str,
    draft_sha256: str,
    workflow: Mapping[str, Any] | None,
) -> AuditEvent:
    details: dict[str, Any] = {
        "title": title,
        "doc_number": doc_number,
        "urgency": urgency,
        "classification": classification,
        "draft_sha256": draft_sha256,
    }
    if workflow is not None:
        details["workflow"] = dict(workflow)
    return by(
        actor,
        EventType.DOCUMENT_CREATED,
        at,
        department=department,
        document=document,
        details=details,
    )


def seal_used(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    seal_id: uuid.UUID,
    sha256: str,
    draft_sha256: str,
    sign_off: list[str] | None,
    confirmation: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """用印; *confirmation*: the seal keeper's ``sealhub-seal+jwt`` (``signature_jti``) and
    its passkey step-up (``passkey``), when the request carried them."""
    details: dict[str, Any] = {
        "seal_id": str(seal_id),
        "sha256": sha256,
        "draft_sha256": draft_sha256,
        "sign_off": sign_off,
    }
    if confirmation:
        details.update(confirmation)
    return by(
        actor, EventType.SEAL_USED, at, department=department, document=document, details=details
    )


def document_dispatched(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    sha256: str,
    deliveries: int,
) -> AuditEvent:
    details = {"sha256": sha256, "deliveries": deliveries}
    return by(
        actor,
        EventType.DOCUMENT_DISPATCHED,
        at,
        department=department,
        document=document,
        details=details,
    )


def delivery_created(
    actor: Actor,
    at: datetime,
    *,
    recipient: str,
    document: uuid.UUID,
    delivery: uuid.UUID,
    due_at: datetime,
    copy: bool | None = None,
    resent: bool = False,
) -> AuditEvent:
    """In the recipient's department: a send names ``copy``, a 补发 says ``resent``."""
    details: dict[str, Any] = {"delivery": str(delivery)}
    if resent:
        details["resent"] = True
    else:
        details["copy"] = copy
    details["due_at"] = due_at.isoformat()
    return by(
        actor,
        EventType.DELIVERY_CREATED,
        at,
        department=recipient,
        document=document,
        details=details,
    )


def delivery_fetched(
    actor: Actor, at: datetime, *, department: str, document: uuid.UUID, delivery: uuid.UUID
) -> AuditEvent:
    details = {"delivery": str(delivery)}
    return by(
        actor,
        EventType.DELIVERY_FETCHED,
        at,
        department=department,
        document=document,
        details=details,
    )


def document_downloaded(
    actor: Actor, at: datetime, *, department: str, document: uuid.UUID, byte_range: str | None
) -> AuditEvent:
    details = {"range": byte_range}
    return by(
        actor,
        EventType.DOCUMENT_DOWNLOADED,
        at,
        department=department,
        document=document,
        details=details,
    )


def delivery_decided(
    actor: Actor,
    at: datetime,
    *,
    state: DeliveryState,
    department: str,
    document: uuid.UUID,
    delivery: uuid.UUID,
    sha256: str,
    reason: str,
    receipt_jti: str,
    passkey: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """签收 (``delivery.received``) or 退回 (``delivery.rejected``); ``passkey``: the
    step-up that confirmed it, when there was one."""
    kinds = {
        DeliveryState.RECEIVED: EventType.DELIVERY_RECEIVED,
        DeliveryState.REJECTED: EventType.DELIVERY_REJECTED,
    }
    details = {
        "delivery": str(delivery),
        "sha256": sha256,
        "reason": reason,
        "receipt_jti": receipt_jti,
    }
    _with_passkey(details, passkey)
    return by(actor, kinds[state], at, department=department, document=document, details=details)


def document_withdrawn(
    actor: Actor, at: datetime, *, department: str, document: uuid.UUID, recipients: int
) -> AuditEvent:
    details = {"recipients": recipients}
    return by(
        actor,
        EventType.DOCUMENT_WITHDRAWN,
        at,
        department=department,
        document=document,
        details=details,
    )


def document_resent(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    recipients: list[str],
    approved_by: str | None,
) -> AuditEvent:
    details = {"recipients": recipients, "approved_by": approved_by}
    return by(
        actor,
        EventType.DOCUMENT_RESENT,
        at,
        department=department,
        document=document,
        details=details,
    )


# --- workflow ----------------------------------------------------------------------------------


def step_opened(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    version: int,
    step: int,
    name: str,
    mode: str,
    assignees: Sequence[str],
) -> AuditEvent:
    details = {
        "version": version,
        "step": step,
        "name": name,
        "mode": mode,
        "assignees": list(assignees),
    }
    return by(
        actor,
        EventType.WORKFLOW_STEP_OPENED,
        at,
        department=department,
        document=document,
        details=details,
    )


def approval_recorded(
    actor: Actor,
    at: datetime,
    *,
    decision: str,
    department: str,
    document: uuid.UUID,
    approval: uuid.UUID,
    version: int,
    step: int,
    name: str,
    draft_sha256: str,
    opinion: str,
    jti: str,
    passkey: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """核稿 / 会签 / 签发: ``approval.approved`` or ``approval.rejected`` (with the
    passkey step-up, when there was one)."""
    kind = (
        EventType.APPROVAL_APPROVED
        if decision == ApprovalDecision.APPROVE
        else EventType.APPROVAL_REJECTED
    )
    details = {
        "approval": str(approval),
        "version": version,
        "step": step,
        "name": name,
        "draft_sha256": draft_sha256,
        "opinion": opinion,
        "jti": jti,
    }
    _with_passkey(details, passkey)
    return by(actor, kind, at, department=department, document=document, details=details)


def step_completed(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    version: int,
    step: int,
    name: str,
) -> AuditEvent:
    details = {"version": version, "step": step, "name": name}
    return by(
        actor,
        EventType.WORKFLOW_STEP_COMPLETED,
        at,
        department=department,
        document=document,
        details=details,
    )


def document_signed_off(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    version: int,
    draft_sha256: str,
) -> AuditEvent:
    details = {"version": version, "draft_sha256": draft_sha256}
    return by(
        actor,
        EventType.DOCUMENT_SIGNED_OFF,
        at,
        department=department,
        document=document,
        details=details,
    )


def document_returned(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    version: int,
    step: int,
    drafter: str,
) -> AuditEvent:
    details = {"version": version, "step": step, "drafter": drafter}
    return by(
        actor,
        EventType.DOCUMENT_RETURNED,
        at,
        department=department,
        document=document,
        details=details,
    )


def document_revised(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    version: int,
    draft_sha256: str,
    previous_sha256: str,
    previous_status: str,
) -> AuditEvent:
    details = {
        "version": version,
        "draft_sha256": draft_sha256,
        "previous_sha256": previous_sha256,
        "previous_status": previous_status,
    }
    return by(
        actor,
        EventType.DOCUMENT_REVISED,
        at,
        department=department,
        document=document,
        details=details,
    )


def draft_downloaded(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    document: uuid.UUID,
    version: int,
    draft_sha256: str,
) -> AuditEvent:
    details = {"version": version, "draft_sha256": draft_sha256}
    return by(
        actor,
        EventType.DRAFT_DOWNLOADED,
        at,
        department=department,
        document=document,
        details=details,
    )


# --- sealing -----------------------------------------------------------------------------------


def seal_requested(
    actor: Actor, at: datetime, *, department: str, request: uuid.UUID, purpose: str
) -> AuditEvent:
    details = {"request": str(request), "purpose": purpose}
    return by(actor, EventType.SEAL_REQUESTED, at, department=department, details=details)


def seal_revocation_requested(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    request: uuid.UUID,
    seal_id: uuid.UUID,
    reason: str,
    reason_code: str,
    invalid_since: datetime | None,
) -> AuditEvent:
    details = {
        "request": str(request),
        "seal_id": str(seal_id),
        "reason": reason,
        "reason_code": reason_code,
        "invalid_since": _iso(invalid_since),
    }
    return by(
        actor, EventType.SEAL_REVOCATION_REQUESTED, at, department=department, details=details
    )


def seal_decided(
    actor: Actor,
    at: datetime,
    *,
    issued: bool,
    department: str,
    request: uuid.UUID,
    seal_id: uuid.UUID,
    requested_by: str,
    serial_number: int,
    invalid_since: datetime | None,
) -> AuditEvent:
    """The second admin's approval: ``seal.issued`` or ``seal.revoked``."""
    details: dict[str, Any] = {
        "request": str(request),
        "seal_id": str(seal_id),
        "requested_by": requested_by,
        "approved_by": actor.official_id,
        "serial_number": str(serial_number),
    }
    if invalid_since is not None:
        details["invalid_since"] = _iso(invalid_since)
    kind = EventType.SEAL_ISSUED if issued else EventType.SEAL_REVOKED
    return by(actor, kind, at, department=department, details=details)


def seal_request_closed(
    actor: Actor,
    at: datetime,
    *,
    withdrawn: bool,
    department: str,
    request: uuid.UUID,
    kind: str,
    seal_id: uuid.UUID | None,
    requested_by: str,
) -> AuditEvent:
    """A request that ends without a seal: ``seal.request_cancelled`` when its requester
    withdraws it, ``seal.request_declined`` when another admin declines it."""
    details = {
        "request": str(request),
        "kind": kind,
        "seal_id": None if seal_id is None else str(seal_id),
        "requested_by": requested_by,
    }
    event = EventType.SEAL_REQUEST_CANCELLED if withdrawn else EventType.SEAL_REQUEST_DECLINED
    return by(actor, event, at, department=department, details=details)


def seal_use_refused(at: datetime, *, department: str, seal_id: uuid.UUID) -> AuditEvent:
    """A send met a seal revoked while it was being sealed (no actor: the gateway refused)."""
    return AuditEvent(
        EventType.SEAL_USE_REFUSED,
        at,
        department=department,
        details={"seal_id": str(seal_id), "reason": "revoked"},
    )


# --- identity ----------------------------------------------------------------------------------


def official_created(
    at: datetime,
    *,
    actor_official: str | None,
    department: str,
    official: str,
    roles: Iterable[str],
    via: str,
    cosigned_by: str | None,
) -> AuditEvent:
    details: dict[str, Any] = {"official": official, "roles": list(roles), "via": via}
    if cosigned_by is not None:
        details["cosigned_by"] = cosigned_by
    return AuditEvent(
        EventType.OFFICIAL_CREATED,
        at,
        actor_official=actor_official,
        department=department,
        details=details,
    )


def enrollment_code_issued(
    at: datetime,
    *,
    issued_by: str | None,
    issued_with_kid: str | None,
    department: str,
    official: str,
    cosigned_by: str | None,
    inherited_handlers: Iterable[str],
    via: str,
    expires_at: datetime,
) -> AuditEvent:
    return AuditEvent(
        EventType.ENROLLMENT_CODE_ISSUED,
        at,
        actor_official=issued_by,
        actor_jkt=issued_with_kid,
        department=department,
        details={
            "official": official,
            "issued_by": issued_by,
            "cosigned_by": cosigned_by,
            "inherited_handlers": sorted(inherited_handlers),
            "via": via,
            "expires_at": _iso(expires_at),
        },
    )


def key_enrolled(
    at: datetime, *, actor_official: str, kid: str, department: str, details: dict[str, Any]
) -> AuditEvent:
    """*details*: :func:`key_enrolled_details` (a supervision alert repeats them)."""
    return AuditEvent(
        EventType.KEY_ENROLLED,
        at,
        actor_official=actor_official,
        actor_jkt=kid,
        department=department,
        details=details,
    )


def key_enrolled_details(
    *,
    official: str,
    kid: str,
    code_issued_by: str | None,
    code_cosigned_by: str | None,
    added_by_other: bool,
) -> dict[str, Any]:
    return {
        "official": official,
        "kid": kid,
        "code_issued_by": code_issued_by,
        "code_cosigned_by": code_cosigned_by,
        "added_by_other": added_by_other,
    }


def official_transferred(
    at: datetime,
    *,
    actor_official: str,
    actor_jkt: str | None,
    department: str,
    side: str,
    details: Mapping[str, Any],
) -> AuditEvent:
    """One of the two events of a transfer: *side* ``out`` (old department) or ``in``."""
    return AuditEvent(
        EventType.OFFICIAL_TRANSFERRED,
        at,
        actor_official=actor_official,
        actor_jkt=actor_jkt,
        department=department,
        details={**details, "side": side},
    )


def official_request_event(
    status: OfficialRequestStatus | None,
    at: datetime,
    *,
    actor_official: str | None,
    actor_jkt: str | None,
    department: str,
    request: str,
    kind: str,
    official: str | None,
    target_department: str | None,
    requested_by: str,
    request_status: str,
) -> AuditEvent:
    """``official_request.opened`` (*status* None) or its decision (approved, declined,
    cancelled), in one department concerned."""
    kinds = {
        None: EventType.OFFICIAL_REQUEST_OPENED,
        OfficialRequestStatus.APPROVED: EventType.OFFICIAL_REQUEST_APPROVED,
        OfficialRequestStatus.DECLINED: EventType.OFFICIAL_REQUEST_DECLINED,
        OfficialRequestStatus.CANCELLED: EventType.OFFICIAL_REQUEST_CANCELLED,
    }
    return AuditEvent(
        kinds[status],
        at,
        actor_official=actor_official,
        actor_jkt=actor_jkt,
        department=department,
        details={
            "request": request,
            "kind": kind,
            "official": official,
            "target_department": target_department,
            "requested_by": requested_by,
            "status": request_status,
        },
    )


def key_revoked(
    at: datetime,
    *,
    actor_official: str,
    department: str,
    official: str,
    kid: str,
    refresh_families_revoked: int,
) -> AuditEvent:
    return AuditEvent(
        EventType.KEY_REVOKED,
        at,
        actor_official=actor_official,
        department=department,
        details={
            "official": official,
            "kid": kid,
            "refresh_families_revoked": refresh_families_revoked,
        },
    )


def official_disabled(
    at: datetime,
    *,
    actor_official: str,
    department: str,
    official: str,
    refresh_families_revoked: int,
) -> AuditEvent:
    return AuditEvent(
        EventType.OFFICIAL_DISABLED,
        at,
        actor_official=actor_official,
        department=department,
        details={"official": official, "refresh_families_revoked": refresh_families_revoked},
    )


def login_succeeded(
    at: datetime,
    *,
    official: str,
    kid: str,
    department: str,
    source: str,
    family: str,
    passkey: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """A login; a console key's also says its passkey state (``passkey.state``, and the
    credential that was verified)."""
    details: dict[str, Any] = {"source": source, "family": family}
    _with_passkey(details, passkey)
    return AuditEvent(
        EventType.LOGIN_SUCCEEDED,
        at,
        actor_official=official,
        actor_jkt=kid,
        department=department,
        details=details,
    )


def refresh_token_reused(
    at: datetime, *, official: str | None, jkt: str | None, family: str, source: str
) -> AuditEvent:
    """A spent refresh token came back: its whole family ends (``login.failed``)."""
    return AuditEvent(
        EventType.LOGIN_FAILED,
        at,
        actor_official=official,
        actor_jkt=jkt,
        details={
            "kind": "refresh",
            "reason": "refresh_token_reused",
            "family": family,
            "source": source,
        },
    )


def access_denied(
    at: datetime,
    *,
    official: str | None,
    jkt: str | None,
    department: str | None,
    reason: str,
    method: str,
    path: str,
    source: str,
    extra: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """A refused request; *extra* adds what the refusal knows (a document, an aggregate)."""
    return AuditEvent(
        EventType.ACCESS_DENIED,
        at,
        actor_official=official,
        actor_jkt=jkt,
        department=department,
        details={
            "reason": reason,
            "method": method,
            "path": path,
            "source": source,
            **(extra or {}),
        },
    )


def failures_aggregated(
    at: datetime, *, kind: str, subject: str | None, reason: str, source: str, minute: str
) -> AuditEvent:
    """One minute's unauthenticated failures of one kind from one source, as one event:
    ``access.denied`` for tokens, ``login.failed`` for the rest."""
    return AuditEvent(
        EventType.ACCESS_DENIED if kind == "token" else EventType.LOGIN_FAILED,
        at,
        actor_official=subject,
        details={
            "kind": kind,
            "reason": reason,
            "source": source,
            "minute": minute,
            "aggregated": True,
        },
    )


# --- directory ---------------------------------------------------------------------------------


def department_created(actor: Actor, at: datetime, *, department: Department) -> AuditEvent:
    """In the new unit's own department; the details are the unit as the API shows it."""
    return by(
        actor,
        EventType.DEPARTMENT_CREATED,
        at,
        department=department.code,
        details=department.as_json(),
    )


def group_created(actor: Actor, at: datetime, *, group: Group) -> AuditEvent:
    """A group belongs to no department: the event has none."""
    return by(actor, EventType.GROUP_CREATED, at, department=None, details=group.as_json())


# --- supervision -------------------------------------------------------------------------------


def _alert_names(alert: Alert) -> dict[str, Any]:
    return {"alert": str(alert.id), "rule": alert.rule, "subject": alert.subject}


def alert_document(alert: Alert) -> str | None:
    """The document an alert is about, when its details name one (an overdue delivery)."""
    document = alert.details.get("document")
    return document if isinstance(document, str) else None


def alert_opened(
    at: datetime,
    *,
    department: str | None,
    alert: uuid.UUID,
    rule: str,
    subject: str,
    details: Mapping[str, Any],
    document: str | None = None,
) -> AuditEvent:
    """A supervision alert raised by a rule (no actor): the alert's details and its names."""
    return AuditEvent(
        EventType.SUPERVISION_ALERT_OPENED,
        at,
        department=department,
        document=document,
        details={**details, "alert": str(alert), "rule": rule, "subject": subject},
    )


def alert_closed(at: datetime, alert: Alert, *, reason: str) -> AuditEvent:
    """The evaluator closed *alert*: its cause is gone (no actor)."""
    return AuditEvent(
        EventType.SUPERVISION_ALERT_CLOSED,
        at,
        department=alert.department,
        document=alert_document(alert),
        details={"reason": reason, **_alert_names(alert)},
    )


def alert_closed_by(
    actor: Actor, at: datetime, alert: Alert, *, reason: str, note: str
) -> AuditEvent:
    """An inspector took *alert* off the list, saying why."""
    details = {**_alert_names(alert), "reason": reason, "note": note}
    return by(
        actor, EventType.SUPERVISION_ALERT_CLOSED, at, department=alert.department, details=details
    )


def alert_acknowledged(actor: Actor, at: datetime, alert: Alert, *, note: str | None) -> AuditEvent:
    details = {**_alert_names(alert), "note": note}
    return by(
        actor,
        EventType.SUPERVISION_ALERT_ACKNOWLEDGED,
        at,
        department=alert.department,
        details=details,
    )


def alert_noted(actor: Actor, at: datetime, alert: Alert, *, note: str) -> AuditEvent:
    details = {**_alert_names(alert), "note": note}
    return by(
        actor, EventType.SUPERVISION_ALERT_NOTED, at, department=alert.department, details=details
    )


# --- webhooks ----------------------------------------------------------------------------------


def webhook_created(
    actor: Actor, at: datetime, *, department: str, webhook: uuid.UUID, url: str
) -> AuditEvent:
    details = {"webhook": str(webhook), "url": url}
    return by(actor, EventType.WEBHOOK_CREATED, at, department=department, details=details)


def webhook_deleted(
    actor: Actor, at: datetime, *, department: str, webhook: uuid.UUID
) -> AuditEvent:
    details = {"webhook": str(webhook)}
    return by(actor, EventType.WEBHOOK_DELETED, at, department=department, details=details)


def webhook_replayed(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    job: uuid.UUID,
    webhook: uuid.UUID,
    delivery: uuid.UUID,
) -> AuditEvent:
    """A dead letter put back in the queue under its id."""
    details = {"job": str(job), "webhook": str(webhook), "delivery": str(delivery)}
    return by(actor, EventType.WEBHOOK_REPLAYED, at, department=department, details=details)


def webhook_allowlist_added(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    entry: uuid.UUID,
    host: str,
    port: int,
    allow_private: bool,
) -> AuditEvent:
    """In the admin's own department (the allow-list is the platform's)."""
    details = {"entry": str(entry), "host": host, "port": port, "allow_private": allow_private}
    return by(actor, EventType.WEBHOOK_ALLOWLIST_ADDED, at, department=department, details=details)


def webhook_allowlist_removed(
    actor: Actor, at: datetime, *, department: str, entry: uuid.UUID, host: str, port: int
) -> AuditEvent:
    details = {"entry": str(entry), "host": host, "port": port}
    return by(
        actor, EventType.WEBHOOK_ALLOWLIST_REMOVED, at, department=department, details=details
    )


def webhook_policy_changed(
    actor: Actor, at: datetime, *, department: str, policy: Policy
) -> AuditEvent:
    """The details are the new policy as the API shows it."""
    return by(
        actor,
        EventType.WEBHOOK_POLICY_CHANGED,
        at,
        department=department,
        details=policy.as_json(),
    )


def webhook_attempted(
    at: datetime,
    *,
    department: str,
    document: str,
    webhook: uuid.UUID,
    job: uuid.UUID,
    delivery: uuid.UUID,
    attempt: int,
    status: int | None,
    error: str | None,
    address: str | None,
    outcome: str,
    next_attempt_at: datetime | None,
) -> AuditEvent:
    """One delivery attempt by the worker (no actor); *outcome*: delivered, retry, dead or
    superseded."""
    return AuditEvent(
        EventType.WEBHOOK_ATTEMPTED,
        at,
        department=department,
        document=document,
        details={
            "webhook": str(webhook),
            "job": str(job),
            "delivery": str(delivery),
            "attempt": attempt,
            "status": status,
            "error": error,
            "address": address,
            "outcome": outcome,
            "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None,
        },
    )


def webhook_dead_lettered(
    at: datetime,
    *,
    department: str,
    document: str,
    webhook: uuid.UUID,
    job: uuid.UUID,
    delivery: uuid.UUID,
    attempts: int,
    error: str | None,
) -> AuditEvent:
    """The worker gave up on a job: it waits for a replay."""
    return AuditEvent(
        EventType.WEBHOOK_DEAD_LETTERED,
        at,
        department=department,
        document=document,
        details={
            "webhook": str(webhook),
            "job": str(job),
            "delivery": str(delivery),
            "attempts": attempts,
            "error": error,
        },
    )


# --- passkeys ---------------------------------------------------------------------------------


def passkey_registered(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    official: str,
    passkey: uuid.UUID,
    credential: str,
    label: str,
    via: str,
    step_up: Mapping[str, Any] | None,
) -> AuditEvent:
    """*via*: ``first`` (no active passkey), ``new_key`` (the session's key was enrolled after
    the newest active passkey: recovery through an enrollment code) or ``step_up``."""
    details: dict[str, Any] = {
        "official": official,
        "passkey": str(passkey),
        "credential": credential,
        "label": label,
        "via": via,
    }
    if step_up is not None:
        details["step_up"] = dict(step_up)
    return by(actor, EventType.PASSKEY_REGISTERED, at, department=department, details=details)


def passkey_removed(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    official: str,
    passkey: uuid.UUID,
    credential: str,
) -> AuditEvent:
    details = {"official": official, "passkey": str(passkey), "credential": credential}
    return by(actor, EventType.PASSKEY_REMOVED, at, department=department, details=details)


def department_settings_changed(
    actor: Actor,
    at: datetime,
    *,
    department: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> AuditEvent:
    details = {"before": dict(before), "after": dict(after)}
    return by(
        actor, EventType.DEPARTMENT_SETTINGS_CHANGED, at, department=department, details=details
    )
