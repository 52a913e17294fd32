"""Typed results: frozen dataclasses built from the gateway's JSON (API.md).

Each keeps the fields the contract names; ``raw`` holds the whole JSON object so fields
the gateway adds later are reachable without an SDK release.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _s(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _opt(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _strs(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _b64(value: object) -> bytes:
    return base64.b64decode(value, validate=True) if isinstance(value, str) else b""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list; pass ``next_cursor`` to get the next one."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Session:
    """The result of a login: who is logged in and until when the access token lasts."""

    official_id: str
    expires_in: int
    token_type: str


@dataclass(frozen=True)
class Me:
    id: str
    name: str
    department: str
    roles: tuple[str, ...]
    kid: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Me:
        kid = _opt(data, "kid") or _opt(data, "key_id")
        return cls(
            _s(data, "id"),
            _s(data, "name"),
            _s(data, "department"),
            _strs(data, "roles"),
            kid,
            data,
        )


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_en: str
    parent: str | None
    kind: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Department:
        return cls(
            _s(data, "code"),
            _s(data, "name"),
            _s(data, "name_en"),
            _opt(data, "parent"),
            _s(data, "kind"),
        )


@dataclass(frozen=True)
class Group:
    code: str
    name: str
    members: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Group:
        return cls(_s(data, "code"), _s(data, "name"), _strs(data, "members"))


@dataclass(frozen=True)
class NewOfficial:
    """A created official; hand ``enrollment_code`` to the person over a separate channel.

    An official with admin, inspector, leader or seal_keeper waits for a second manager:
    ``pending_request`` is then the request id (``id`` and ``enrollment_code`` are empty) and
    the second manager's ``approve_official_request`` returns the created official.
    """

    id: str
    enrollment_code: str = field(repr=False)
    pending_request: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NewOfficial:
        request = data.get("request")
        if data.get("status") == "pending_approval" and isinstance(request, Mapping):
            return cls("", "", _s(request, "id"))
        return cls(_s(data, "id"), _s(data, "enrollment_code"))


@dataclass(frozen=True)
class EnrolledKey:
    kid: str


@dataclass(frozen=True)
class SentDocument:
    """The answer to a send: ``status`` is ``dispatched`` or ``in_approval``."""

    id: str
    status: str
    draft_sha256: str
    sha256: str | None
    deliveries: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SentDocument:
        return cls(
            _s(data, "id"),
            _s(data, "status"),
            _s(data, "draft_sha256"),
            _opt(data, "sha256"),
            _int(data, "deliveries"),
        )


@dataclass(frozen=True)
class Document:
    """Metadata, status, deliveries and approval trail of one document."""

    id: str
    title: str
    doc_number: str
    status: str
    sha256: str | None
    draft_sha256: str | None
    deliveries: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Document:
        deliveries = data.get("deliveries")
        return cls(
            _s(data, "id"),
            _s(data, "title"),
            _s(data, "doc_number"),
            _s(data, "status"),
            _opt(data, "sha256"),
            _opt(data, "draft_sha256"),
            tuple(d for d in deliveries if isinstance(d, dict))
            if isinstance(deliveries, list)
            else (),
            data,
        )


@dataclass(frozen=True)
class InboxDocument:
    id: str
    title: str
    doc_number: str
    urgency: str
    sender: str


@dataclass(frozen=True)
class InboxItem:
    """One delivery to the caller's department."""

    id: str
    document: InboxDocument
    state: str
    created_at: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InboxItem:
        doc = data.get("document")
        d: Mapping[str, Any] = doc if isinstance(doc, dict) else {}
        return cls(
            _s(data, "id"),
            InboxDocument(
                _s(d, "id"), _s(d, "title"), _s(d, "doc_number"), _s(d, "urgency"), _s(d, "sender")
            ),
            _s(data, "state"),
            _s(data, "created_at"),
        )


