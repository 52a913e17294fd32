"""What the sync and async clients share: configuration, token state, DPoP headers, the
retry policy and the description of every API call. No network I/O here: each client only
runs the calls described by :mod:`sealhub_sdk._internal.ops` with its own httpx client.
"""

from __future__ import annotations

import json
import os
import random
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from sealhub_sdk._internal import jose
from sealhub_sdk._internal.errors import (
    AuthenticationError,
    ConfigurationError,
    SealhubError,
    TransportError,
    VerificationError,
    retry_after_seconds,
)
from sealhub_sdk._internal.keys import DeviceKey
from sealhub_sdk._internal.models import Download, Receipt

T = TypeVar("T")

TOKEN_PATH = "/v1/auth/token"  # noqa: S105 (a path)
CHALLENGE_PATH = "/v1/auth/challenge"
# Refresh this long before the access token's announced expiry, to absorb clock skew.
REFRESH_MARGIN = 60.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Network errors raised before any byte of the request left: always safe to send again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call:
    """One HTTP request as the API describes it.

    ``retry_safe`` marks calls that may be sent again after a network error or a 429/503
    (reads, POSTs that only read (``repeatable``), and state-changing POSTs carrying an
    ``Idempotency-Key``).
    """

    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    content: bytes | None = None
    content_type: str | None = None
    auth: bool = True
    idempotency_key: str | None = None
    timeout: float | None = None
    content_length: int | None = None
    repeatable: bool = False

    @property
    def retry_safe(self) -> bool:
        return (
            self.method in ("GET", "HEAD", "DELETE")
            or self.repeatable
            or self.idempotency_key is not None
        )


def state_changing(method: str, path: str, **kwargs: Any) -> Call:
    """A POST with a fresh ``Idempotency-Key``, reused by every retry of this one call."""
    return Call(method, path, idempotency_key=str(uuid.uuid4()), **kwargs)


