"""The SDK's exception tree: one class per kind of failure a caller reacts to differently.

The gateway answers errors as RFC 9457 problem+json with a stable ``code``; the class is
chosen by that code (falling back on the HTTP status for codes this SDK version does not
know yet), so ``except NotFound`` keeps working when the server adds new codes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar


class SealhubError(Exception):
    """Base of every error raised by the SDK.

    ``code`` is the gateway's machine code (or the SDK's own for local failures),
    ``status`` the HTTP status (None when no response was received), ``detail`` the human
    message, ``request_id`` the gateway's ``X-Request-Id`` to quote to an operator.
    """

    code: str = "error"
    default_code: ClassVar[str] = "error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or type(self).default_code
        self.status = status
        self.request_id = request_id
        self.reason = reason

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status else ""
        quote = f" [request id {self.request_id}]" if self.request_id else ""
        return f"{self.code}: {self.detail}{where}{quote}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"request_id={self.request_id!r})"
        )


class ConfigurationError(SealhubError):
    """The client was set up unsafely or incompletely (http:// URL, no CA file, no key)."""

    default_code = "configuration_error"


class TransportError(SealhubError):
    """No HTTP answer: connection refused, timeout, TLS failure (after retries)."""

    default_code = "transport_error"


class InvalidRequest(SealhubError):
    """The gateway refused the request's content (400, 415, 422)."""

    default_code = "invalid_request"


class AuthenticationError(SealhubError):
    """Not authenticated: bad or expired token, DPoP proof, assertion, enrollment code (401)."""

    default_code = "unauthenticated"


class PermissionDenied(SealhubError):
    """Authenticated, but the caller's roles do not allow this (403)."""

    default_code = "forbidden"


class NotFound(SealhubError):
    """No such resource, or one of another department (404: existence never leaks)."""

    default_code = "not_found"


class Conflict(SealhubError):
    """The resource's state forbids this, or an idempotency key was reused (409)."""

    default_code = "conflict"


class PayloadTooLarge(SealhubError):
    """The body or document exceeds the gateway's limit (413)."""

    default_code = "payload_too_large"


class RateLimited(SealhubError):
    """Too many requests (429); ``retry_after`` is the server's advice in seconds."""

    default_code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class ServerError(SealhubError):
    """The gateway failed (5xx); quote ``request_id`` when reporting it."""

    default_code = "server_error"


class VerificationError(SealhubError):
    """Offline verification failed: a proof, note, receipt, timestamp or webhook is not valid."""

    default_code = "verification_failed"


_BY_CODE: dict[str, type[SealhubError]] = {
    "invalid_token": AuthenticationError,
    "invalid_dpop": AuthenticationError,
    "use_dpop_nonce": AuthenticationError,
    "invalid_assertion": AuthenticationError,
    "invalid_nonce": AuthenticationError,
    "invalid_enrollment_proof": AuthenticationError,
    "invalid_signature": AuthenticationError,
    "enrollment_code_invalid": AuthenticationError,
    "replayed_assertion": AuthenticationError,
    "unauthenticated": AuthenticationError,
    "forbidden": PermissionDenied,
    "seal_requires_approval": PermissionDenied,
    "official_disabled": PermissionDenied,
    "not_found": NotFound,
    "idempotency_conflict": Conflict,
    "already_exists": Conflict,
    "conflict": Conflict,
    "seal_revoked": Conflict,
    "payload_too_large": PayloadTooLarge,
    "rate_limited": RateLimited,
}

_BY_STATUS: dict[int, type[SealhubError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: RateLimited,
}


def error_class_for(code: str, status: int) -> type[SealhubError]:
    """The exception class for a problem ``code`` and HTTP ``status``."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return InvalidRequest


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` advice in seconds (delay-seconds or an HTTP date), else None."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> SealhubError:
    """Build the exception for a non-2xx answer; never quotes more than the problem detail."""
    problem: dict[str, Any] = {}
    try:
        parsed = json.loads(body.decode("utf-8")) if body else {}
        if isinstance(parsed, dict):
            problem = parsed
    except (UnicodeDecodeError, ValueError):
        problem = {}
    code = problem.get("code")
    if not isinstance(code, str) or not code:
        code = _BY_STATUS.get(status, ServerError if status >= 500 else InvalidRequest).default_code
    detail = problem.get("detail")
    if not isinstance(detail, str) or not detail:
        detail = f"the gateway answered HTTP {status}"
    reason = problem.get("reason")
    request_id = headers.get("x-request-id") or headers.get("X-Request-Id")
    cls = error_class_for(code, status)
    common: dict[str, Any] = {
        "code": code,
        "status": status,
        "request_id": request_id,
        "reason": reason if isinstance(reason, str) else None,
    }
    if cls is RateLimited:
        return RateLimited(detail, retry_after=retry_after_seconds(headers), **common)
    return cls(detail, **common)