@dataclass(frozen=True)
class Download:
    """A document written to disk; ``sha256`` was computed over the bytes as they arrived."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Receipt:
    """A countersigned receipt as the gateway returned it; check ``countersigned`` offline
    with :func:`verify_countersigned_receipt` before relying on it."""

    delivery: str
    state: str
    audit_index: int | None
    countersigned: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        index = data.get("audit_index")
        return cls(
            _s(data, "delivery"),
            _s(data, "state"),
            index if isinstance(index, int) else None,
            _s(data, "countersigned"),
        )


@dataclass(frozen=True)
class SealCheck:
    field: str
    department: str | None
    seal_id: str | None
    signer_subject: str
    signed_at: str | None
    timestamp: str | None
    level: str | None
    intact: bool
    trusted: bool
    revoked: bool
    covers_whole_document: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SealCheck:
        return cls(
            _s(data, "field"),
            _opt(data, "department"),
            _opt(data, "seal_id"),
            _s(data, "signer_subject"),
            _opt(data, "signed_at"),
            _opt(data, "timestamp"),
            _opt(data, "level"),
            data.get("intact") is True,
            data.get("trusted") is True,
            data.get("revoked") is True,
            data.get("covers_whole_document") is True,
        )


@dataclass(frozen=True)
class VerificationReport:
    """Whether a sealed PDF is valid, and the check of each seal in it."""

    valid: bool
    seals: tuple[SealCheck, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerificationReport:
        seals = data.get("seals")
        return cls(
            data.get("valid") is True,
            tuple(SealCheck.from_json(s) for s in seals if isinstance(s, dict))
            if isinstance(seals, list)
            else (),
        )


@dataclass(frozen=True)
class Checkpoint:
    """The audit log's signed head. Verify ``note`` with the log key before trusting it."""

    tree_size: int
    root_hash: bytes
    note: str
    timestamp: str | None
    cosignatures: tuple[Any, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        cos = data.get("cosignatures")
        return cls(
            _int(data, "tree_size"),
            _b64(data.get("root_hash")),
            _s(data, "note"),
            _opt(data, "timestamp"),
            tuple(cos) if isinstance(cos, list) else (),
        )


@dataclass(frozen=True)
class AuditEntry:
    index: int
    type: str
    at: str
    actor: Mapping[str, Any]
    department: str | None
    document: str | None
    details: Mapping[str, Any] | None
    salt: str | None
    leaf: bytes

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        actor, details = data.get("actor"), data.get("details")
        return cls(
            _int(data, "index"),
            _s(data, "type"),
            _s(data, "at"),
            actor if isinstance(actor, dict) else {},
            _opt(data, "department"),
            _opt(data, "document"),
            details if isinstance(details, dict) else None,
            _opt(data, "salt"),
            _b64(data.get("leaf")),
        )


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InclusionProof:
        hashes = data.get("hashes")
        return cls(
            _int(data, "leaf_index"),
            _int(data, "tree_size"),
            tuple(_b64(h) for h in hashes) if isinstance(hashes, list) else (),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: tuple[bytes, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsistencyProof:
        hashes = data.get("hashes")
        return cls(
            _int(data, "from"),
            _int(data, "to"),
            tuple(_b64(h) for h in hashes) if isinstance(hashes, list) else (),
        )


@dataclass(frozen=True)
class SealRequest:
    """A pending seal issuance or revocation; a second admin approves it."""

    id: str
    department: str
    kind: str
    status: str
    seal_id: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SealRequest:
        return cls(
            _s(data, "id"),
            _s(data, "department"),
            _s(data, "kind"),
            _s(data, "status"),
            _opt(data, "seal_id"),
        )


@dataclass(frozen=True)
class Seal:
    """A department's electronic seal (电子印章): its certificate and validity."""

    id: str
    department: str
    purpose: str
    status: str
    certificate_pem: str = field(repr=False)
    valid_from: str | None
    valid_to: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Seal:
        return cls(
            _s(data, "id"),
            _s(data, "department"),
            _s(data, "purpose"),
            _s(data, "status"),
            _s(data, "certificate_pem"),
            _opt(data, "valid_from"),
            _opt(data, "valid_to"),
        )
