"""problem+json codes map to the documented exception classes."""

from __future__ import annotations

import json

import pytest
from sealhub_sdk import (
    AuthenticationError,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    SealhubError,
    ServerError,
)
from sealhub_sdk._internal.errors import error_from_response


def _problem(status: int, code: str, **extra: object) -> bytes:
    return json.dumps(
        {"type": "x", "title": "t", "status": status, "detail": "why", "code": code, **extra}
    ).encode()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "invalid_token", AuthenticationError),
        (401, "invalid_dpop", AuthenticationError),
        (401, "use_dpop_nonce", AuthenticationError),
        (401, "replayed_assertion", AuthenticationError),
        (403, "forbidden", PermissionDenied),
        (403, "seal_requires_approval", PermissionDenied),
        (404, "not_found", NotFound),
        (409, "idempotency_conflict", Conflict),
        (409, "already_exists", Conflict),
        (413, "payload_too_large", PayloadTooLarge),
        (422, "pdf_malformed", InvalidRequest),
        (415, "not_a_pdf", InvalidRequest),
        (422, "classified_not_allowed", InvalidRequest),
        (500, "internal_error", ServerError),
        (503, "not_ready", ServerError),
        (409, "some_new_conflict", Conflict),  # unknown code: the status decides
    ],
)
def test_code_to_class(status: int, code: str, cls: type[SealhubError]) -> None:
    error = error_from_response(status, {"x-request-id": "abcd1234"}, _problem(status, code))
    assert type(error) is cls
    assert (error.code, error.status, error.detail, error.request_id) == (
        code,
        status,
        "why",
        "abcd1234",
    )
    assert isinstance(error, SealhubError)
    assert code in str(error) and "abcd1234" in str(error)


def test_rate_limited_carries_retry_after() -> None:
    error = error_from_response(429, {"retry-after": "7"}, _problem(429, "rate_limited"))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_non_json_answer_still_maps_by_status() -> None:
    error = error_from_response(502, {}, b"<html>bad gateway</html>")
    assert isinstance(error, ServerError)
    assert error.code == "server_error"
    assert "html" not in error.detail


def test_reason_is_kept() -> None:
    error = error_from_response(401, {}, _problem(401, "invalid_token", reason="expired"))
    assert error.reason == "expired"
