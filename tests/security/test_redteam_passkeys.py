"""Red team of passkeys (issue 19), over HTTPS against the real gateway: what a hostile insider
(a manager, someone at an official's unlocked console) or outsider (another RP, a cloned or
broken authenticator, a forged clientDataJSON) gets out of the passkey rules. Each test is an
attack; the assertions are what the gateway must answer."""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import Gateway, Session, create_official_in_db, login_as
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.passkeys.test_passkeys_http import (
    JWT_BEARER,
    Console,
    console_of,
    receipt,
    with_passkey,
)
from tests.seals.seal_corpus import reportlab_pdf
from tests.softauthn import UP, UV, SoftAuthenticator, b64url, challenge_for, unb64url
from tests.workflow.conftest import approval_jws

DEPT = "yl-jyj"
SENDING = "yl-bgs"


def code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    value: str = response.json()["code"]
    return value


@pytest.fixture(scope="module")
def admins(gateway: Gateway) -> Iterator[tuple[Session, Session]]:
    first = login_as(gateway, "yl", ["admin"], name="红队管理员甲")
    second = login_as(gateway, "yl", ["admin"], name="红队管理员乙")
    yield first, second
    first.close()
    second.close()


def forged(
    authenticator: SoftAuthenticator,
    challenge: bytes,
    *,
    client_data: dict[str, object] | None = None,
    flags: int = UP | UV,
    rp_id: str | None = None,
) -> dict[str, object]:
    """An assertion of the authenticator's newest credential, signed by its real key, with
    a clientDataJSON and flags of the attacker's choosing."""
    chosen = list(authenticator.credentials.values())[-1]
    chosen.sign_count += 1
    data = {
        "type": "webauthn.get",
        "challenge": b64url(challenge),
        "origin": authenticator.origin,
        "crossOrigin": False,
        **(client_data or {}),
    }
    raw = json.dumps(data, separators=(",", ":")).encode()
    auth_data = (
        hashlib.sha256((rp_id or chosen.rp_id).encode()).digest()
        + bytes([flags])
        + struct.pack(">I", chosen.sign_count)
    )
    signature = chosen.key.sign(auth_data + hashlib.sha256(raw).digest(), ec.ECDSA(hashes.SHA256()))
    return {
        "id": b64url(chosen.id),
        "rawId": b64url(chosen.id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64url(raw),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
            "userHandle": b64url(chosen.user_handle),
        },
        "clientExtensionResults": {},
    }


