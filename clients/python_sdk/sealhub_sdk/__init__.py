"""Python SDK for the sealhub gateway: send, receive, sign for and verify sealed documents.

Everything public is re-exported here; modules under ``sealhub_sdk._internal`` are
private and may change in any release. See README.md for a five-minute start.
"""

from sealhub_sdk._internal.async_client import AsyncClient
from sealhub_sdk._internal.audit import (
    verify_checkpoint,
    verify_checkpoint_timestamp,
    verify_entry,
    verify_growth,
)
from sealhub_sdk._internal.core import RetryPolicy
from sealhub_sdk._internal.errors import (
    AuthenticationError,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    SealhubError,
    ServerError,
    TransportError,
    VerificationError,
)
from sealhub_sdk._internal.keys import DeviceKey
from sealhub_sdk._internal.merkle import leaf_hash, verify_consistency, verify_inclusion
from sealhub_sdk._internal.models import (
    AuditEntry,
    Checkpoint,
    ConsistencyProof,
    Department,
    Document,
    Download,
    EnrolledKey,
    Group,
    InboxDocument,
    InboxItem,
    InclusionProof,
    Me,
    NewOfficial,
    Page,
    Receipt,
    Seal,
    SealCheck,
    SealRequest,
    SentDocument,
    Session,
    VerificationReport,
)
from sealhub_sdk._internal.note import CheckpointBody, NoteVerifier, open_note, parse_checkpoint
from sealhub_sdk._internal.pdf import verify_pdf_locally
from sealhub_sdk._internal.receipts import (
    TimestampInfo,
    VerifiedReceipt,
    verify_countersigned_receipt,
    verify_timestamp_token,
)
from sealhub_sdk._internal.sync_client import Client
from sealhub_sdk._internal.webhook import verify_webhook_signature, webhook_signature

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AuditEntry",
    "AuthenticationError",
    "Checkpoint",
    "CheckpointBody",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConsistencyProof",
    "Department",
    "DeviceKey",
    "Document",
    "Download",
    "EnrolledKey",
    "Group",
    "InboxDocument",
    "InboxItem",
    "InclusionProof",
    "InvalidRequest",
    "Me",
    "NewOfficial",
    "NotFound",
    "NoteVerifier",
    "Page",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Receipt",
    "RetryPolicy",
    "Seal",
    "SealCheck",
    "SealRequest",
    "SealhubError",
    "SentDocument",
    "ServerError",
    "Session",
    "TimestampInfo",
    "TransportError",
    "VerificationError",
    "VerificationReport",
    "VerifiedReceipt",
    "__version__",
    "leaf_hash",
    "open_note",
    "parse_checkpoint",
    "verify_checkpoint",
    "verify_checkpoint_timestamp",
    "verify_consistency",
    "verify_countersigned_receipt",
    "verify_entry",
    "verify_growth",
    "verify_inclusion",
    "verify_pdf_locally",
    "verify_timestamp_token",
    "verify_webhook_signature",
    "webhook_signature",
]
