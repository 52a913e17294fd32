"""The one place where errors become HTTP: RFC 9457 problem+json with a stable ``code``.

Domain packages raise their own exceptions carrying a ``code`` class attribute; this
module knows which HTTP status each code means. Anything else is a bug: logged with
its traceback under the request id, answered as a bare 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web

PROBLEM_TYPE_BASE = "https://sealhub.invalid/problems/"

# code -> HTTP status: the one registry of error codes. Codes not listed here are treated as
# bugs (500); tests/test_error_codes.py fails on any code raised in the packages that is
# missing here or from the error table of docs/api.md.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "invalid_json": 400,
    "invalid_cursor": 400,
    "invalid_org_file": 400,
    "not_a_pdf": 415,
    "unsupported_media_type": 415,
    "pdf_malformed": 422,
    "pdf_encrypted": 422,
    "pdf_too_complex": 422,
    "classified_not_allowed": 422,
    "recipient_unknown": 422,
    "parent_unknown": 422,
    "invalid_token": 401,
    "invalid_assertion": 401,
    "invalid_enrollment_proof": 401,
    "invalid_signature": 401,
    "invalid_nonce": 401,
    "invalid_jwk": 400,
    "use_dpop_nonce": 401,
    "enrollment_code_invalid": 401,
    "official_disabled": 403,
    "invalid_dpop": 401,
    "replayed_assertion": 401,
    "unauthenticated": 401,
    "forbidden": 403,
    "seal_requires_approval": 403,
    "resend_requires_approval": 403,
    "seal_revoked": 409,
    "no_active_seal": 409,
    "doc_number_taken": 409,
    "existing_seal_invalid": 422,
    "audit_pending": 503,
    "not_found": 404,
    "method_not_allowed": 405,
    "already_exists": 409,
    "conflict": 409,
    "idempotency_conflict": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "request_timeout": 408,
    "enrollment_code_used": 401,
    "enrollment_code_expired": 401,
    "enrollment_code_locked": 401,
    "replayed_nonce": 401,
    "replayed_dpop": 401,
    "replayed_enrollment_proof": 401,
    "invalid_grant": 401,
    "refresh_token_reused": 401,
    "key_already_enrolled": 409,
    "department_unknown": 422,
    "range_not_satisfiable": 416,
    "object_corrupt": 500,
    "object_key_unknown": 500,
    "storage_unavailable": 503,
    "database_unavailable": 503,
    "not_ready": 503,
    "seal_font_missing": 503,
    "invalid_proof_request": 400,
    "invalid_verifier_key": 400,
    "invalid_note": 400,
    "invalid_checkpoint": 400,
    "note_signature_invalid": 422,
    "note_unverified": 422,
    "checkpoint_unknown": 422,
    "cosignature_outdated": 409,
    "invalid_workflow": 422,
    "step_not_open": 409,
    "already_decided": 409,
    "document_locked": 409,
    "replayed_approval": 409,
    "webhook_url_invalid": 422,
    "webhook_target_not_allowed": 422,
    "webhook_address_refused": 422,
    "alert_closed": 409,
    # Sealing core (seals/errors.py): a refused document is the client's, never a 500.
    "seal_error": 422,
    "pdf_invalid": 422,
    "sealing_failed": 422,
    "certification_forbids_seal": 422,
    "verify_busy": 503,
    # Base classes of domain errors, for a subclass that forgot its own code.
    "directory_error": 422,
    "document_error": 409,
    "identity_error": 422,
    "replayed": 401,
    "supervision_error": 409,
    "note_error": 400,
    "invalid_proof": 422,
    "object_store_error": 503,
    # Faults of the installation or of our own code: logged as service errors, still 5xx.
    "internal_error": 500,
    "audit_log_error": 500,
    "config_error": 500,
    "crl_error": 500,
    "key_not_found": 500,
    "keystore_error": 500,
    "master_key_error": 500,
    "merkle_error": 500,
    "merkle_node_missing": 500,
    "merkle_state_invalid": 500,
    "migration_failed": 500,
    "official_command_error": 500,
    "pki_error": 500,
    "platform_pki_error": 500,
    "timestamp_invalid": 500,
    "tsa_error": 500,
    "tsa_rejected": 500,
    # Identity: four eyes on people.
    "same_person": 403,
    "request_decided": 409,
    "alert_notes_full": 409,
}


class ApiError(Exception):
    """An error decided at the HTTP edge (bad parameters, unknown route, ...), with the
    response headers it needs (``WWW-Authenticate``, ``Retry-After``, ...) and members
    added to the problem body (a failed check's ``reason``)."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status or STATUS_BY_CODE.get(code, 400)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def status_for(exc: BaseException) -> tuple[int, str] | None:
    """(status, code) for a known domain error, else None (a bug)."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code
    code = getattr(type(exc), "code", None)
    if isinstance(code, str) and code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code], code
    return None


# An absolute filesystem path: a slash-led run of at least two components, not inside a URL
# or an API path (/v1/..., /.well-known/...). Library messages (OSError, pyhanko, asyncpg)
# may carry one; it tells a client where the server keeps its data, so none is ever sent.
_SERVER_PATH = re.compile(r"(?<![\w.:/-])/(?!v1/|\.well-known/)(?:[\w.+@~-]+/)+[\w.+@~-]*")


def without_server_paths(text: str) -> str:
    """*text* with every filesystem path replaced by ``<path>``."""
    return _SERVER_PATH.sub("<path>", text)


def problem_response(
    status: int, code: str, detail: str, *, extra: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": without_server_paths(detail),
        "code": code,
    }
    if extra:
        body.update(extra)
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type="application/problem+json",
        charset="utf-8",
    )


def detail_of(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str) and detail:
        return detail
    return str(exc) or type(exc).__name__
