"""Red team against issue 16 items 1 and 2 (transfers, re-keying, four eyes), over HTTPS
against the real gateway. Each test is one attack; a hole still open is marked
``xfail(strict=True)`` with the reason, so it turns red the day it is closed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.auth.conftest import problem, sql
from tests.conftest import REPO, Gateway, Session, login_as
from tests.identity_support import (
    GAJ,
    JYJ,
    KJJ,
    PLATFORM,
    enroll_with_code,
    pending_request_id,
)


def _launder(gateway: Gateway, held: Session) -> Session:
    """The holder of *held* asks the official's own code with it, and enrolls one more key:
    the new key's code was 'issued by the official itself'."""
    issued = held.post(f"/v1/officials/{held.official_id}/enrollment-code")
    assert issued.status_code == 201, issued.text
    return enroll_with_code(gateway, held.official_id, issued.json()["enrollment_code"], login=True)


# --- one person, two ids ----------------------------------------------------------------------


def test_one_admin_alone_gets_a_seal_keeper_code_through_a_laundered_dept_admin(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    attacker = admins[0]
    # A dept_admin takes one admin (by design); the admin holds its code, hence its key.
    made = attacker.post(
        "/v1/officials", json={"name": "傀儡", "department": KJJ, "roles": ["dept_admin"]}
    )
    assert made.status_code == 201, made.text
    puppet = enroll_with_code(
        gateway, made.json()["id"], made.json()["enrollment_code"], login=True
    )
    # Held directly, the puppet is rightly not a second person...
    asked = attacker.post(
        "/v1/officials", json={"name": "用印员", "department": KJJ, "roles": ["seal_keeper"]}
    )
    request_id = pending_request_id(asked)
    problem(puppet.post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    # ...but after asking "its own" new code with the key the admin holds, it is.
    laundered = _launder(gateway, puppet)
    approved = laundered.post(f"/v1/official-requests/{request_id}/approve")
    assert approved.status_code == 403, approved.text  # was 201 and a seal_keeper code
    assert approved.json()["code"] == "same_person"
    puppet.close()
    laundered.close()


def test_an_admin_holding_anothers_key_launders_it_and_approves_its_own_seal(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    first, second = admins
    with login_as(gateway, PLATFORM, ["admin"], name="管理员丙") as third:
        # Four eyes as designed: the first asks a code for the second, the third approves
        # and receives it, and keeps the key for itself.
        request_id = pending_request_id(
            first.post(f"/v1/officials/{second.official_id}/enrollment-code")
        )
        approved = third.post(f"/v1/official-requests/{request_id}/approve")
        assert approved.status_code == 201, approved.text
        held = enroll_with_code(
            gateway, second.official_id, approved.json()["enrollment_code"], login=True
        )
        made = third.post(f"/v1/departments/{KJJ}/seal-requests", json={"purpose": "洗白专用章"})
        assert made.status_code == 201, made.text
        problem(held.post(f"/v1/seal-requests/{made.json()['id']}/approve"), 403, "same_person")
        laundered = _launder(gateway, held)
        sealed = laundered.post(f"/v1/seal-requests/{made.json()['id']}/approve")
        assert sealed.status_code == 403, sealed.text  # was 201: one person made a seal
        held.close()
        laundered.close()


def test_an_official_cannot_approve_a_request_about_itself(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    """A dept_admin whose code a platform admin asks for (it has a key) cannot approve it,
    and a clerk (not a manager) cannot approve anything."""
    with login_as(gateway, JYJ, ["dept_admin"]) as target:
        request_id = pending_request_id(
            admins[0].post(f"/v1/officials/{target.official_id}/enrollment-code")
        )
        # Refused either way: a code for a dept_admin is for admins to decide (404 to it).
        problem(target.post(f"/v1/official-requests/{request_id}/approve"), 404, "not_found")
        problem(admins[0].post(f"/v1/official-requests/{request_id}/approve"), 403, "same_person")
    with login_as(gateway, JYJ, ["clerk"]) as clerk:
        request_id = pending_request_id(
            jyj_admin.post(f"/v1/officials/{clerk.official_id}/enrollment-code")
        )
        problem(clerk.post(f"/v1/official-requests/{request_id}/approve"), 403, "forbidden")


# --- escalation through the second step -------------------------------------------------------


def test_approve_cannot_add_roles_to_a_create_or_a_code(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    asked = jyj_admin.post(
        "/v1/officials", json={"name": "只是科员", "department": JYJ, "roles": ["leader"]}
    )
    request_id = pending_request_id(asked)
    for roles in (["admin"], ["inspector"], ["leader", "dept_admin"]):
        problem(
            admins[0].post(f"/v1/official-requests/{request_id}/approve", json={"roles": roles}),
            400,
            "invalid_request",
        )
    created = admins[0].post(f"/v1/official-requests/{request_id}/approve", json={"roles": []})
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == ["leader"]


def test_accepting_a_transfer_cannot_grant_what_the_acceptor_may_not(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session, gaj_admin: Session
) -> None:
    with login_as(gateway, JYJ, ["clerk"]) as mover:
        request_id = pending_request_id(
            jyj_admin.post(f"/v1/officials/{mover.official_id}/transfer", json={"department": GAJ})
        )
        for roles in (["dept_admin"], ["inspector"], ["admin"]):
            problem(
                gaj_admin.post(
                    f"/v1/official-requests/{request_id}/approve", json={"roles": roles}
                ),
                403,
                "forbidden",
            )
        # Not even an admin makes an admin on the way in.
        problem(
            admins[0].post(
                f"/v1/official-requests/{request_id}/approve", json={"roles": ["admin"]}
            ),
            403,
            "forbidden",
        )
        # The proposer cannot pre-grant roles either.
        with login_as(gateway, JYJ, ["clerk"]) as other:
            problem(
                jyj_admin.post(
                    f"/v1/officials/{other.official_id}/transfer",
                    json={"department": GAJ, "roles": ["seal_keeper"]},
                ),
                403,
                "forbidden",
            )
        # Accepted with seal_keeper: the key is gone and a code takes two managers.
        accepted = gaj_admin.post(
            f"/v1/official-requests/{request_id}/approve", json={"roles": ["seal_keeper"]}
        )
        assert accepted.status_code == 200, accepted.text
        assert mover.get("/v1/me").status_code == 401
        pending_request_id(gaj_admin.post(f"/v1/officials/{mover.official_id}/enrollment-code"))


def test_clerk_made_alone_cannot_become_a_seal_keeper_with_its_key(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    """Create a clerk alone (code in hand), enroll its key, then look for a way to add
    seal_keeper that keeps the key: an admin's transfer with roles is the only role change."""
    made = jyj_admin.post(
        "/v1/officials", json={"name": "科员", "department": JYJ, "roles": ["clerk"]}
    )
    assert made.status_code == 201, made.text
    clerk = enroll_with_code(gateway, made.json()["id"], made.json()["enrollment_code"], login=True)
    moved = admins[0].post(
        f"/v1/officials/{clerk.official_id}/transfer",
        json={"department": GAJ, "roles": ["clerk", "seal_keeper"]},
    )
    assert moved.status_code == 200, moved.text
    assert clerk.get("/v1/me").status_code == 401
    assert clerk.login().status_code != 200
    # Its old manager no longer sees it; its new one cannot hand out a code alone.
    problem(jyj_admin.post(f"/v1/officials/{clerk.official_id}/enrollment-code"), 404, "not_found")
    clerk.close()


# --- other departments, listings, secrets -------------------------------------------------------


def test_a_dept_admin_cannot_approve_or_see_another_departments_requests(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session, gaj_admin: Session
) -> None:
    with login_as(gateway, JYJ, ["leader"]) as leader:
        request_id = pending_request_id(
            jyj_admin.post(f"/v1/officials/{leader.official_id}/enrollment-code")
        )
        problem(gaj_admin.post(f"/v1/official-requests/{request_id}/approve"), 404, "not_found")
        problem(gaj_admin.post(f"/v1/official-requests/{request_id}/decline"), 404, "not_found")
        listed = gaj_admin.get("/v1/official-requests").json()["items"]
        assert request_id not in {item["id"] for item in listed}
        assert all(GAJ in (item["department"], item["target_department"]) for item in listed), (
            listed
        )
        # Bad ids are plain 404s, never 500s.
        for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", "%27"):
            answer = gaj_admin.post(f"/v1/official-requests/{bad}/approve")
            assert answer.status_code == 404, answer.text


def test_a_dept_admin_cannot_block_the_rekeying_of_an_admin_of_its_department(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    """Was open: the platform department's dept_admin saw the request for a code of an admin
    of its department and declined it, again and again (it can never approve one)."""
    first, second = admins
    request_id = pending_request_id(
        first.post(f"/v1/officials/{second.official_id}/enrollment-code")
    )
    with login_as(gateway, PLATFORM, ["dept_admin"]) as platform_dept_admin:
        listed = platform_dept_admin.get("/v1/official-requests").json()["items"]
        declined = platform_dept_admin.post(f"/v1/official-requests/{request_id}/decline")
        still = first.get("/v1/official-requests?status=pending").json()["items"]
        first.post(f"/v1/official-requests/{request_id}/decline")  # leave the module clean
        assert request_id not in {item["id"] for item in listed}
        assert declined.status_code == 404, declined.text
        assert request_id in {item["id"] for item in still}


def test_replayed_and_raced_approvals_give_one_code(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    with (
        login_as(gateway, JYJ, ["leader"]) as leader,
        login_as(gateway, JYJ, ["dept_admin"]) as second_dept_admin,
    ):
        request_id = pending_request_id(
            jyj_admin.post(f"/v1/officials/{leader.official_id}/enrollment-code")
        )
        path = f"/v1/official-requests/{request_id}/approve"
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda who: who.post(path), (admins[1], second_dept_admin)))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        for who in (admins[1], second_dept_admin, jyj_admin):
            assert who.post(path).status_code in (403, 409)
            problem(who.post(f"/v1/official-requests/{request_id}/decline"), 409, "request_decided")
        # The requester sees the outcome but never the code.
        code = next(a for a in answers if a.status_code == 201).json()["enrollment_code"]
        listed = jyj_admin.get("/v1/official-requests?status=approved")
        assert request_id in listed.text and code not in listed.text
        time.sleep(0.5)
        assert code not in "".join(gateway.output)
        rows = sql(gateway, "SELECT details::text AS d FROM audit_outbox")
        assert all(code not in row["d"] for row in rows)


def test_an_approval_racing_a_transfer_of_the_same_official_is_no_500(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    """Was open: approving a code took the request's row, then the official's; an admin's
    transfer takes the official's, then cancels its pending requests. Raced, PostgreSQL
    found a deadlock and one side answered 500 (8 of 15 rounds here)."""
    outcomes = []
    moved_ids = []
    for _ in range(8):
        with login_as(gateway, JYJ, ["leader"]) as leader:
            moved_ids.append(leader.official_id)
            request_id = pending_request_id(
                jyj_admin.post(f"/v1/officials/{leader.official_id}/enrollment-code")
            )
            with ThreadPoolExecutor(2) as pool:
                approving = pool.submit(
                    admins[1].post, f"/v1/official-requests/{request_id}/approve"
                )
                moving = pool.submit(
                    admins[0].post,
                    f"/v1/officials/{leader.official_id}/transfer",
                    json={"department": GAJ},
                )
                outcomes.append((approving.result().status_code, moving.result().status_code))
    assert all(approved in (201, 409) and moved == 200 for approved, moved in outcomes), outcomes
    assert not sql(
        gateway, "SELECT 1 FROM enrollment_codes WHERE official_id = ANY($1::text[])", moved_ids
    ), "a code issued in the old department survived the move"


def test_revoke_then_solo_reissue_of_a_clerk_is_alerted(
    gateway: Gateway, jyj_admin: Session
) -> None:
    """Not four eyes by the rule's letter (no active key left), but never silent."""
    with login_as(gateway, JYJ, ["clerk"]) as victim:
        revoked = jyj_admin.delete(f"/v1/officials/{victim.official_id}/keys/{victim.kid}")
        assert revoked.status_code == 200, revoked.text
        issued = jyj_admin.post(f"/v1/officials/{victim.official_id}/enrollment-code")
        assert issued.status_code == 201, issued.text
        taken = enroll_with_code(
            gateway, victim.official_id, issued.json()["enrollment_code"], login=True
        )
        alerts = sql(
            gateway,
            "SELECT 1 FROM supervision_alerts WHERE rule = 'key_added_by_other' AND subject = $1",
            f"key:{taken.kid}",
        )
        assert alerts, "a key added with someone else's code must raise an alert"
        # The same for a leader is four eyes even with no key left.
    with login_as(gateway, JYJ, ["leader"]) as leader:
        jyj_admin.delete(f"/v1/officials/{leader.official_id}/keys/{leader.kid}")
        pending_request_id(jyj_admin.post(f"/v1/officials/{leader.official_id}/enrollment-code"))
        taken.close()


def test_the_manager_who_added_a_key_cannot_acknowledge_its_own_alert(
    gateway: Gateway, jyj_admin: Session
) -> None:
    """Was open: a dept_admin revokes a clerk's key, hands itself a code alone (allowed: no
    active key), enrolls, and then acknowledges the key_added_by_other alert about its own
    act; the victim, with no key left, never sees the login notice either."""
    with login_as(gateway, JYJ, ["clerk"]) as victim:
        jyj_admin.delete(f"/v1/officials/{victim.official_id}/keys/{victim.kid}")
        issued = jyj_admin.post(f"/v1/officials/{victim.official_id}/enrollment-code")
        assert issued.status_code == 201, issued.text
        taken = enroll_with_code(
            gateway, victim.official_id, issued.json()["enrollment_code"], login=True
        )
        (alert,) = sql(
            gateway,
            "SELECT id::text AS id FROM supervision_alerts WHERE subject = $1",
            f"key:{taken.kid}",
        )
        problem(
            jyj_admin.post(f"/v1/supervision/alerts/{alert['id']}/acknowledge"), 403, "forbidden"
        )
        # Acknowledging is an inspector's (issue 16.9); the department's own managers only
        # add notes, and the one who handed out the code is refused even that first step.
        with login_as(gateway, JYJ, ["dept_admin"]) as colleague:
            problem(
                colleague.post(f"/v1/supervision/alerts/{alert['id']}/acknowledge"),
                403,
                "forbidden",
            )
        with login_as(gateway, "yl", ["inspector"]) as inspector:
            acknowledged = inspector.post(f"/v1/supervision/alerts/{alert['id']}/acknowledge")
            assert acknowledged.status_code == 200, acknowledged.text
        taken.close()


def test_disabled_official_gets_no_code_through_a_pending_request(
    gateway: Gateway, admins: tuple[Session, Session], jyj_admin: Session
) -> None:
    with login_as(gateway, JYJ, ["leader"]) as leader:
        request_id = pending_request_id(
            jyj_admin.post(f"/v1/officials/{leader.official_id}/enrollment-code")
        )
        assert jyj_admin.post(f"/v1/officials/{leader.official_id}/disable").status_code == 200
        problem(
            admins[0].post(f"/v1/official-requests/{request_id}/approve"), 403, "official_disabled"
        )
        assert (
            sql(gateway, "SELECT status FROM official_requests WHERE id = $1::uuid", request_id)[0][
                "status"
            ]
            == "pending"
        )


# --- the bootstrap ---------------------------------------------------------------------------


def _cli_create(gateway: Gateway, name: str) -> dict[str, Any]:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "--data-dir",
            str(gateway.data_dir),
            "official",
            "create",
            "--department",
            PLATFORM,
            "--name",
            name,
            "--roles",
            "admin",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": gateway.database_url, "SEALHUB_LOG_LEVEL": "warning"},
        cwd=REPO,
        timeout=120,
        check=True,
    )
    made: dict[str, Any] = json.loads(created.stdout)
    return made


def test_the_first_admins_come_from_the_command_line_and_then_work_as_two(
    gateway: Gateway,
) -> None:
    one, two = (_cli_create(gateway, name) for name in ("首任管理员一", "首任管理员二"))
    first = enroll_with_code(gateway, one["id"], one["enrollment_code"], login=True)
    second = enroll_with_code(gateway, two["id"], two["enrollment_code"], login=True)
    request_id = pending_request_id(
        first.post(
            "/v1/officials", json={"name": "第三位", "department": PLATFORM, "roles": ["admin"]}
        )
    )
    created = second.post(f"/v1/official-requests/{request_id}/approve")
    assert created.status_code == 201, created.text
    first.close()
    second.close()
