"""Refusals carry their headers to the one problem+json renderer (gateway/http/middleware.py).

In process, with the gateway's two middlewares around handlers that raise what the login
and authorization code raises: the authorization middleware turns each refusal into an
``ApiError`` with its ``reason`` and headers, and ``observe`` renders it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.http.errors import ApiError
from gateway.http.metrics import Metrics
from gateway.http.middleware import METRICS, observe
from gateway.http.ratelimit import RateLimited
from gateway.identity.auth import Forbidden, authenticate
from keys.challenge import ChallengeError
from keys.jws import DpopNonceRequiredError, InvalidDpopError, InvalidTokenError
from storage.identity.errors import EnrollmentCodeInvalid, RefreshTokenReused

RAISED: dict[str, Callable[[], Exception]] = {
    "rate": lambda: RateLimited("too many token attempts; retry later", 17),
    "token": lambda: InvalidTokenError("expired", "the access token has expired"),
    "dpop": lambda: InvalidDpopError("missing", "send exactly one DPoP proof header"),
    "nonce": lambda: DpopNonceRequiredError("nonce_missing", "send the server's DPoP nonce"),
    "challenge": lambda: ChallengeError("expired", "the nonce has expired"),
    "code": lambda: EnrollmentCodeInvalid("the enrollment code is not valid"),
    "reused": lambda: RefreshTokenReused("the refresh token was already used"),
    "forbidden": lambda: Forbidden("your roles do not allow this"),
    "edge": lambda: ApiError("rate_limited", "slow down", headers={"Retry-After": "5"}),
}


async def _raise(request: web.Request) -> web.Response:
    raise RAISED[request.match_info["what"]]()


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[observe, authenticate])
    app[METRICS] = Metrics()
    app.router.add_get("/raise/{what}", _raise)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("what", "status", "code", "reason", "challenge"),
    [
        ("token", 401, "invalid_token", "expired", "invalid_token"),
        ("dpop", 401, "invalid_dpop", "missing", "invalid_dpop_proof"),
        ("nonce", 401, "use_dpop_nonce", "nonce_missing", "use_dpop_nonce"),
        ("challenge", 401, "invalid_nonce", "expired", "invalid_token"),
        ("code", 401, "enrollment_code_invalid", None, "invalid_token"),
        ("reused", 401, "refresh_token_reused", None, "invalid_token"),
    ],
)
async def test_a_401_names_its_scheme_and_failed_check(
    client: TestClient[web.Request, web.Application],
    what: str,
    status: int,
    code: str,
    reason: str | None,
    challenge: str,
) -> None:
    response = await client.get(f"/raise/{what}")
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == code and body["status"] == status
    assert body.get("reason") == reason
    assert response.headers["WWW-Authenticate"] == f'DPoP algs="ES256", error="{challenge}"'
    # Rendered by observe: the request id and security headers are there too.
    assert response.headers["X-Request-Id"]
    assert response.headers["Cache-Control"] == "no-store"


async def test_rate_limited_says_when_to_retry(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/raise/rate")
    assert response.status == 429
    assert response.headers["Retry-After"] == "17"
    assert "WWW-Authenticate" not in response.headers
    assert (await response.json())["code"] == "rate_limited"


async def test_a_403_has_no_authentication_challenge(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/raise/forbidden")
    assert response.status == 403
    assert "WWW-Authenticate" not in response.headers
    body = await response.json()
    assert body["code"] == "forbidden" and "reason" not in body


async def test_an_api_error_raised_anywhere_keeps_its_headers(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/raise/edge")
    assert response.status == 429
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["detail"] == "slow down"
