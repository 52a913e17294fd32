"""Passkeys over HTTPS against the real gateway, with a software authenticator: setting one
up, logging in with it, the restricted session, step-ups of 签收 / 签发 / 用印, and what an
attacker holding a console key, someone else's credential or a replayed assertion gets.
Key file (SDK) logins stay as they were."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keys.jws import TYP_RECEIPT, TYP_SEAL, sign_jws
from storage.db import connect
from tests.conftest import Gateway, Session, create_official_in_db, login_as
from tests.exchange.conftest import SENDER, issue_seal, meta_for, send
from tests.proofs import JWT_BEARER, enrollment_proof
from tests.seals.seal_corpus import reportlab_pdf
from tests.softauthn import SoftAuthenticator, challenge_for, unb64url
from tests.workflow.conftest import approval_jws

RECIPIENT = "yl-jyj"
OTHER = "yl-gaj"


class Console(Session):
    """An official in the web console: a console (browser) key and its authenticator."""

    def __init__(self, gateway: Gateway, official_id: str) -> None:
        super().__init__(gateway, official_id, ec.generate_private_key(ec.SECP256R1()))
        self.authenticator = SoftAuthenticator(gateway.base_url)

    def enroll(self, enrollment_code: str) -> httpx.Response:
        proof = enrollment_proof(self.key, self.official_id, enrollment_code)
        body = {"proof": proof, "device": {"kind": "browser", "label": "Chromium, Linux"}}
        return self.client.post(f"/v1/officials/{self.official_id}/keys", json=body)

    def login(self, passkey: bool | dict[str, Any] = False, **knobs: object) -> httpx.Response:
        """A login; *passkey* True: confirmed by this console's authenticator (with *knobs*),
        a dict: that AuthenticationResponseJSON as it is."""
        assertion = self.assertion(self.challenge())
        form = {"grant_type": JWT_BEARER, "assertion": assertion}
        if passkey is True:
            form["passkey"] = json.dumps(self.authenticator.confirm(assertion, **knobs))
        elif isinstance(passkey, dict):
            form["passkey"] = json.dumps(passkey)
        response = self.token_request(form)
        if response.status_code == 200:
            self._keep(response)
        return response

    def register(
        self, label: str = "手机", *, step_up: SoftAuthenticator | None = None, **knobs: object
    ) -> httpx.Response:
        options = self.post("/v1/passkeys/registration-options")
        assert options.status_code == 200, options.text
        public_key = options.json()["publicKey"]
        body: dict[str, Any] = {
            "credential": self.authenticator.create(public_key, **knobs),  # type: ignore[arg-type]
            "label": label,
        }
        if step_up is not None:
            body["passkey"] = step_up.confirm(public_key["challenge"])
        return self.post("/v1/passkeys", json=body)


def console_of(
    gateway: Gateway, department: str, roles: list[str], name: str = "控制台"
) -> Console:
    official_id, code = create_official_in_db(gateway.database_url, department, roles, name)
    console = Console(gateway, official_id)
    assert console.enroll(code).status_code == 201
    return console


def with_passkey(gateway: Gateway, department: str, roles: list[str]) -> Console:
    """A console official with a registered passkey, logged in with it."""
    console = console_of(gateway, department, roles)
    assert console.login().status_code == 200
    registered = console.register()
    assert registered.status_code == 201, registered.text
    logged_in = console.login(passkey=True)
    assert logged_in.status_code == 200, logged_in.text
    assert logged_in.json()["passkey"] == "verified"
    return console


def code(response: httpx.Response) -> str:
    value: str = response.json()["code"]
    return value


def events(gateway: Gateway, event_type: str) -> list[dict[str, Any]]:
    """The details of every event of *event_type*, sequenced or still in the outbox."""

    async def read() -> list[dict[str, Any]]:
        connection = await connect(gateway.database_url)
        try:
            rows = await connection.fetch(
                "SELECT details::text AS d FROM audit_outbox WHERE type = $1 UNION ALL"
                " SELECT convert_from(details, 'UTF8') FROM audit_log WHERE type = $1",
                event_type,
            )
        finally:
            await connection.close()
        return [json.loads(row["d"]) for row in rows]

    return asyncio.run(read())


@pytest.fixture(scope="module")
def admins(gateway: Gateway) -> Iterator[tuple[Session, Session]]:
    first = login_as(gateway, "yl", ["admin"], name="管理员甲")
    second = login_as(gateway, "yl", ["admin"], name="管理员乙")
    yield first, second
    first.close()
    second.close()


# --- setting up and logging in ----------------------------------------------------------------


def test_a_leader_sets_up_a_passkey_then_logs_in_with_it(gateway: Gateway) -> None:
    leader = console_of(gateway, RECIPIENT, ["leader"], name="局长")
    first = leader.login()
    assert first.status_code == 200, first.text
    assert first.json()["passkey"] == "setup_required"
    me = leader.get("/v1/me").json()
    assert me["passkey"] == "setup_required"
    assert me["device"] == {"kind": "browser", "label": "Chromium, Linux"}
    # The restricted session: itself, its keys and passkeys, nothing else.
    refused = leader.get("/v1/inbox?wait=0")
    assert refused.status_code == 403 and code(refused) == "passkey_setup_required"
    own_keys = leader.get(f"/v1/officials/{leader.official_id}/keys")
    assert own_keys.status_code == 200
    [key] = own_keys.json()["items"]
    assert (key["device_kind"], key["label"]) == ("browser", "Chromium, Linux")
    assert key["last_used_at"] is not None
    registered = leader.register("办公室电脑")
    assert registered.status_code == 201, registered.text
    assert registered.json()["label"] == "办公室电脑"
    # The refresh family keeps the restriction; a new login with the passkey lifts it.
    assert leader.refresh().json()["passkey"] == "setup_required"
    without = leader.login()
    assert without.status_code == 401 and code(without) == "passkey_required"
    verified = leader.login(passkey=True)
    assert verified.status_code == 200 and verified.json()["passkey"] == "verified"
    assert leader.get("/v1/me").json()["passkey"] == "verified"
    assert leader.get("/v1/inbox?wait=0").status_code == 200
    assert leader.refresh().json()["passkey"] == "verified"
    listed = leader.get(f"/v1/officials/{leader.official_id}/passkeys").json()["items"]
    assert [item["status"] for item in listed] == ["active"]
    assert listed[0]["last_used_at"] is not None
    logins = [e for e in events(gateway, "login.succeeded") if "passkey" in e]
    assert {"state": "setup_required"} in [e["passkey"] for e in logins]
    assert any(
        e["passkey"].get("credential") == listed[0]["credential"]
        and e["passkey"]["state"] == "verified"
        for e in logins
    )
    [added] = [e for e in events(gateway, "passkey.registered") if e["passkey"] == listed[0]["id"]]
    assert added["via"] == "first"
    leader.close()


def test_key_file_logins_are_unaffected(gateway: Gateway) -> None:
    sdk = login_as(gateway, RECIPIENT, ["leader", "seal_keeper"], name="系统")
    assert sdk.login().json()["passkey"] == "not_required"
    me = sdk.get("/v1/me").json()
    assert me["passkey"] == "not_required" and me["device"] == {"kind": "file", "label": None}
    assert sdk.get("/v1/inbox?wait=0").status_code == 200
    # A key file's session cannot register one, nor send one at login.
    refused = sdk.post("/v1/passkeys/registration-options")
    assert refused.status_code == 403 and code(refused) == "console_key_required"
    form = {
        "grant_type": JWT_BEARER,
        "assertion": sdk.assertion(sdk.challenge()),
        "passkey": json.dumps({"id": "x"}),
    }
    sent = sdk.token_request(form)
    assert sent.status_code == 401 and code(sent) == "invalid_passkey"
    sdk.close()


def test_a_clerk_needs_none_until_it_registers_one(gateway: Gateway) -> None:
    clerk = console_of(gateway, RECIPIENT, ["clerk"])
    assert clerk.login().json()["passkey"] == "not_required"
    assert clerk.get("/v1/inbox?wait=0").status_code == 200
    assert clerk.register().status_code == 201
    # The family needed none when it began: now it needs a login with the passkey.
    refreshed = clerk.refresh()
    assert refreshed.status_code == 401 and code(refreshed) == "passkey_required"
    assert clerk.login().status_code == 401
    assert clerk.login(passkey=True).json()["passkey"] == "verified"
    clerk.close()


def test_refused_login_assertions(gateway: Gateway) -> None:
    """Each changes one thing an attacker would need to change; each is invalid_passkey."""
    victim = with_passkey(gateway, RECIPIENT, ["leader"])
    other = with_passkey(gateway, RECIPIENT, ["leader"])
    assertion = victim.assertion(victim.challenge())
    attempts = {
        "wrong origin": victim.authenticator.confirm(assertion, origin="https://evil.example"),
        "wrong rp id": victim.authenticator.confirm(assertion, rp_id="evil.example"),
        "no user verification": victim.authenticator.confirm(assertion, user_verified=False),
        "another assertion's challenge": victim.authenticator.confirm("another.jws.value"),
        "another official's credential": other.authenticator.confirm(assertion),
        "sign count not grown": victim.authenticator.confirm(assertion, sign_count=1),
    }
    for name, response in attempts.items():
        refused = victim.token_request(
            {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": json.dumps(response)}
        )
        assert refused.status_code == 401, name
        assert code(refused) == "invalid_passkey", (name, refused.text)
    # Still a good assertion: the failures used up nothing.
    good = victim.authenticator.confirm(assertion)
    accepted = victim.token_request(
        {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": json.dumps(good)}
    )
    assert accepted.status_code == 200, accepted.text
    replayed = victim.token_request(
        {"grant_type": JWT_BEARER, "assertion": assertion, "passkey": json.dumps(good)}
    )
    assert replayed.status_code == 401
    victim.close()
    other.close()


def test_a_console_key_alone_cannot_add_a_second_passkey(gateway: Gateway) -> None:
    """Someone at the official's unlocked browser (its key and session) without the passkey:
    a new passkey needs a step-up of the current one, or a key enrolled after it."""
    owner = with_passkey(gateway, RECIPIENT, ["seal_keeper"])
    thief = SoftAuthenticator(gateway.base_url)
    owner.authenticator, mine = thief, owner.authenticator
    refused = owner.register("攻击者")
    assert refused.status_code == 403 and code(refused) == "passkey_required"
    # With a step-up by the current passkey it may.
    owner.authenticator = SoftAuthenticator(gateway.base_url)
    added = owner.register("第二台设备", step_up=mine)
    assert added.status_code == 201, added.text
    [event] = [
        e for e in events(gateway, "passkey.registered") if e["passkey"] == added.json()["id"]
    ]
    assert event["via"] == "step_up" and event["step_up"]["sign_count"] > 0
    # Nor may it drop the passkey (and with it every step-up) without one.
    url = f"/v1/officials/{owner.official_id}/passkeys"
    first = owner.get(url).json()["items"][0]["id"]
    dropped = owner.delete(f"{url}/{first}")
    assert dropped.status_code == 403 and code(dropped) == "passkey_required"
    confirmed = owner.request(
        "DELETE",
        f"{url}/{first}",
        json={"passkey": mine.confirm(f"remove-passkey:{first}")},
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "removed"
    owner.close()


def test_a_lost_passkey_is_recovered_with_a_key_enrolled_anew(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    lost = with_passkey(gateway, RECIPIENT, ["leader"])
    # Two managers hand out a code for a new console key (the four-eyes rule of keys).
    asked = admins[0].post(f"/v1/officials/{lost.official_id}/enrollment-code")
    assert asked.status_code == 202, asked.text
    approved = admins[1].post(f"/v1/official-requests/{asked.json()['request']['id']}/approve")
    assert approved.status_code == 201, approved.text
    new = Console(gateway, lost.official_id)
    assert new.enroll(approved.json()["enrollment_code"]).status_code == 201
    assert new.login().json()["passkey"] == "setup_required"
    # The old key still needs the (lost) passkey.
    assert lost.login().status_code == 401
    # A restricted session reaches only its own keys.
    other = lost.official_id
    colleague = console_of(gateway, RECIPIENT, ["clerk"]).official_id
    assert new.get(f"/v1/officials/{colleague}/keys").status_code == 403
    old_passkey = new.get(f"/v1/officials/{other}/passkeys").json()["items"][0]["id"]
    assert new.delete(f"/v1/officials/{other}/passkeys/{old_passkey}").status_code == 200
    assert new.register("新手机").status_code == 201
    assert new.login(passkey=True).json()["passkey"] == "verified"
    removed = [e for e in events(gateway, "passkey.removed") if e["passkey"] == old_passkey]
    assert len(removed) == 1
    lost.close()
    new.close()


def test_a_registration_challenge_is_used_once_and_bound_to_the_origin(gateway: Gateway) -> None:
    console = console_of(gateway, RECIPIENT, ["clerk"])
    assert console.login().status_code == 200
    options = console.post("/v1/passkeys/registration-options").json()["publicKey"]
    assert options["rp"]["id"] == "127.0.0.1"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    wrong = console.authenticator.create(options, origin="https://evil.example")
    refused = console.post("/v1/passkeys", json={"credential": wrong})
    assert refused.status_code == 401 and code(refused) == "invalid_passkey"
    unverified = console.authenticator.create(options, user_verified=False)
    assert console.post("/v1/passkeys", json={"credential": unverified}).status_code == 401
    good = console.authenticator.create(options)
    assert console.post("/v1/passkeys", json={"credential": good}).status_code == 201
    # The same challenge again, even with a step-up that would allow a second passkey.
    again = console.authenticator.create(options)
    step_up = console.authenticator.get(
        challenge_for(options["challenge"]), credential=unb64url(good["rawId"])
    )
    reused = console.post("/v1/passkeys", json={"credential": again, "passkey": step_up})
    assert reused.status_code == 401, reused.text
    assert reused.json()["reason"] == "challenge_used"
    # Another official's challenge is not this one's.
    other = console_of(gateway, RECIPIENT, ["clerk"])
    assert other.login().status_code == 200
    stolen = other.authenticator.create(
        console.post("/v1/passkeys/registration-options").json()["publicKey"]
    )
    assert other.post("/v1/passkeys", json={"credential": stolen}).status_code == 401
    console.close()
    other.close()


# --- department settings ------------------------------------------------------------------


def test_department_setting_is_its_dept_admins_and_decides_who_needs_one(
    gateway: Gateway,
) -> None:
    own = login_as(gateway, OTHER, ["dept_admin"], name="乙局管理员")
    foreign = login_as(gateway, RECIPIENT, ["dept_admin"], name="甲局管理员")
    assert own.get(f"/v1/departments/{OTHER}/settings").json()["passkey_required"] is True
    hidden = foreign.request(
        "PUT", f"/v1/departments/{OTHER}/settings", json={"passkey_required": False}
    )
    assert hidden.status_code == 404
    assert foreign.get(f"/v1/departments/{OTHER}/settings").status_code == 404
    changed = own.request(
        "PUT", f"/v1/departments/{OTHER}/settings", json={"passkey_required": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["updated_by"] == own.official_id
    leader = console_of(gateway, OTHER, ["leader"])
    assert leader.login().json()["passkey"] == "not_required"
    assert (
        own.request(
            "PUT", f"/v1/departments/{OTHER}/settings", json={"passkey_required": True}
        ).status_code
        == 200
    )
    # The family that needed none now needs a passkey set up.
    assert leader.refresh().json()["passkey"] == "setup_required"
    changes = [e for e in events(gateway, "department.settings_changed")]
    assert {"before": {"passkey_required": True}, "after": {"passkey_required": False}} in changes
    for session in (own, foreign, leader):
        session.close()


# --- step-ups -----------------------------------------------------------------------------


def receipt(console: Session, delivery: str, sha256: str) -> str:
    return sign_jws(
        {
            "delivery": delivery,
            "sha256": sha256,
            "action": "receive",
            "reason": "",
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        console.key,
        typ=TYP_RECEIPT,
    )


def test_signing_for_a_delivery_needs_a_step_up_bound_to_the_receipt(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    issue_seal(admins, SENDER)
    keeper = login_as(gateway, SENDER, ["seal_keeper", "clerk"], name="用印员")
    sent = send(
        keeper,
        meta_for([RECIPIENT], f"玉政发〔2026〕{uuid.uuid4().int % 10**6}号"),
        reportlab_pdf(pages=1),
    )
    assert sent.status_code == 201, sent.text
    sha256 = sent.json()["sha256"]
    clerk = with_passkey(gateway, RECIPIENT, ["clerk"])
    [item] = [
        i
        for i in clerk.get("/v1/inbox?wait=0").json()["items"]
        if i["document"]["id"] == sent.json()["id"]
    ]
    delivery = item["id"]
    url = f"/v1/deliveries/{delivery}/receipt"
    signed = receipt(clerk, delivery, sha256)
    missing = clerk.post(url, json={"signature": signed})
    assert missing.status_code == 403 and code(missing) == "passkey_required"
    other = clerk.post(
        url,
        json={
            "signature": signed,
            "passkey": clerk.authenticator.confirm(receipt(clerk, delivery, sha256)),
        },
    )
    assert other.status_code == 401 and code(other) == "invalid_passkey"
    step_up = clerk.authenticator.confirm(signed)
    done = clerk.post(url, json={"signature": signed, "passkey": step_up})
    assert done.status_code == 200, done.text
    [event] = [e for e in events(gateway, "delivery.received") if e["delivery"] == delivery]
    assert event["passkey"]["challenge"] == step_up_challenge(signed)
    assert event["passkey"]["sign_count"] > 0
    keeper.close()
    clerk.close()


def step_up_challenge(signed: str) -> str:
    from tests.softauthn import b64url

    return b64url(challenge_for(signed))


def seal_request(console: Session, document: str, draft_sha256: str) -> str:
    return sign_jws(
        {
            "document": document,
            "draft_sha256": draft_sha256,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        console.key,
        typ=TYP_SEAL,
    )


def test_sign_off_and_seal_need_step_ups_from_console_keys(
    gateway: Gateway, admins: tuple[Session, Session]
) -> None:
    issue_seal(admins, RECIPIENT)
    drafter = login_as(gateway, RECIPIENT, ["clerk"], name="拟稿人")
    reviewer = with_passkey(gateway, RECIPIENT, ["clerk"])
    signer = with_passkey(gateway, RECIPIENT, ["leader"])
    keeper = with_passkey(gateway, RECIPIENT, ["seal_keeper"])
    workflow = {
        "steps": [
            {"name": "核稿", "mode": "any", "assignees": [reviewer.official_id]},
            {"name": "签发", "mode": "any", "assignees": [signer.official_id]},
        ]
    }
    sent = send(
        drafter,
        meta_for([OTHER], f"玉教发〔2026〕{uuid.uuid4().int % 10**6}号", workflow=workflow),
        reportlab_pdf(pages=1),
    )
    assert sent.status_code == 201, sent.text
    doc, sha = sent.json()["id"], sent.json()["draft_sha256"]
    url = f"/v1/documents/{doc}/approvals"
    # 核稿 needs none (and records one when it comes).
    reviewed = reviewer.post(url, json={"signature": approval_jws(reviewer, doc, sha, 0)})
    assert reviewed.status_code == 200, reviewed.text
    signature = approval_jws(signer, doc, sha, 1)
    missing = signer.post(url, json={"signature": signature})
    assert missing.status_code == 403 and code(missing) == "passkey_required"
    foreign = signer.post(
        url, json={"signature": signature, "passkey": reviewer.authenticator.confirm(signature)}
    )
    assert foreign.status_code == 401 and code(foreign) == "invalid_passkey"
    signed_off = signer.post(
        url, json={"signature": signature, "passkey": signer.authenticator.confirm(signature)}
    )
    assert signed_off.status_code == 200, signed_off.text
    assert signed_off.json()["outcome"] == "signed_off"
    approvals = [e for e in events(gateway, "approval.approved") if e.get("passkey")]
    assert any(e["passkey"]["challenge"] == step_up_challenge(signature) for e in approvals)

    seal_url = f"/v1/documents/{doc}/seal"
    assert code(keeper.post(seal_url)) == "passkey_required"
    request = seal_request(keeper, doc, sha)
    alone = keeper.post(seal_url, json={"signature": request})
    assert alone.status_code == 403 and code(alone) == "passkey_required"
    wrong_doc = seal_request(keeper, str(uuid.uuid4()), sha)
    bound = keeper.post(
        seal_url, json={"signature": wrong_doc, "passkey": keeper.authenticator.confirm(wrong_doc)}
    )
    assert bound.status_code == 401 and code(bound) == "invalid_signature"
    replay = keeper.authenticator.confirm(request)
    sealed = keeper.post(seal_url, json={"signature": request, "passkey": replay})
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["status"] == "dispatched"
    [used] = [e for e in events(gateway, "seal.used") if e.get("signature_jti")]
    assert used["passkey"]["challenge"] == step_up_challenge(request)
    for session in (drafter, reviewer, signer, keeper):
        session.close()


def test_what_a_setup_session_may_call_are_declared_routes() -> None:
    from gateway.identity.auth import SETUP_ROUTES
    from gateway.routes import routes

    declared = {(route.method, route.path) for route in routes.routes}
    assert declared >= SETUP_ROUTES, SETUP_ROUTES - declared