@dataclass(frozen=True)
class Op(Generic[T]):
    """A call and how to turn its JSON answer into a typed result."""

    call: Call
    parse: Callable[[Any], T]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retry-safe call is sent again.

    *attempts* counts every try, the first included. Between tries the client waits
    U(0, min(cap, base * 2**n)) seconds (exponential backoff, full jitter), or exactly what
    the gateway's ``Retry-After`` asks for when it answered 429/502/503/504 with one. Advice
    longer than *max_retry_after* seconds is not waited for: the error (a ``RateLimited``
    carries ``retry_after``) is raised at once, so the caller can decide.
    """

    attempts: int = 4
    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number *attempt* + 2."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311


def check_base_url(base_url: str) -> str:
    """Only ``https://`` origins: tokens and documents never travel in clear text."""
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigurationError(
            f"refusing {base_url!r}: the gateway URL must start with https://",
            code="insecure_url",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError("the gateway URL must be a plain origin", code="insecure_url")
    return base_url.rstrip("/")


def ssl_context(ca_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """TLS that trusts exactly the platform CA given by the user (TLS 1.2+)."""
    path = Path(ca_file)
    if not path.is_file():
        raise ConfigurationError(f"CA file {path} does not exist", code="ca_file_missing")
    context = ssl.create_default_context(cafile=str(path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class TokenState:
    """Access and refresh token of the logged-in official (never shown in repr)."""

    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0

    def store(self, answer: Mapping[str, Any]) -> int:
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthenticationError(
                "the token endpoint sent no access token", code="invalid_token"
            )
        expires_in = answer.get("expires_in")
        lifetime = int(expires_in) if isinstance(expires_in, int | float) else 900
        self.access_token = access
        refresh = answer.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self.refresh_token = refresh
        self.expires_at = time.monotonic() + lifetime
        return lifetime

    def clear(self) -> None:
        self.access_token = self.refresh_token = None
        self.expires_at = 0.0

    @property
    def expiring(self) -> bool:
        return self.access_token is not None and time.monotonic() > self.expires_at - REFRESH_MARGIN


class Core:
    """Configuration and authentication state shared by one client's requests."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_file: str | os.PathLike[str],
        key: DeviceKey | None = None,
        official_id: str | None = None,
        public_url: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.public_url = check_base_url(public_url) if public_url else self.base_url
        self.ssl = ssl_context(ca_file)
        self.key = key
        self.official_id = official_id
        self.retry = retry or RetryPolicy()
        self.tokens = TokenState()
        self.dpop_nonce: str | None = None

    def require_login_material(self) -> tuple[DeviceKey, str]:
        if self.key is None or not self.official_id:
            raise ConfigurationError(
                "logging in needs the device key and the official id", code="not_configured"
            )
        return self.key, self.official_id

    def headers(self, call: Call) -> dict[str, str]:
        """Authorization, a fresh DPoP proof (new jti on every attempt) and idempotency."""
        headers: dict[str, str] = {"Accept": "application/json"}
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.content_type:
            headers["Content-Type"] = call.content_type
        if call.content_length is not None:
            # Announced up front so the gateway can refuse an oversized document early.
            headers["Content-Length"] = str(call.content_length)
        token = self.tokens.access_token if call.auth else None
        if self.key is not None and (token is not None or call.path == TOKEN_PATH):
            headers["DPoP"] = jose.dpop_proof(
                self.key,
                method=call.method,
                url=self.public_url + call.path,
                access_token=token,
                nonce=self.dpop_nonce,
            )
        if token is not None:
            headers["Authorization"] = f"DPoP {token}"
        return headers

    def remember_nonce(self, headers: Mapping[str, str]) -> bool:
        """Keep the server's latest ``DPoP-Nonce``; True when it changed."""
        nonce = headers.get("dpop-nonce")
        if nonce and nonce != self.dpop_nonce:
            self.dpop_nonce = nonce
            return True
        return False

    def login_call(self, nonce: str) -> Call:
        key, official = self.require_login_material()
        assertion = jose.login_assertion(
            key, official_id=official, token_url=self.public_url + TOKEN_PATH, nonce=nonce
        )
        return Call(
            "POST",
            TOKEN_PATH,
            form={"grant_type": jose.JWT_BEARER, "assertion": assertion},
            auth=False,
        )

    def refresh_call(self) -> Call | None:
        if self.tokens.refresh_token is None or self.key is None:
            return None
        return Call(
            "POST",
            TOKEN_PATH,
            form={"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token},
            auth=False,
        )


def transport_retry_delay(
    core: Core, call: Call, attempt: int, *, maybe_sent: bool
) -> float | None:
    """Seconds to wait before sending *call* again after a network error, or None.

    A request that never left (connection refused, reset or timed out while connecting) is
    always sent again; one that may have reached the gateway only when it is retry-safe.
    """
    if attempt + 1 >= core.retry.attempts or (maybe_sent and not call.retry_safe):
        return None
    return core.retry.delay(attempt)


def status_retry_delay(
    core: Core, call: Call, attempt: int, status: int, headers: Mapping[str, str]
) -> float | None:
    """Seconds to wait before sending *call* again after a 429/502/503/504, or None."""
    if status not in RETRY_STATUSES or not call.retry_safe:
        return None
    if attempt + 1 >= core.retry.attempts:
        return None
    retry_after = retry_after_seconds(headers)
    if retry_after is not None and retry_after > core.retry.max_retry_after:
        return None
    return core.retry.delay(attempt, retry_after)


def transport_failure(
    call: Call, attempt: int, exc: Exception, *, maybe_sent: bool
) -> SealhubError:
    """The error for a request that got no HTTP answer (after its last try)."""
    if is_tls_failure(exc):
        return TransportError(
            "TLS verification of the gateway failed: is the CA file the platform's?",
            code="tls_verification_failed",
        )
    cause = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if maybe_sent and not call.retry_safe:
        return TransportError(
            f"{cause}; the connection broke after {call.method} {call.path} was sent, so it "
            "may have taken effect: not retried, as it carries no Idempotency-Key"
        )
    tries = attempt + 1
    return TransportError(
        f"no answer from the gateway after {tries} attempt{'s' if tries > 1 else ''}: {cause}"
    )


def own_receipt(stored: Receipt, signature: str) -> Receipt | None:
    """*stored* when the gateway's countersignature wraps exactly *signature*, else None.

    After a lost answer, the retry of a 签收 or 退回 meets a delivery already decided;
    when it was decided by this very signature (a fresh ``jti`` each time), that is ours.
    """
    try:
        _, claims, _, _ = jose.read_unverified(stored.countersigned)
    except (SealhubError, ValueError):
        return None
    if not any(claims.get(name) == signature for name in ("receipt", "signature")):
        return None
    index = claims.get("audit_index")
    return replace(stored, audit_index=index if isinstance(index, int) else stored.audit_index)


def is_tls_failure(exc: BaseException) -> bool:
    text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}"
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


def should_refresh(error: SealhubError, call: Call, core: Core) -> bool:
    return (
        error.code == "invalid_token"
        and call.auth
        and call.path != TOKEN_PATH
        and core.tokens.refresh_token is not None
    )


def multipart_parts(meta: Mapping[str, Any] | None, filename: str) -> tuple[str, bytes, bytes]:
    """(content type, bytes before the file, bytes after it): part ``meta`` (when given),
    then part ``file``."""
    boundary = "sealhub-" + uuid.uuid4().hex
    safe_name = "".join(c for c in filename if c.isascii() and c not in '"\\\r\n') or "document.pdf"
    head = b""
    if meta is not None:
        head += (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="meta"\r\n'
            "Content-Type: application/json; charset=utf-8\r\n\r\n"
        ).encode("ascii")
        head += json.dumps(dict(meta), ensure_ascii=False).encode("utf-8") + b"\r\n"
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode("ascii")
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return f"multipart/form-data; boundary={boundary}", head, tail


def finish_download(
    partial: Path, target: Path, sha256: str, size: int, expected: str | None
) -> Download:
    """Rename a complete download into place, or delete it when its SHA-256 is wrong."""
    if expected is not None and expected.lower() != sha256:
        partial.unlink(missing_ok=True)
        raise VerificationError(
            "the downloaded bytes do not match the expected SHA-256", code="content_mismatch"
        )
    os.replace(partial, target)
    return Download(str(target), sha256, size)
