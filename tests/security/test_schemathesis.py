"""schemathesis against the running gateway's ``/openapi.json``, with authenticated requests.

Every operation is fuzzed with schema-conforming (positive) and schema-violating (negative)
requests, each signed with a fresh DPoP proof by an official holding every role, and every
answer must: not be a 5xx, match the documented status codes, content types and schemas,
and be ``application/problem+json`` with the documented fields whenever it is an error.

CI runs a short deterministic pass (``derandomize``: the same examples every run). The long
run draws many more, randomly seeded examples::

    SEALHUB_LONG_FUZZ=1 .venv/bin/pytest tests/security

(``SEALHUB_FUZZ_EXAMPLES`` overrides the number of examples per operation and mode.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.routes import routes
from tests.conftest import Gateway, Session, login_as
from tests.security.conftest import DEPT_A

LONG = os.environ.get("SEALHUB_LONG_FUZZ") == "1"
EXAMPLES = int(os.environ.get("SEALHUB_FUZZ_EXAMPLES", "300" if LONG else "6"))
TOKEN_REFRESH_SECONDS = 600
# Endless or deliberately slow answers: the stream never ends; long-polls are cut to 1 s.
NOT_FUZZED = {("GET", "/v1/inbox/events")}
MAX_WAIT = 1
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

# Raw uploads (a PDF, an RFC 3161 query) are fuzzed as arbitrary bytes.
schemathesis.serializer.alias(
    ["application/pdf", "application/timestamp-query"], "application/octet-stream"
)
OPERATIONS = sorted(
    {(r.method, r.path) for r in routes.routes if (r.method, r.path) not in NOT_FUZZED}
)
EVERY_ROLE = ["admin", "dept_admin", "clerk", "leader", "seal_keeper", "inspector", "system"]


class DpopAuth(requests.auth.AuthBase):
    """Signs the final, percent-encoded request target, exactly what the gateway checks."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.logged_in_at = time.monotonic()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if time.monotonic() - self.logged_in_at > TOKEN_REFRESH_SECONDS:
            self._refresh()
        assert request.url is not None and request.method is not None
        path = urlsplit(request.url).path
        request.headers.update(self.session.headers(request.method, path))
        return request

    def _refresh(self) -> None:
        """Long runs outlive the 15-minute token; the fuzzed login endpoints may rate-limit."""
        for _ in range(30):
            if self.session.refresh().status_code == 200:
                self.logged_in_at = time.monotonic()
                return
            time.sleep(5)
        raise AssertionError("could not refresh the fuzzing session's token")


def problem_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]) -> bool:
    """Every error is RFC 9457 problem+json carrying its own status and a snake_case code."""
    if response.status_code < 400:
        return True
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}"
    )
    body = response.json()
    assert isinstance(body, dict)
    missing = {"type", "title", "status", "detail", "code"} - set(body)
    assert not missing, f"problem without {sorted(missing)}"
    assert body["status"] == response.status_code
    return True


@dataclass(frozen=True)
class Fuzzing:
    schema: schemathesis.BaseSchema
    http: requests.Session
    base_url: str
    ca_file: str


@pytest.fixture(scope="module")
def api(gateway: Gateway) -> Iterator[Fuzzing]:
    with gateway.client() as client:
        document = client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    official = login_as(gateway, DEPT_A, EVERY_ROLE, name="模糊测试员")
    http = requests.Session()
    http.verify = str(gateway.ca_path)
    http.auth = DpopAuth(official)
    try:
        yield Fuzzing(schema, http, gateway.base_url, str(gateway.ca_path))
    finally:
        http.close()
        official.close()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_survives_fuzzing(
    api: Fuzzing,
    method: str,
    path: str,
    mode: schemathesis.GenerationMode,
) -> None:
    operation = api.schema[path][method]

    @settings(
        max_examples=EXAMPLES,
        derandomize=not LONG,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: schemathesis.Case[Any]) -> None:
        if case.query and "wait" in case.query:
            case.query["wait"] = MAX_WAIT
        response = case.call(
            base_url=api.base_url, session=api.http, verify=api.ca_file, timeout=30
        )
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
                problem_json,
            ],
        )

    try:
        exercise()
    except Unsatisfiable:
        pytest.skip("the operation has no parameter or body that could be made invalid")
