"""The one renderer: an error's code gives the status, its headers and extra members reach
the response, an error of a package not yet on the base still counts by its code string,
and anything else is a bug (500). In process, behind the gateway's ``observe`` middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.http.metrics import Metrics
from gateway.http.middleware import METRICS, observe
from gateway.sealing.verifier import RETRY_BUSY_SECONDS, VerifyBusy
from keys.codes import Code, CodedError
from seals.errors import CertificationForbids
from storage.idempotency import IdempotencyConflict


class Busy(CodedError):
    code = Code.VERIFY_BUSY


class NotOnTheBase(Exception):
    code = "seal_revoked"


RAISED: dict[str, Callable[[], Exception]] = {
    "headers": lambda: Busy("come back", headers={"Retry-After": "9"}, extra={"slots": 4}),
    "verify": lambda: VerifyBusy("every verification slot is taken"),
    "seal": lambda: CertificationForbids("the certification forbids /srv/data/x.pdf"),
    "default": IdempotencyConflict,
    "legacy": lambda: NotOnTheBase("revoked"),
    "bug": lambda: KeyError("oops"),
}


async def _raise(request: web.Request) -> web.Response:
    raise RAISED[request.match_info["what"]]()


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[observe])
    app[METRICS] = Metrics()
    app.router.add_get("/raise/{what}", _raise)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("what", "status", "code", "detail"),
    [
        ("headers", 503, "verify_busy", "come back"),
        ("verify", 503, "verify_busy", "every verification slot is taken"),
        ("seal", 422, "certification_forbids_seal", "the certification forbids <path>"),
        ("default", 409, "idempotency_conflict", IdempotencyConflict.default_detail),
        ("legacy", 409, "seal_revoked", "revoked"),
    ],
)
async def test_a_coded_error_is_answered_with_its_codes_status(
    client: TestClient[web.Request, web.Application],
    what: str,
    status: int,
    code: str,
    detail: str,
) -> None:
    response = await client.get(f"/raise/{what}")
    assert response.status == status == Code.of(code).status
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert (body["code"], body["status"], body["detail"]) == (code, status, detail)
    assert body["type"].endswith("/" + code)


async def test_headers_and_extra_members_reach_the_response(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/raise/headers")
    assert response.headers["Retry-After"] == "9"
    assert (await response.json())["slots"] == 4
    verify = await client.get("/raise/verify")
    assert verify.headers["Retry-After"] == str(RETRY_BUSY_SECONDS)


async def test_an_error_without_a_code_is_a_bug(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/raise/bug")
    assert response.status == 500
    body = await response.json()
    assert body["code"] == "internal_error" and "oops" not in body["detail"]


def test_a_code_given_as_its_string_becomes_the_member_and_a_typo_fails_at_once() -> None:
    class Spelled(CodedError):
        code = "seal_revoked"

    assert Spelled.code is Code.SEAL_REVOKED and Spelled("x").status == 409
    with pytest.raises(ValueError, match="no_such_code"):

        class Typo(CodedError):
            code = "no_such_code"
