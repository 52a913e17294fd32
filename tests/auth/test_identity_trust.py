"""Issue 16 over HTTPS against the real gateway: nobody seals as another department or signs
as another person. Each test performs the attack of the issue and checks it is refused.

- Planting: a 教育局 dept_admin makes a seal_keeper, enrolls its key, moves it to 公安局.
- Re-keying: a manager issues a code for someone who has a working key (an admin, a leader),
  holds the new key and acts in the victim's name, e.g. approves its own seal request.
"""

from __future__ import annotations

import time
from typing import Any

from tests.auth.conftest import problem
from tests.conftest import Gateway, Session, create_official_in_db, login_as
from tests.identity_support import (
    GAJ,
    JYJ,
    KJJ,
    PLATFORM,
    enroll_with_code,
    pending_request_id,
)


def _entries(session: Session, event_type: str, official: str, at_least: int = 1) -> list[Any]:
    """Audit entries of *event_type* about *official* in the caller's own audit view (the
    sequencer gives them their index within moments)."""
    deadline = time.monotonic() + 30
    while True:
        answer = session.get(f"/v1/audit/entries?type={event_type}&limit=200")
        assert answer.status_code == 200, answer.text
        found = [
            e
            for e in answer.json()["items"]
            if (e.get("details") or {}).get("official") == official
        ]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


# --- 1. planting an official in another department ------------------------------------------


def test_dept_admin_cannot_plant_a_seal_keeper_in_another_department(
    gateway: Gateway,
    admins: tuple[Session, Session],
    jyj_admin: Session,
    gaj_admin: Session,
) -> None:
    """The attack of the issue, step by step: only the proposal happens; 公安局 decides."""
    # Step 1 no longer hands the dept_admin a seal_keeper's code on its own...
    created = jyj_admin.post(
        "/v1/officials", json={"name": "潜伏者", "department": JYJ, "roles": ["seal_keeper"]}
    )
    pending_request_id(created)
    # ...so say it holds one anyway (an accomplice): the move is still only a proposal.
    plant = login_as(gateway, JYJ, ["seal_keeper"], name="潜伏者")
    moved = jyj_admin.post(f"/v1/officials/{plant.official_id}/transfer", json={"department": GAJ})
    request_id = pending_request_id(moved)
    # Still in 教育局: a new login is 教育局's, and 公安局's seal is out of reach.
    assert plant.login().status_code == 200
    me = plant.get("/v1/me").json()
    assert me["department"] == JYJ, me
    # 教育局 cannot accept its own proposal; a third department does not even see it.
    problem(jyj_admin.post(f"/v1/official-requests/{request_id}/approve"), 403, "forbidden")
    with login_as(gateway, KJJ, ["dept_admin"]) as stranger:
        problem(stranger.post(f"/v1/official-requests/{request_id}/approve"), 404, "not_found")
    # The proposal is in both departments' audit views, and 公安局 sees it in its list.
    assert _entries(jyj_admin, "official_request.opened", plant.official_id)
    assert _entries(gaj_admin, "official_request.opened", plant.official_id)
    listed = gaj_admin.get("/v1/official-requests?status=pending").json()["items"]
    assert request_id in {item["id"] for item in listed}
    # 公安局 declines: nothing moved.
    declined = gaj_admin.post(f"/v1/official-requests/{request_id}/decline")
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    problem(gaj_admin.post(f"/v1/official-requests/{request_id}/approve"), 409, "request_decided")
    assert plant.get("/v1/me").json()["department"] == JYJ
    plant.close()


def test_an_accepted_transfer_ends_keys_and_roles_and_is_seen_by_both_sides(
    gateway: Gateway,
    admins: tuple[Session, Session],
    jyj_admin: Session,
    gaj_admin: Session,
) -> None:
    mover = login_as(gateway, JYJ, ["seal_keeper", "clerk", "leader"], name="调动者")
    old_refresh = mover.refresh_token
    request_id = pending_request_id(
        jyj_admin.post(f"/v1/officials/{mover.official_id}/transfer", json={"department": GAJ})
    )
    # A code 教育局 asked for before the move must not survive it either.
    code_request = pending_request_id(
        jyj_admin.post(f"/v1/officials/{mover.official_id}/enrollment-code")
    )
    accepted = gaj_admin.post(f"/v1/official-requests/{request_id}/approve")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["department"] == GAJ and accepted.json()["roles"] == ["clerk"]
    problem(mover.get("/v1/me"), 401, "invalid_token", "key_revoked")
    problem(mover.refresh(old_refresh), 401, "invalid_grant")
    problem(mover.login(), 401, "invalid_assertion", "key_revoked")
    keys = gaj_admin.get(f"/v1/officials/{mover.official_id}/keys").json()["items"]
    assert keys and all(key["status"] == "revoked" for key in keys)
    problem(admins[0].post(f"/v1/official-requests/{code_request}/approve"), 409, "request_decided")
    # 教育局 has lost it; 公安局 has it.
    problem(jyj_admin.post(f"/v1/officials/{mover.official_id}/enrollment-code"), 404, "not_found")
    for side in (jyj_admin, gaj_admin):
        (event,) = [
            e
            for e in _entries(side, "official.transferred", mover.official_id)
            if e["department"] == side.get("/v1/me").json()["department"]
        ]
        assert event["actor"]["official"] == gaj_admin.official_id
        assert event["details"]["proposed_by"] == jyj_admin.official_id
        assert event["details"]["roles_after"] == ["clerk"]
    mover.close()