def login_with(console: Console, passkey: object) -> httpx.Response:
    assertion = console.assertion(console.challenge())
    value = passkey(assertion) if callable(passkey) else passkey
    form = {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": json.dumps(value)}
    return console.token_request(form)


# --- forged and broken assertions at login ------------------------------------------------


def test_forged_client_data_and_flags_are_refused_at_login(gateway: Gateway) -> None:
    victim = with_passkey(gateway, DEPT, ["leader"])
    # Refusals count against the official (10 token requests a minute): one victim each.
    victims = {"victim": victim}
    attacks: dict[str, Any] = {
        "webauthn.create in a get": lambda a, auth: forged(
            auth, challenge_for(a), client_data={"type": "webauthn.create"}
        ),
        "another origin": lambda a, auth: forged(
            auth, challenge_for(a), client_data={"origin": "https://evil.example"}
        ),
        "an origin that only starts like ours": lambda a, auth: forged(
            auth, challenge_for(a), client_data={"origin": gateway.base_url + ".evil.example"}
        ),
        "cross-origin iframe": lambda a, auth: forged(
            auth,
            challenge_for(a),
            client_data={"crossOrigin": True, "topOrigin": "https://evil.example"},
        ),
        "token binding status not valid": lambda a, auth: forged(
            auth, challenge_for(a), client_data={"tokenBinding": {"status": "stolen"}}
        ),
        "user present, not verified": lambda a, auth: forged(auth, challenge_for(a), flags=UP),
        "neither present nor verified": lambda a, auth: forged(auth, challenge_for(a), flags=0),
        "rpIdHash of another RP": lambda a, auth: forged(
            auth, challenge_for(a), rp_id="evil.example"
        ),
        "the challenge as text, not its hash": lambda a, auth: forged(auth, a.encode()),
        "the login nonce as challenge": lambda a, auth: forged(auth, b"nonce"),
    }
    for number, (name, attack) in enumerate(attacks.items()):
        if number % 4 == 3:
            victim = victims[name] = with_passkey(gateway, DEPT, ["leader"])
        refused = login_with(victim, lambda a, v=victim, f=attack: f(a, v.authenticator))
        assert refused.status_code == 401, (name, refused.text)
        assert code(refused) == "invalid_passkey", name
    # The genuine authenticator still works (nothing above moved its state into a refusal).
    assert victim.login(passkey=True).status_code == 200
    for session in victims.values():
        session.close()


def test_sign_count_rollback_of_a_cloned_authenticator_is_refused(gateway: Gateway) -> None:
    victim = with_passkey(gateway, DEPT, ["leader"])
    counted = list(victim.authenticator.credentials.values())[-1].sign_count
    # A clone made earlier replays counts the server has already seen, or 0.
    for stale in (counted, counted - 1, 0):
        refused = login_with(
            victim, lambda a, s=stale: victim.authenticator.confirm(a, sign_count=s)
        )
        assert refused.status_code == 401 and code(refused) == "invalid_passkey", stale
    # The original goes on (its next count is greater than any the server kept).
    assert victim.login(passkey=True).status_code == 200
    victim.close()


def test_malformed_passkey_json_is_a_stable_401_never_a_5xx(gateway: Gateway) -> None:
    victim = with_passkey(gateway, DEPT, ["leader"])
    good = json.dumps(victim.authenticator.confirm("x.y.z"))
    bodies = [
        "",
        "null",
        "[]",
        "42",
        '"text"',
        "{",
        "{}",
        '{"id": 1}',
        '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}',
        json.dumps({"id": "!!", "rawId": "!!", "type": "public-key", "response": {"x": 1}}),
        good.replace('"type": "public-key"', '"type": "password"'),
        json.dumps(
            {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
        ),
        "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
    ]
    for number, body in enumerate(bodies):
        if number % 6 == 5:
            victim.close()
            victim = with_passkey(gateway, DEPT, ["leader"])
        assertion = victim.assertion(victim.challenge())
        answer = victim.token_request(
            {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": body}
        )
        assert answer.status_code in (400, 401), (body, answer.status_code, answer.text)
        assert code(answer) in ("invalid_passkey", "invalid_request", "passkey_required"), body
    # Oversized: refused by the form's limit (400), not parsed.
    victim.close()
    victim = with_passkey(gateway, DEPT, ["leader"])
    assertion = victim.assertion(victim.challenge())
    huge = victim.token_request(
        {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": "x" * 100_000}
    )
    assert huge.status_code in (400, 413) and code(huge) in ("invalid_request", "body_too_large")
    # The same shapes in JSON bodies of registration and step-ups: 400/401 problem+json.
    for credential in ({}, {"id": "AA"}, {"response": "x" * 20000}, {"rawId": None}):
        answer = victim.post("/v1/passkeys", json={"credential": credential})
        assert answer.status_code in (400, 401), answer.text
        assert code(answer) in ("invalid_passkey", "invalid_request")
    answer = victim.post("/v1/passkeys", json={"credential": "not an object"})
    assert answer.status_code == 400 and code(answer) == "invalid_request"
    victim.close()


# --- step-ups bound to one JWS ----------------------------------------------------------


def test_a_step_up_confirms_one_jws_only(gateway: Gateway, admins: tuple[Session, Session]) -> None:
    """An assertion made for one receipt, approval or seal request is refused with any other:
    another delivery, another document, reject instead of approve, or the same act replayed
    with the sign count of a counterless authenticator."""
    issue_seal(admins, SENDING)
    keeper = login_as(gateway, SENDING, ["seal_keeper", "clerk"], name="红队用印员")
    clerk = with_passkey(gateway, DEPT, ["clerk"])
    deliveries = []
    for _ in range(2):
        sent = send(
            keeper, meta_for([DEPT], f"玉政发〔2026〕{uuid.uuid4().int % 10**6}号"), reportlab_pdf()
        )
        assert sent.status_code == 201, sent.text
        [item] = [
            i
            for i in clerk.get("/v1/inbox?wait=0").json()["items"]
            if i["document"]["id"] == sent.json()["id"]
        ]
        deliveries.append((item["id"], sent.json()["sha256"]))
    (first, sha_1), (second, sha_2) = deliveries
    signed_1 = receipt(clerk, first, sha_1)
    step_up_1 = clerk.authenticator.confirm(signed_1)
    signed_2 = receipt(clerk, second, sha_2)
    moved = clerk.post(
        f"/v1/deliveries/{second}/receipt", json={"signature": signed_2, "passkey": step_up_1}
    )
    assert moved.status_code == 401 and code(moved) == "invalid_passkey"
    done = clerk.post(
        f"/v1/deliveries/{first}/receipt", json={"signature": signed_1, "passkey": step_up_1}
    )
    assert done.status_code == 200, done.text
    # The used assertion again, for the other delivery with the same receipt text: refused.
    again = clerk.post(
        f"/v1/deliveries/{second}/receipt", json={"signature": signed_1, "passkey": step_up_1}
    )
    assert again.status_code in (401, 409), again.text
    keeper.close()
    clerk.close()


def test_an_approve_step_up_does_not_confirm_a_reject_nor_another_document(
    gateway: Gateway,
) -> None:
    drafter = login_as(gateway, DEPT, ["clerk"], name="红队拟稿")
    signer = with_passkey(gateway, DEPT, ["leader"])
    documents = []
    for _ in range(2):
        workflow = {"steps": [{"name": "签发", "mode": "any", "assignees": [signer.official_id]}]}
        sent = send(
            drafter,
            meta_for(["yl-gaj"], f"玉教发〔2026〕{uuid.uuid4().int % 10**6}号", workflow=workflow),
            reportlab_pdf(),
        )
        assert sent.status_code == 201, sent.text
        documents.append((sent.json()["id"], sent.json()["draft_sha256"]))
    (doc_1, sha_1), (doc_2, sha_2) = documents
    approve_1 = approval_jws(signer, doc_1, sha_1, 0)
    confirmed = signer.authenticator.confirm(approve_1)
    other_doc = signer.post(
        f"/v1/documents/{doc_2}/approvals",
        json={"signature": approval_jws(signer, doc_2, sha_2, 0), "passkey": confirmed},
    )
    assert other_doc.status_code == 401 and code(other_doc) == "invalid_passkey"
    reject = approval_jws(signer, doc_1, sha_1, 0, decision="reject", opinion="退回")
    as_reject = signer.post(
        f"/v1/documents/{doc_1}/approvals", json={"signature": reject, "passkey": confirmed}
    )
    assert as_reject.status_code == 401 and code(as_reject) == "invalid_passkey"
    # The approval JWS of document 1 sent to document 2 with its own step-up: the JWS check.
    crossed = signer.post(
        f"/v1/documents/{doc_2}/approvals",
        json={"signature": approve_1, "passkey": signer.authenticator.confirm(approve_1)},
    )
    assert crossed.status_code in (400, 401, 409) and code(crossed) != "passkey_required"
    assert crossed.json()["code"] not in ("signed_off",)
    drafter.close()
    signer.close()


def test_a_removed_passkey_and_another_officials_passkey_confirm_nothing(
    gateway: Gateway,
) -> None:
    official = with_passkey(gateway, DEPT, ["clerk"])
    first = list(official.authenticator.credentials)[-1]
    colleague = with_passkey(gateway, DEPT, ["clerk"])
    # A second passkey (step-up by the first), then the first removed with a step-up.
    spare = SoftAuthenticator(gateway.base_url)
    official.authenticator, old = spare, official.authenticator
    assert official.register("备用", step_up=old).status_code == 201
    url = f"/v1/officials/{official.official_id}/passkeys"
    old_id = [p for p in official.get(url).json()["items"] if p["credential"] == b64url(first)]
    removed = official.request(
        "DELETE",
        f"{url}/{old_id[0]['id']}",
        json={"passkey": old.confirm(f"remove-passkey:{old_id[0]['id']}")},
    )
    assert removed.status_code == 200, removed.text
    for name, authenticator in (("removed", old), ("colleague's", colleague.authenticator)):
        refused = login_with(official, authenticator.confirm)
        assert refused.status_code == 401 and code(refused) == "invalid_passkey", name
    # The colleague's credential with this official's user handle is still not this one's.
    assertion = official.assertion(official.challenge())
    relabelled = colleague.authenticator.confirm(assertion)
    relabelled["response"]["userHandle"] = b64url(official.official_id.encode())  # type: ignore[index]
    answer = official.token_request(
        {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": json.dumps(relabelled)}
    )
    assert answer.status_code == 401 and code(answer) == "invalid_passkey"
    assert official.login(passkey=True).status_code == 200
    official.close()
    colleague.close()


# --- registration ----------------------------------------------------------------------


def test_registration_for_another_official_or_with_a_forged_challenge_is_refused(
    gateway: Gateway,
) -> None:
    attacker = console_of(gateway, DEPT, ["clerk"])
    victim = console_of(gateway, DEPT, ["clerk"])
    assert attacker.login().status_code == 200 and victim.login().status_code == 200
    # The victim's options (challenge bound to the victim) answered from the attacker's session.
    options = victim.post("/v1/passkeys/registration-options").json()["publicKey"]
    stolen = attacker.post(
        "/v1/passkeys", json={"credential": attacker.authenticator.create(options)}
    )
    assert stolen.status_code == 401 and code(stolen) == "invalid_passkey"
    # A challenge of the right size that the gateway never issued.
    mine = attacker.post("/v1/passkeys/registration-options").json()["publicKey"]
    raw = bytearray(unb64url(mine["challenge"]))
    raw[-1] ^= 1
    forged_options = {**mine, "challenge": b64url(bytes(raw))}
    forged_answer = attacker.post(
        "/v1/passkeys", json={"credential": attacker.authenticator.create(forged_options)}
    )
    assert forged_answer.status_code == 401
    assert forged_answer.json()["reason"] == "challenge_forged"
    # The victim's user handle in the attacker's registration changes nothing about whose it is.
    relabelled = {**mine, "user": {**mine["user"], "id": b64url(victim.official_id.encode())}}
    registered = attacker.post(
        "/v1/passkeys", json={"credential": attacker.authenticator.create(relabelled)}
    )
    assert registered.status_code == 201, registered.text
    assert victim.get(f"/v1/officials/{victim.official_id}/passkeys").json()["items"] == []
    attacker.close()
    victim.close()


def test_a_console_key_cannot_change_its_kind(gateway: Gateway) -> None:
    """A console key enrolled again declaring ``file`` (to shed its passkey) is refused: one
    key is enrolled once, and no route changes the kind."""
    official, enrollment_code = create_official_in_db(gateway.database_url, DEPT, ["leader"])
    console = Console(gateway, official)
    assert console.enroll(enrollment_code).status_code == 201
    assert console.login().json()["passkey"] == "setup_required"
    again = Session.enroll(console, enrollment_code)  # the SDK's form: no device = file
    assert again.status_code in (400, 401, 409)
    [key] = console.get(f"/v1/officials/{official}/keys").json()["items"]
    assert key["device_kind"] == "browser"
    console.close()


# --- insiders: an unlocked console and a single manager ----------------------------------


def test_an_unlocked_console_cannot_mint_itself_a_key_without_the_passkey(
    gateway: Gateway,
) -> None:
    """Someone at the leader's unlocked console (its verified session, not its passkey) asks
    the official's own enrollment code, enrolls a key of its own and registers its own
    passkey (or enrolls it as a key file, which never needs one): the passkey is bypassed."""
    leader = with_passkey(gateway, DEPT, ["leader"])
    asked = leader.post(f"/v1/officials/{leader.official_id}/enrollment-code")
    assert asked.status_code == 403 and code(asked) == "passkey_required", asked.text
    # With a key file (never under passkeys) the official still may, as before.
    leader.close()


def test_a_managers_removal_does_not_let_an_old_console_key_register_afresh(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    """One admin removes a leader's only passkey: the leader's old console key (stolen, or
    at an unlocked console) must not then register the attacker's passkey as a 'first' one,
    nor log in or act without one. Recovery is a new key (four-eyes code)."""
    leader = with_passkey(gateway, DEPT, ["leader"])
    url = f"/v1/officials/{leader.official_id}/passkeys"
    single = login_as(gateway, DEPT, ["dept_admin"], name="红队部门管理员甲")
    [passkey] = single.get(url).json()["items"]
    assert single.delete(f"{url}/{passkey['id']}").status_code == 200
    single.close()
    thief = SoftAuthenticator(gateway.base_url)
    leader.authenticator = thief
    login = leader.login()
    assert login.status_code == 200 and login.json()["passkey"] == "setup_required", login.text
    refused = leader.register("攻击者")
    assert refused.status_code == 403 and code(refused) == "passkey_required", refused.text
    assert leader.get("/v1/inbox?wait=0").status_code == 403
    # Recovery: a new console key from a four-eyes code registers and logs in.
    asked = admins[0].post(f"/v1/officials/{leader.official_id}/enrollment-code")
    approved = admins[1].post(f"/v1/official-requests/{asked.json()['request']['id']}/approve")
    assert approved.status_code == 201, approved.text
    recovered = Console(gateway, leader.official_id)
    assert recovered.enroll(approved.json()["enrollment_code"]).status_code == 201
    assert recovered.login().json()["passkey"] == "setup_required"
    assert recovered.register("新手机").status_code == 201
    assert recovered.login(passkey=True).json()["passkey"] == "verified"
    recovered.close()
    # A clerk (passkey optional): its dept_admin's removal does not turn the old key into a
    # key that needs no passkey and no step-up.
    clerk = with_passkey(gateway, DEPT, ["clerk"])
    dept_admin = login_as(gateway, DEPT, ["dept_admin"], name="红队部门管理员")
    clerk_url = f"/v1/officials/{clerk.official_id}/passkeys"
    [clerks] = dept_admin.get(clerk_url).json()["items"]
    assert dept_admin.delete(f"{clerk_url}/{clerks['id']}").status_code == 200
    # Its session that the passkey verified ends with it: no refresh, and no step-up can pass.
    assert clerk.refresh().status_code == 401
    clerk.authenticator = SoftAuthenticator(gateway.base_url)
    again = clerk.login()
    assert again.status_code == 200 and again.json()["passkey"] == "setup_required"
    assert code(clerk.register("攻击者")) == "passkey_required"
    for session in (leader, clerk, dept_admin):
        session.close()


def test_a_verified_session_needs_step_ups_after_its_passkey_is_removed(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    """The thief holds the verified session; a manager removes the (stolen) passkey: the
    session must not thereby sign for deliveries without any step-up."""
    issue_seal(admins, SENDING)
    keeper = login_as(gateway, SENDING, ["seal_keeper", "clerk"], name="红队用印员乙")
    clerk = with_passkey(gateway, DEPT, ["clerk"])
    sent = send(
        keeper, meta_for([DEPT], f"玉政发〔2026〕{uuid.uuid4().int % 10**6}号"), reportlab_pdf()
    )
    assert sent.status_code == 201, sent.text
    [item] = [
        i
        for i in clerk.get("/v1/inbox?wait=0").json()["items"]
        if i["document"]["id"] == sent.json()["id"]
    ]
    url = f"/v1/officials/{clerk.official_id}/passkeys"
    [passkey] = admins[0].get(url).json()["items"]
    assert admins[0].delete(f"{url}/{passkey['id']}").status_code == 200
    signed = receipt(clerk, item["id"], sent.json()["sha256"])
    answer = clerk.post(f"/v1/deliveries/{item['id']}/receipt", json={"signature": signed})
    assert answer.status_code == 403 and code(answer) == "passkey_required", answer.text
    # Nor refresh itself on: the families the removed passkey verified ended with it.
    refreshed = clerk.refresh()
    assert refreshed.status_code == 401, refreshed.text
    keeper.close()
    clerk.close()


def test_managers_of_another_department_see_nothing(gateway: Gateway) -> None:
    victim = with_passkey(gateway, DEPT, ["clerk"])
    foreign = login_as(gateway, "yl-gaj", ["dept_admin"], name="外局管理员")
    url = f"/v1/officials/{victim.official_id}/passkeys"
    [passkey] = victim.get(url).json()["items"]
    assert foreign.get(url).status_code == 404
    assert foreign.delete(f"{url}/{passkey['id']}").status_code == 404
    assert foreign.delete(f"{url}/{uuid.uuid4()}").status_code == 404
    put = foreign.request(
        "PUT", f"/v1/departments/{DEPT}/settings", json={"passkey_required": False}
    )
    assert put.status_code == 404
    # A dept_admin may not touch an admin's passkeys (nor anyone's of another department).
    admin = with_passkey(gateway, "yl", ["admin"])
    own_admin = login_as(gateway, "yl", ["dept_admin"], name="本级管理员")
    admin_url = f"/v1/officials/{admin.official_id}/passkeys"
    [admins_key] = admin.get(admin_url).json()["items"]
    assert own_admin.delete(f"{admin_url}/{admins_key['id']}").status_code == 403
    # Another official's passkey id under one's own id: not found, and not removed.
    mine = with_passkey(gateway, DEPT, ["clerk"])
    crossed = mine.delete(f"/v1/officials/{mine.official_id}/passkeys/{passkey['id']}")
    assert crossed.status_code == 404
    assert victim.get(url).json()["items"][0]["status"] == "active"
    for session in (victim, foreign, admin, own_admin, mine):
        session.close()


# --- the restricted session --------------------------------------------------------------


def _path(template: str, own: str) -> str:
    out = template.replace("{id}", own)
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        out = out[:start] + str(uuid.uuid4()) + out[end + 1 :]
    return out


def test_a_setup_session_reaches_only_its_allow_list(gateway: Gateway) -> None:
    from gateway.identity.auth import SETUP_ROUTES
    from gateway.routes import routes

    restricted = console_of(gateway, DEPT, ["leader", "dept_admin", "clerk"])
    assert restricted.login().json()["passkey"] == "setup_required"
    other = console_of(gateway, DEPT, ["clerk"]).official_id
    own = restricted.official_id
    checked = 0
    for route in routes.routes:
        if route.access != "authenticated" or (route.method, route.path) in SETUP_ROUTES:
            continue
        path = _path(route.path, own)
        answer = restricted.request(route.method, path)
        assert answer.status_code == 403, (route.method, path, answer.status_code, answer.text)
        assert code(answer) == "passkey_setup_required", (route.method, path)
        checked += 1
    assert checked > 50
    # The allowed routes with someone else's id, plainly, percent-encoded, with a trailing
    # slash or a doubled slash: never served.
    encoded = "".join(f"%{b:02X}" for b in other.encode())
    for route in sorted(SETUP_ROUTES):
        if "{id}" not in route[1]:
            continue
        for who in (other, encoded, quote(other)):
            path = _path(route[1].replace("{id}", who), own)
            for variant in (path, path + "/", path.replace("/v1/", "/v1//")):
                answer = restricted.request(route[0], variant)
                assert answer.status_code in (403, 404, 405), (route, variant, answer.text)
                if answer.status_code == 403:
                    assert code(answer) == "passkey_setup_required"
    # Its own: served.
    assert restricted.get(f"/v1/officials/{own}/keys").status_code == 200
    restricted.close()


def test_a_not_required_family_refreshed_after_registration_is_refused(gateway: Gateway) -> None:
    clerk = console_of(gateway, DEPT, ["clerk"])
    assert clerk.login().json()["passkey"] == "not_required"
    stale = clerk.refresh_token
    assert clerk.register().status_code == 201
    for _ in range(2):  # a refusal uses nothing up, and does not turn into a pass
        refused = clerk.refresh(stale)
        assert refused.status_code == 401 and code(refused) == "passkey_required"
    clerk.close()
