"""The authorization matrix, generated from the route table: every route called over HTTPS
by every caller kind against real objects of department A, and compared with the outcome
declared in ``expectations.py``. A route without a declaration fails here."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from gateway.app import _load_handler_modules
from gateway.routes_table import routes
from tests.exchange.conftest import meta_for
from tests.security.conftest import CALLERS, DEPT_B, World, doc_number
from tests.security.expectations import EXPECTATIONS, Expectation, Outcome

_load_handler_modules()
ROUTES = sorted({(route.method, route.path) for route in routes.routes})
VALIDATION = {400, 413, 415, 422}


def outcome_of(status: int) -> Outcome | None:
    if 200 <= status < 300:
        return "2xx"
    if status in VALIDATION:
        return "4xx"
    if status in (401, 403, 404, 409):
        return str(status)  # type: ignore[return-value]
    return None


def test_every_route_declares_its_expectation() -> None:
    missing = [f"{method} {path}" for method, path in ROUTES if (method, path) not in EXPECTATIONS]
    stale = [f"{m} {p}" for m, p in EXPECTATIONS if (m, p) not in set(ROUTES)]
    assert not missing, "declare these routes in tests/security/expectations.py: " + ", ".join(
        missing
    )
    assert not stale, "these declared routes no longer exist: " + ", ".join(stale)
    for key, expectation in EXPECTATIONS.items():
        assert set(expectation.outcomes) == set(CALLERS), key


def _path_params(world: World, expectation: Expectation) -> Callable[[], dict[str, str]]:
    fresh: dict[str, Callable[[], dict[str, str]]] = {
        "document": world.send_from_a,
        "official": world.official_of_a,
        "enrolled_official": lambda: world.official_of_a(enrolled=True),
        "seal_request": world.seal_request_for_a,
    }
    if expectation.fresh:
        return fresh[expectation.resource]
    return lambda: world.params[expectation.resource]


def _body(expectation: Expectation) -> dict[str, object]:
    if expectation.body == "empty":
        return {"content": b""}
    if expectation.body == "meta_only":
        meta = json.dumps(meta_for([DEPT_B], doc_number()), ensure_ascii=False)
        return {"files": {"meta": (None, meta, "application/json")}}
    return {}


def _call(world: World, caller: str, method: str, path: str, ex: Expectation) -> httpx.Response:
    url = path + (f"?{ex.query}" if ex.query else "")
    kwargs = _body(ex)
    if caller == "anonymous":
        client = world.gateway.client()
        headers: dict[str, str] = {}
    else:
        session = world.sessions[caller]
        client = session.client
        headers = session.headers(method, path)
    try:
        if ex.stream:
            with client.stream(method, url, headers=headers, **kwargs) as response:  # type: ignore[arg-type]
                return response
        return client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
    finally:
        if caller == "anonymous":
            client.close()


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_answers_each_caller_as_declared(world: World, method: str, path: str) -> None:
    expectation = EXPECTATIONS.get((method, path))
    if expectation is None:
        pytest.fail(f"{method} {path} has no declared expectation")
    params = _path_params(world, expectation)
    wrong: list[str] = []
    for caller in CALLERS:
        concrete = path.format(**params())
        response = _call(world, caller, method, concrete, expectation)
        got = outcome_of(response.status_code)
        wanted = expectation.outcomes[caller]
        if got != wanted:
            detail = "" if expectation.stream else response.text[:200]
            wrong.append(f"{caller}: wanted {wanted}, got {response.status_code} {detail}")
        elif got != "2xx" and not expectation.stream:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert not wrong, f"{method} {path}\n" + "\n".join(wrong)
