"""The authorization matrix, generated from the route table: every route called over HTTPS
by every caller kind against real objects of department A, and compared with the outcome
declared in ``expectations.py``. A route without a declaration fails here."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from gateway.routes import routes
from tests.conftest import login_as, new_session
from tests.exchange.conftest import meta_for, send
from tests.security.conftest import CALLERS, DEPT_A, DEPT_B, DEPT_C, World, doc_number
from tests.security.expectations import EXPECTATIONS, Expectation, Outcome

ROUTES = sorted({(route.method, route.path) for route in routes.routes})
VALIDATION = {400, 413, 415, 422}


def outcome_of(status: int) -> Outcome | None:
    if 200 <= status < 300:
        return "2xx"
    if 300 <= status < 400:
        return "3xx"
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
        elif got not in ("2xx", "3xx") and not expectation.stream:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert not wrong, f"{method} {path}\n" + "\n".join(wrong)


# --- what a moved or re-keyed official can do (issue 16) ------------------------------------


def test_moved_official_keeps_no_key_no_role_and_no_reach_into_its_old_department(
    world: World,
) -> None:
    """A seal_keeper of A moved to B by an admin: old token, refresh token and key refused;
    in B it is a clerk only until B grants more, and A's objects are 404 to it."""
    gateway = world.gateway
    mover = login_as(gateway, DEPT_A, ["seal_keeper", "clerk"], name="调动者")
    old_refresh = mover.refresh_token
    moved = world.sessions["admin"].post(
        f"/v1/officials/{mover.official_id}/transfer", json={"department": DEPT_B}
    )
    assert moved.status_code == 200, moved.text
    assert mover.get("/v1/me").status_code == 401
    assert mover.refresh(old_refresh).status_code == 401
    assert mover.login().status_code == 401
    with login_as(gateway, DEPT_B, ["dept_admin"]) as b_admin:
        code = b_admin.post(f"/v1/officials/{mover.official_id}/enrollment-code")
        assert code.status_code == 201, code.text  # no key, no privileged role: one manager
    again = new_session(gateway, mover.official_id)
    assert again.enroll(code.json()["enrollment_code"]).status_code == 201
    assert again.login().status_code == 200
    me = again.get("/v1/me").json()
    assert me["department"] == DEPT_B and me["roles"] == ["clerk"]
    # No seal_keeper in B: it cannot seal and send.
    sent = send(again, meta_for([DEPT_A], doc_number()), world.pdf)
    assert sent.status_code == 403, sent.text
    # Nothing of A any more (a document of A that B does not receive, A's officials).
    only_a = send(world.sessions["seal_keeper"], meta_for([DEPT_C], doc_number()), world.pdf)
    assert only_a.status_code == 201, only_a.text
    colleague = world.params["official"]["id"]
    for response in (
        again.get(f"/v1/documents/{only_a.json()['id']}"),
        again.get(f"/v1/officials/{colleague}/keys"),
        again.post(f"/v1/officials/{colleague}/enrollment-code"),
    ):
        assert response.status_code == 404, response.text
    mover.close()
    again.close()


def test_rekeyed_official_is_alerted_and_its_department_sees_it(world: World) -> None:
    """A's dept_admin alone cannot re-key a clerk with a working key; with an admin as the
    second manager it can, and then A (and inspectors, not C) see the alert."""
    gateway = world.gateway
    victim = login_as(gateway, DEPT_A, ["clerk"], name="被换钥者")
    asked = world.sessions["dept_admin"].post(f"/v1/officials/{victim.official_id}/enrollment-code")
    assert asked.status_code == 202 and "enrollment_code" not in asked.json(), asked.text
    request_id = asked.json()["request"]["id"]
    assert (
        world.sessions["dept_admin"].post(f"/v1/official-requests/{request_id}/approve").status_code
        == 403
    )
    # C's dept_admin does not see A's request.
    assert (
        world.sessions["foreign"].post(f"/v1/official-requests/{request_id}/approve").status_code
        == 404
    )
    approved = world.sessions["admin"].post(f"/v1/official-requests/{request_id}/approve")
    assert approved.status_code == 201, approved.text
    added = new_session(gateway, victim.official_id)
    assert added.enroll(approved.json()["enrollment_code"]).status_code == 201
    subject = f"key:{added.kid}"

    def alert_subjects(caller: str) -> set[str]:
        answer = world.sessions[caller].get("/v1/supervision/alerts?rule=key_added_by_other")
        assert answer.status_code == 200, answer.text
        return {item["subject"] for item in answer.json()["items"]}

    assert subject in alert_subjects("clerk")
    assert subject in alert_subjects("inspector")
    assert subject not in alert_subjects("foreign")
    login = victim.login()
    assert login.status_code == 200, login.text
    assert [notice["kid"] for notice in login.json()["notices"]] == [added.kid]
    victim.close()
    added.close()