def test_receiving_side_grants_roles_and_a_seal_keeper_code_takes_two_managers(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session, gaj_admin: Session
) -> None:
    mover = login_as(gateway, JYJ, ["seal_keeper"], name="调任用印员")
    request_id = pending_request_id(
        jyj_admin.post(f"/v1/officials/{mover.official_id}/transfer", json={"department": GAJ})
    )
    # The receiving dept_admin may grant what a dept_admin grants, never admin.
    problem(
        gaj_admin.post(f"/v1/official-requests/{request_id}/approve", json={"roles": ["admin"]}),
        403,
        "forbidden",
    )
    accepted = gaj_admin.post(
        f"/v1/official-requests/{request_id}/approve", json={"roles": ["seal_keeper"]}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["roles"] == ["seal_keeper"]
    # No key and a seal_keeper: one manager's code is not enough.
    code_request = pending_request_id(
        gaj_admin.post(f"/v1/officials/{mover.official_id}/enrollment-code")
    )
    problem(gaj_admin.post(f"/v1/official-requests/{code_request}/approve"), 403, "same_person")
    approved = admins[0].post(f"/v1/official-requests/{code_request}/approve")
    assert approved.status_code == 201, approved.text
    again = enroll_with_code(
        gateway, mover.official_id, approved.json()["enrollment_code"], login=False
    )
    assert again.login().status_code == 200
    assert again.get("/v1/me").json()["department"] == GAJ
    keys = gaj_admin.get(f"/v1/officials/{mover.official_id}/keys").json()["items"]
    (fresh,) = [key for key in keys if key["kid"] == again.kid]
    assert fresh["code_issued_by"] == admins[0].official_id
    assert fresh["code_cosigned_by"] == gaj_admin.official_id
    again.close()
    mover.close()


def test_an_admin_transfer_is_immediate_but_keys_and_roles_do_not_travel(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    mover = login_as(gateway, JYJ, ["seal_keeper", "clerk"])
    problem(
        admins[0].post(
            f"/v1/officials/{mover.official_id}/transfer",
            json={"department": GAJ, "roles": ["admin"]},
        ),
        403,
        "forbidden",
    )
    moved = admins[0].post(f"/v1/officials/{mover.official_id}/transfer", json={"department": GAJ})
    assert moved.status_code == 200, moved.text
    assert moved.json()["roles"] == ["clerk"]
    problem(mover.get("/v1/me"), 401, "invalid_token", "key_revoked")
    mover.close()


# --- 2. re-keying other people ----------------------------------------------------------------


def test_issuing_a_code_is_audited_with_the_real_actor(
    gateway: Gateway, jyj_admin: Session
) -> None:
    official, _ = create_official_in_db(gateway.database_url, JYJ, ["clerk"], "新科员")
    issued = jyj_admin.post(f"/v1/officials/{official}/enrollment-code")
    assert issued.status_code == 201, issued.text  # no key yet, no privileged role: one manager
    (event,) = _entries(jyj_admin, "enrollment_code.issued", official)
    assert event["actor"]["official"] == jyj_admin.official_id
    assert event["actor"]["jkt"] == jyj_admin.kid
    device = enroll_with_code(gateway, official, issued.json()["enrollment_code"], login=False)
    (key,) = jyj_admin.get(f"/v1/officials/{official}/keys").json()["items"]
    assert key["code_issued_by"] == jyj_admin.official_id
    (enrolled,) = _entries(jyj_admin, "key.enrolled", official)
    assert enrolled["actor"]["official"] == jyj_admin.official_id
    assert enrolled["details"]["code_issued_by"] == jyj_admin.official_id
    device.close()


def test_dept_admin_cannot_take_over_its_leaders_key(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    """A dept_admin asks for its leader's code: a request, not a code; it cannot approve it
    itself, and the leader's own key keeps working. Two managers: the approver gets the code,
    the department sees an alert and the leader hears of it at its next login."""
    leader = login_as(gateway, JYJ, ["leader"], name="局长")
    request_id = pending_request_id(
        jyj_admin.post(f"/v1/officials/{leader.official_id}/enrollment-code")
    )
    problem(jyj_admin.post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    problem(leader.post(f"/v1/official-requests/{request_id}/approve"), 403, "forbidden")
    assert leader.get("/v1/me").status_code == 200
    approved = admins[1].post(f"/v1/official-requests/{request_id}/approve")
    assert approved.status_code == 201, approved.text
    added = enroll_with_code(
        gateway, leader.official_id, approved.json()["enrollment_code"], login=False
    )
    # The department sees an alert about the key someone else added.
    with login_as(gateway, JYJ, ["clerk"]) as colleague:
        alerts = colleague.get("/v1/supervision/alerts?rule=key_added_by_other").json()["items"]
    (alert,) = [a for a in alerts if a["subject"] == f"key:{added.kid}"]
    assert alert["department"] == JYJ
    assert alert["details"]["official"] == leader.official_id
    assert alert["details"]["code_issued_by"] == admins[1].official_id
    # The leader, logging in with its own key, is told once.
    login = leader.login()
    assert login.status_code == 200, login.text
    (notice,) = login.json()["notices"]
    assert notice["kid"] == added.kid and notice["type"] == "key_added_by_other"
    again = leader.login()
    assert again.json()["notices"] == []
    added.close()
    leader.close()


def test_official_asks_its_own_code_with_its_key(gateway: Gateway) -> None:
    with login_as(gateway, JYJ, ["seal_keeper"]) as keeper:
        issued = keeper.post(f"/v1/officials/{keeper.official_id}/enrollment-code")
        assert issued.status_code == 201, issued.text
        phone = enroll_with_code(
            gateway, keeper.official_id, issued.json()["enrollment_code"], login=False
        )
        assert phone.login().status_code == 200
        assert keeper.login().json()["notices"] == []  # its own act: nothing to warn about
        phone.close()


def test_one_admin_cannot_rekey_another_and_approve_its_own_seal_request(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    first, second = admins
    # Today's attack: the first admin re-keys the second and approves its own request.
    request_id = pending_request_id(
        first.post(f"/v1/officials/{second.official_id}/enrollment-code")
    )
    problem(first.post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    problem(second.post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    assert second.get("/v1/me").status_code == 200


def test_two_admin_rule_counts_people_not_ids(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    """A third admin approves a code for the second admin and so may hold its new key: that
    key can then not approve what the third or the first admin requested."""
    first, second = admins
    with login_as(gateway, PLATFORM, ["admin"], name="管理员丙") as third:
        request_id = pending_request_id(
            first.post(f"/v1/officials/{second.official_id}/enrollment-code")
        )
        approved = third.post(f"/v1/official-requests/{request_id}/approve")
        assert approved.status_code == 201, approved.text
        held = enroll_with_code(
            gateway, second.official_id, approved.json()["enrollment_code"], login=False
        )
        assert held.login().status_code == 200
        for requester in (third, first):
            made = requester.post(
                f"/v1/departments/{KJJ}/seal-requests", json={"purpose": "公文专用章"}
            )
            assert made.status_code == 201, made.text
            problem(held.post(f"/v1/seal-requests/{made.json()['id']}/approve"), 403, "same_person")
            # The second admin's own key is another person's: it may approve.
            assert second.post(f"/v1/seal-requests/{made.json()['id']}/approve").status_code == 201
        # The other way round: requested with the held key, approved by its code's issuer.
        made = held.post(f"/v1/departments/{KJJ}/seal-requests", json={"purpose": "合同专用章"})
        assert made.status_code == 201, made.text
        problem(third.post(f"/v1/seal-requests/{made.json()['id']}/approve"), 403, "same_person")
        held.close()


def test_dept_admin_cannot_create_a_leader_and_keep_its_code(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    asked = jyj_admin.post(
        "/v1/officials", json={"name": "假局长", "department": JYJ, "roles": ["leader"]}
    )
    request_id = pending_request_id(asked)
    problem(jyj_admin.post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    created = admins[0].post(f"/v1/official-requests/{request_id}/approve")
    assert created.status_code == 201, created.text
    assert created.json()["department"] == JYJ and created.json()["roles"] == ["leader"]
    leader = enroll_with_code(
        gateway, created.json()["id"], created.json()["enrollment_code"], login=False
    )
    (key,) = jyj_admin.get(f"/v1/officials/{leader.official_id}/keys").json()["items"]
    assert key["code_issued_by"] == admins[0].official_id
    assert key["code_cosigned_by"] == jyj_admin.official_id
    leader.close()


def test_creating_an_admin_takes_two_admins(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    first, second = admins
    asked = first.post(
        "/v1/officials", json={"name": "新管理员", "department": PLATFORM, "roles": ["admin"]}
    )
    request_id = pending_request_id(asked)
    problem(first.post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    # Not even a dept_admin of the platform department sees it.
    with login_as(gateway, PLATFORM, ["dept_admin"]) as platform_dept_admin:
        problem(
            platform_dept_admin.post(f"/v1/official-requests/{request_id}/approve"),
            404,
            "not_found",
        )
        listed = platform_dept_admin.get("/v1/official-requests").json()["items"]
        assert request_id not in {item["id"] for item in listed}
    created = second.post(f"/v1/official-requests/{request_id}/approve")
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == ["admin"]
    newcomer = enroll_with_code(
        gateway, created.json()["id"], created.json()["enrollment_code"], login=False
    )
    assert newcomer.login().status_code == 200
    assert newcomer.get("/v1/me").json()["roles"] == ["admin"]
    newcomer.close()
