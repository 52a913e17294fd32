"""Officials over HTTPS: who may create, revoke, disable and transfer; department isolation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.conftest import audit_events, problem, sql
from tests.conftest import Gateway, Session, login_as, new_session

A, B = "yl-jyj", "yl-gaj"


@pytest.fixture(scope="module")
def admin_a(gateway: Gateway) -> Iterator[Session]:
    with login_as(gateway, A, ["dept_admin"]) as session:
        yield session


@pytest.fixture(scope="module")
def admin_b(gateway: Gateway) -> Iterator[Session]:
    with login_as(gateway, B, ["dept_admin"]) as session:
        yield session


@pytest.fixture
def clerk_b(gateway: Gateway) -> Iterator[Session]:
    with login_as(gateway, B, ["clerk"]) as session:
        yield session


def test_department_a_cannot_touch_department_b_officials(
    gateway: Gateway, admin_a: Session, clerk_b: Session
) -> None:
    """Every officials route, with A's dept_admin token on B's official: 404, audited."""
    target = clerk_b.official_id
    attempts = [
        admin_a.get(f"/v1/officials/{target}/keys"),
        admin_a.delete(f"/v1/officials/{target}/keys/{clerk_b.kid}"),
        admin_a.post(f"/v1/officials/{target}/disable"),
        admin_a.post(f"/v1/officials/{target}/transfer", json={"department": A}),
        admin_a.post(f"/v1/officials/{target}/enrollment-code"),
        admin_a.post("/v1/officials", json={"name": "x", "department": B, "roles": ["clerk"]}),
    ]
    for response in attempts:
        problem(response, 404, "not_found")
    # Nothing happened to B's official, and an unknown id looks exactly the same.
    assert clerk_b.get("/v1/me").status_code == 200
    problem(
        admin_a.get("/v1/officials/00000000-0000-4000-8000-000000000000/keys"), 404, "not_found"
    )
    denied = [
        e for e in audit_events(gateway, "access.denied") if e.get("reason") == "other_department"
    ]
    assert denied  # aggregated per official and minute; the counter holds every refusal
    counted = sql(
        gateway,
        "SELECT sum(count) AS n FROM denied_access_counts WHERE official = $1",
        admin_a.official_id,
    )
    assert counted[0]["n"] >= 6


def test_missing_role_in_own_department_is_403(
    gateway: Gateway, admin_b: Session, clerk_b: Session
) -> None:
    colleague = login_as(gateway, B, ["clerk"])
    try:
        problem(clerk_b.post(f"/v1/officials/{colleague.official_id}/disable"), 403, "forbidden")
        problem(
            clerk_b.get(f"/v1/officials/{colleague.official_id}/keys"),
            403,
            "forbidden",
        )
        problem(
            clerk_b.post("/v1/officials", json={"name": "x", "department": B, "roles": ["clerk"]}),
            403,
            "forbidden",
        )
        # A dept_admin may not grant admin-only roles.
        for role in ("admin", "dept_admin", "inspector"):
            problem(
                admin_b.post("/v1/officials", json={"name": "x", "department": B, "roles": [role]}),
                403,
                "forbidden",
            )
    finally:
        colleague.close()


def test_dept_admin_creates_an_official_who_enrolls_two_devices(
    gateway: Gateway, admin_b: Session
) -> None:
    # A leader's code takes two managers: B's dept_admin asks, a second dept_admin approves.
    asked = admin_b.post(
        "/v1/officials", json={"name": "王科长", "department": B, "roles": ["leader", "clerk"]}
    )
    assert asked.status_code == 202, asked.text
    with login_as(gateway, B, ["dept_admin"]) as second_admin:
        created = second_admin.post(
            f"/v1/official-requests/{asked.json()['request']['id']}/approve"
        )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["roles"] == ["clerk", "leader"] and body["department"] == B
    laptop = new_session(gateway, body["id"])
    assert laptop.enroll(body["enrollment_code"]).status_code == 201
    assert laptop.login().status_code == 200
    # The second device's code: asked by the official itself, signed with the laptop's key
    # (a manager alone may no longer re-key an official that has a working key).
    second = laptop.post(f"/v1/officials/{body['id']}/enrollment-code")
    assert second.status_code == 201, second.text
    phone = new_session(gateway, body["id"])
    assert phone.enroll(second.json()["enrollment_code"]).status_code == 201
    assert phone.login().status_code == 200
    keys = laptop.get(f"/v1/officials/{body['id']}/keys").json()["items"]
    assert {k["kid"] for k in keys} == {laptop.kid, phone.kid}
    # Revoking the phone leaves the laptop working.
    assert laptop.delete(f"/v1/officials/{body['id']}/keys/{phone.kid}").status_code == 200
    problem(phone.get("/v1/me"), 401, "invalid_token", "key_revoked")
    assert laptop.get("/v1/me").status_code == 200
    assert len(audit_events(gateway, "key.enrolled")) >= 2
    laptop.close()
    phone.close()


def test_disable_ends_every_session_at_once(
    gateway: Gateway, admin_b: Session, clerk_b: Session
) -> None:
    refresh_token = clerk_b.refresh_token
    disabled = admin_b.post(f"/v1/officials/{clerk_b.official_id}/disable")
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    problem(clerk_b.get("/v1/me"), 401, "invalid_token", "official_disabled")
    problem(clerk_b.refresh(refresh_token), 401, "invalid_grant")
    problem(clerk_b.login(), 403, "official_disabled")
    assert any(
        e["official"] == clerk_b.official_id for e in audit_events(gateway, "official.disabled")
    )


def test_transfer_is_accepted_by_the_receiving_side_and_ends_sessions(
    gateway: Gateway, admin_a: Session, admin_b: Session
) -> None:
    mover = login_as(gateway, B, ["seal_keeper", "clerk"])
    try:
        old_refresh = mover.refresh_token
        # The releasing side may not grant roles in the receiving department.
        problem(
            admin_b.post(
                f"/v1/officials/{mover.official_id}/transfer",
                json={"department": A, "roles": ["leader"]},
            ),
            403,
            "forbidden",
        )
        problem(
            admin_b.post(
                f"/v1/officials/{mover.official_id}/transfer", json={"department": "no-such-unit"}
            ),
            422,
            "department_unknown",
        )
        proposed = admin_b.post(
            f"/v1/officials/{mover.official_id}/transfer", json={"department": A}
        )
        assert proposed.status_code == 202, proposed.text
        request_id = proposed.json()["request"]["id"]
        # Until A accepts, nothing moved.
        assert mover.get("/v1/me").json()["department"] == B
        moved = admin_a.post(f"/v1/official-requests/{request_id}/approve")
        assert moved.status_code == 200, moved.text
        assert moved.json()["department"] == A and moved.json()["roles"] == ["clerk"]
        # Keys and refresh families ended: the official enrolls anew in A.
        problem(mover.get("/v1/me"), 401, "invalid_token", "key_revoked")
        problem(mover.refresh(old_refresh), 401, "invalid_grant")
        problem(mover.login(), 401, "invalid_assertion", "key_revoked")
        code = admin_a.post(f"/v1/officials/{mover.official_id}/enrollment-code")
        assert code.status_code == 201, code.text
        again = new_session(gateway, mover.official_id)
        assert again.enroll(code.json()["enrollment_code"]).status_code == 201
        assert again.login().status_code == 200
        me = again.get("/v1/me").json()
        assert me["department"] == A and me["roles"] == ["clerk"]
        again.close()
        # Now in A: B's dept_admin no longer sees the official.
        problem(admin_b.get(f"/v1/officials/{mover.official_id}/keys"), 404, "not_found")
    finally:
        mover.close()


def test_privileged_roles_do_not_travel_with_a_transfer(gateway: Gateway) -> None:
    admin = login_as(gateway, "yl", ["admin"])
    boss = login_as(gateway, B, ["dept_admin", "leader"])
    try:
        moved = admin.post(f"/v1/officials/{boss.official_id}/transfer", json={"department": A})
        assert moved.status_code == 200, moved.text
        assert moved.json()["roles"] == []
        # The old token and key are gone with the move.
        problem(boss.get("/v1/me"), 401, "invalid_token", "key_revoked")
        problem(boss.login(), 401, "invalid_assertion", "key_revoked")
        asked = admin.post(
            "/v1/officials", json={"name": "督察", "department": B, "roles": ["inspector"]}
        )
        assert asked.status_code == 202, asked.text
        with login_as(gateway, "yl", ["admin"]) as second:
            created = second.post(f"/v1/official-requests/{asked.json()['request']['id']}/approve")
        assert created.status_code == 201, created.text
        rows = sql(gateway, "SELECT roles FROM officials WHERE id = $1", created.json()["id"])
        assert list(rows[0]["roles"]) == ["inspector"]
    finally:
        admin.close()
        boss.close()


def test_dept_admin_cannot_manage_a_dept_admin(gateway: Gateway, admin_b: Session) -> None:
    peer = login_as(gateway, B, ["dept_admin"])
    try:
        problem(admin_b.post(f"/v1/officials/{peer.official_id}/disable"), 403, "forbidden")
        problem(
            admin_b.delete(f"/v1/officials/{peer.official_id}/keys/{peer.kid}"), 403, "forbidden"
        )
    finally:
        peer.close()
