"""The registry of problem codes, and the base of every error that carries one.

Each :class:`Code` is a stable machine name a client may branch on (the ``code`` member of
a problem+json body) with the HTTP status it is answered with; docs/api.md has a row for
each (tests/test_error_codes.py checks both ways). It is a ``StrEnum``: a member equals
its string, so ``code == "not_found"`` holds and a plain string still finds its status.

Errors raised on purpose derive from :class:`CodedError`: a ``code`` (a class attribute,
or per instance for :class:`gateway.http.errors.ApiError`), a ``detail`` for the client
and the response headers the refusal needs (``Retry-After``, ``WWW-Authenticate``). The
gateway's one renderer (gateway/http/errors.py) turns them into problem+json. Here in
keys/, the lowest package, so seals/, keys/ and storage/ use it without importing the
gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar


class Code(StrEnum):
    """A problem code and its HTTP status (``Code.NOT_FOUND.status == 404``)."""

    status: int

    def __new__(cls, value: str, status: int) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        return member

    @classmethod
    def of(cls, value: str) -> Code:
        """The member whose value is *value*; ValueError when it is not registered."""
        return cls(value)  # type: ignore[call-arg]  # a lookup by value, not a new member

    INVALID_REQUEST = "invalid_request", 400
    INVALID_JSON = "invalid_json", 400
    INVALID_CURSOR = "invalid_cursor", 400
    INVALID_ORG_FILE = "invalid_org_file", 400
    NOT_A_PDF = "not_a_pdf", 415
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415
    PDF_MALFORMED = "pdf_malformed", 422
    PDF_ENCRYPTED = "pdf_encrypted", 422
    PDF_TOO_COMPLEX = "pdf_too_complex", 422
    CLASSIFIED_NOT_ALLOWED = "classified_not_allowed", 422
    RECIPIENT_UNKNOWN = "recipient_unknown", 422
    PARENT_UNKNOWN = "parent_unknown", 422
    INVALID_TOKEN = "invalid_token", 401
    INVALID_ASSERTION = "invalid_assertion", 401
    INVALID_ENROLLMENT_PROOF = "invalid_enrollment_proof", 401
    INVALID_SIGNATURE = "invalid_signature", 401
    INVALID_NONCE = "invalid_nonce", 401
    INVALID_JWK = "invalid_jwk", 400
    USE_DPOP_NONCE = "use_dpop_nonce", 401
    ENROLLMENT_CODE_INVALID = "enrollment_code_invalid", 401
    OFFICIAL_DISABLED = "official_disabled", 403
    INVALID_DPOP = "invalid_dpop", 401
    REPLAYED_ASSERTION = "replayed_assertion", 401
    UNAUTHENTICATED = "unauthenticated", 401
    FORBIDDEN = "forbidden", 403
    SEAL_REQUIRES_APPROVAL = "seal_requires_approval", 403
    RESEND_REQUIRES_APPROVAL = "resend_requires_approval", 403
    SEAL_REVOKED = "seal_revoked", 409
    NO_ACTIVE_SEAL = "no_active_seal", 409
    DOC_NUMBER_TAKEN = "doc_number_taken", 409
    EXISTING_SEAL_INVALID = "existing_seal_invalid", 422
    AUDIT_PENDING = "audit_pending", 503
    NOT_FOUND = "not_found", 404
    METHOD_NOT_ALLOWED = "method_not_allowed", 405
    ALREADY_EXISTS = "already_exists", 409
    CONFLICT = "conflict", 409
    IDEMPOTENCY_CONFLICT = "idempotency_conflict", 409
    PAYLOAD_TOO_LARGE = "payload_too_large", 413
    RATE_LIMITED = "rate_limited", 429
    REQUEST_TIMEOUT = "request_timeout", 408
    ENROLLMENT_CODE_USED = "enrollment_code_used", 401
    ENROLLMENT_CODE_EXPIRED = "enrollment_code_expired", 401
    ENROLLMENT_CODE_LOCKED = "enrollment_code_locked", 401
    REPLAYED_NONCE = "replayed_nonce", 401
    REPLAYED_DPOP = "replayed_dpop", 401
    REPLAYED_ENROLLMENT_PROOF = "replayed_enrollment_proof", 401
    INVALID_GRANT = "invalid_grant", 401
    REFRESH_TOKEN_REUSED = "refresh_token_reused", 401
    KEY_ALREADY_ENROLLED = "key_already_enrolled", 409
    DEPARTMENT_UNKNOWN = "department_unknown", 422
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable", 416
    OBJECT_CORRUPT = "object_corrupt", 500
    OBJECT_KEY_UNKNOWN = "object_key_unknown", 500
    STORAGE_UNAVAILABLE = "storage_unavailable", 503
    DATABASE_UNAVAILABLE = "database_unavailable", 503
    NOT_READY = "not_ready", 503
    SEAL_FONT_MISSING = "seal_font_missing", 503
    INVALID_PROOF_REQUEST = "invalid_proof_request", 400
    INVALID_VERIFIER_KEY = "invalid_verifier_key", 400
    INVALID_NOTE = "invalid_note", 400
    INVALID_CHECKPOINT = "invalid_checkpoint", 400
    NOTE_SIGNATURE_INVALID = "note_signature_invalid", 422
    NOTE_UNVERIFIED = "note_unverified", 422
    CHECKPOINT_UNKNOWN = "checkpoint_unknown", 422
    COSIGNATURE_OUTDATED = "cosignature_outdated", 409
    INVALID_WORKFLOW = "invalid_workflow", 422
    STEP_NOT_OPEN = "step_not_open", 409
    ALREADY_DECIDED = "already_decided", 409
    DOCUMENT_LOCKED = "document_locked", 409
    REPLAYED_APPROVAL = "replayed_approval", 409
    WEBHOOK_URL_INVALID = "webhook_url_invalid", 422
    WEBHOOK_TARGET_NOT_ALLOWED = "webhook_target_not_allowed", 422
    WEBHOOK_ADDRESS_REFUSED = "webhook_address_refused", 422
    ALERT_CLOSED = "alert_closed", 409
    # Sealing core (seals/errors.py): a refused document is the client's, never a 500.
    SEAL_ERROR = "seal_error", 422
    PDF_INVALID = "pdf_invalid", 422
    SEALING_FAILED = "sealing_failed", 422
    CERTIFICATION_FORBIDS_SEAL = "certification_forbids_seal", 422
    VERIFY_BUSY = "verify_busy", 503
    # Base classes of domain errors, for a subclass that forgot its own code.
    DIRECTORY_ERROR = "directory_error", 422
    DOCUMENT_ERROR = "document_error", 409
    IDENTITY_ERROR = "identity_error", 422
    REPLAYED = "replayed", 401
    SUPERVISION_ERROR = "supervision_error", 409
    NOTE_ERROR = "note_error", 400
    INVALID_PROOF = "invalid_proof", 422
    OBJECT_STORE_ERROR = "object_store_error", 503
    # Faults of the installation or of our own code: logged as service errors, still 5xx.
    INTERNAL_ERROR = "internal_error", 500
    AUDIT_LOG_ERROR = "audit_log_error", 500
    CONFIG_ERROR = "config_error", 500
    CRL_ERROR = "crl_error", 500
    KEY_NOT_FOUND = "key_not_found", 500
    KEYSTORE_ERROR = "keystore_error", 500
    MASTER_KEY_ERROR = "master_key_error", 500
    MERKLE_ERROR = "merkle_error", 500
    MERKLE_NODE_MISSING = "merkle_node_missing", 500
    MERKLE_STATE_INVALID = "merkle_state_invalid", 500
    MIGRATION_FAILED = "migration_failed", 500
    OFFICIAL_COMMAND_ERROR = "official_command_error", 500
    PKI_ERROR = "pki_error", 500
    PLATFORM_PKI_ERROR = "platform_pki_error", 500
    TIMESTAMP_INVALID = "timestamp_invalid", 500
    TSA_ERROR = "tsa_error", 500
    TSA_REJECTED = "tsa_rejected", 500
    # Identity: four eyes on people.
    SAME_PERSON = "same_person", 403
    REQUEST_DECIDED = "request_decided", 409
    ALERT_NOTES_FULL = "alert_notes_full", 409
    # Passkeys (WebAuthn), the second factor of console keys. A missing step-up on a signed
    # act answers passkey_required with 403 (gateway/passkeys/errors.py), a login 401.
    PASSKEY_REQUIRED = "passkey_required", 401
    PASSKEY_SETUP_REQUIRED = "passkey_setup_required", 403
    INVALID_PASSKEY = "invalid_passkey", 401
    CONSOLE_KEY_REQUIRED = "console_key_required", 403


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class CodedError(Exception):
    """An error with a stable :class:`Code`, a ``detail`` for the client (never a secret,
    never a server path) and the headers its response needs.

    Subclasses set ``code = Code.X`` (or its string: a class still written with ``code =
    "conflict"`` gets the member when it is defined, and an unregistered string fails at
    import rather than as a 500), and ``default_detail`` when they always say the same
    thing. A class that others extend declares ``code: str = Code.X``: mypy would
    otherwise narrow the attribute to ``Code`` and refuse a subclass's string.
    """

    code: str = Code.INTERNAL_ERROR
    default_detail: ClassVar[str] = ""
    headers: Mapping[str, str] = _NO_HEADERS
    # Members added to the problem body (a failed check's ``reason``).
    extra: Mapping[str, Any] = _NO_EXTRA

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = self.default_detail if detail is None else detail
        super().__init__(self.detail)
        # Set only when given: the shared empty defaults stay on the class, so an error
        # still pickles (the seal workers send theirs across processes).
        if headers:
            self.headers = dict(headers)
        if extra:
            self.extra = dict(extra)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            cls.code = Code.of(cls.code)

    @property
    def status(self) -> int:
        return Code.of(self.code).status
