"""The words of sealhub's data: roles and the states of its rows, one enum each.

Each enum holds exactly the values its table's CHECK constraint allows (the migration is
named beside it), so a typo is a mypy or import error, not a row the database refuses.
They are StrEnums: a member equals, hashes and JSON-encodes as its value, so rows read
from the database compare with members directly and members go into SQL and JSON as
they are. Kept in storage/ (which never imports gateway/) so both layers can use it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What an official may do (``officials.roles``, migration 0003)."""

    ADMIN = "admin"
    DEPT_ADMIN = "dept_admin"
    CLERK = "clerk"
    LEADER = "leader"
    SEAL_KEEPER = "seal_keeper"
    INSPECTOR = "inspector"
    SYSTEM = "system"


# Route and service checks that name one role only.
ADMIN_ONLY: frozenset[Role] = frozenset({Role.ADMIN})
DEPT_ADMIN_ONLY: frozenset[Role] = frozenset({Role.DEPT_ADMIN})


class OfficialStatus(StrEnum):
    """``officials.status`` (migration 0003)."""

    ACTIVE = "active"
    DISABLED = "disabled"


class DocumentStatus(StrEnum):
    """``documents.status`` (migration 0006)."""

    IN_APPROVAL = "in_approval"
    AWAITING_SEAL = "awaiting_seal"
    RETURNED = "returned"
    DISPATCHED = "dispatched"
    WITHDRAWN = "withdrawn"


class DeliveryState(StrEnum):
    """``deliveries.state`` (migration 0006): pending → fetched → received or rejected;
    withdrawn from pending or fetched only."""

    PENDING = "pending"
    FETCHED = "fetched"
    RECEIVED = "received"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApprovalDecision(StrEnum):
    """``approvals.decision`` (migration 0007)."""

    APPROVE = "approve"
    REJECT = "reject"


class StepMode(StrEnum):
    """``workflow_steps.mode`` (migration 0007): every assignee, or any one of them."""

    ALL = "all"
    ANY = "any"


class SealStatus(StrEnum):
    """``seals.status`` (migration 0005)."""

    ACTIVE = "active"
    REVOKED = "revoked"


class SealRequestKind(StrEnum):
    """``seal_requests.kind`` (migration 0005)."""

    ISSUE = "issue"
    REVOKE = "revoke"


class SealRequestStatus(StrEnum):
    """``seal_requests.status`` (migrations 0005, 0018): ``cancelled`` is withdrawn by its
    requester, ``declined`` refused by another admin."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class OfficialRequestKind(StrEnum):
    """``official_requests.kind`` (migration 0012): the four-eyes identity changes."""

    ENROLLMENT_CODE = "enrollment_code"
    CREATE_OFFICIAL = "create_official"
    TRANSFER = "transfer"


class OfficialRequestStatus(StrEnum):
    """``official_requests.status`` (migration 0012)."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class AlertState(StrEnum):
    """``supervision_alerts.state`` (migration 0009)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class WebhookJobState(StrEnum):
    """``webhook_jobs.state`` (migration 0008)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
