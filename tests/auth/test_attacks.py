"""One test per attack on key login and DPoP, each over real HTTPS against a real gateway.

Every refusal is asserted by status, stable ``code`` and the failed check (``reason``), so a
test cannot pass because some other check happened to refuse the request.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys.jws import TYP_ENROLL, public_jwk, sign_jws
from tests.auth.conftest import JWT_BEARER, audit_events, problem, sql
from tests.conftest import Gateway, Session, create_official_in_db, login_as, new_session
from tests.plain_jose import b64, es_sign, hs256_sign, jwk_of, unsigned

ME = "/v1/me"


def with_token(session: Session, token: str, path: str = ME) -> dict[str, str]:
    """Headers presenting *token* with a correct, fresh DPoP proof for it."""
    return {
        "Authorization": f"DPoP {token}",
        "DPoP": session.proof("GET", path, access_token=token),
    }


def access_claims(session: Session, gateway: Gateway) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": gateway.base_url,
        "aud": gateway.base_url,
        "sub": session.official_id,
        "dept": "yl-jyj",
        "roles": ["clerk"],
        "cnf": {"jkt": session.kid},
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }


def gateway_token_kid(session: Session) -> str:
    header = json.loads(base64.urlsafe_b64decode(session.access_token.split(".")[0] + "=="))
    kid: str = header["kid"]
    return kid


def gateway_public_key(session: Session) -> ec.EllipticCurvePublicKey:
    kid = gateway_token_kid(session)
    keys = session.client.get("/.well-known/jwks.json").json()["keys"]
    jwk = next(k for k in keys if k["kid"] == kid)
    x = int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="), "big")
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


@pytest.fixture
def clerk(gateway: Gateway) -> Any:
    with login_as(gateway, "yl-jyj", ["clerk"]) as session:
        yield session


# --- forged access tokens -----------------------------------------------------------------


def test_access_token_with_alg_none_is_refused(gateway: Gateway, clerk: Session) -> None:
    forged = unsigned(
        {"alg": "none", "typ": "at+jwt", "kid": gateway_token_kid(clerk)},
        access_claims(clerk, gateway),
    )
    problem(
        clerk.client.get(ME, headers=with_token(clerk, forged)),
        401,
        "invalid_token",
        "alg_not_allowed",
    )


@pytest.mark.parametrize("encoding", ["pem", "jwk_json", "der"])
def test_hs256_signed_with_the_gateway_public_key_is_refused(
    gateway: Gateway, clerk: Session, encoding: str
) -> None:
    """python-jose issue 414: a verifier handed the public key as bytes may take it as an
    HMAC secret. Our verifier decides alg before any key is touched."""
    public = gateway_public_key(clerk)
    secret = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk_json": json.dumps(jwk_of(public)).encode(),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }[encoding]
    forged = hs256_sign(
        secret,
        {"alg": "HS256", "typ": "at+jwt", "kid": gateway_token_kid(clerk)},
        access_claims(clerk, gateway),
    )
    problem(
        clerk.client.get(ME, headers=with_token(clerk, forged)),
        401,
        "invalid_token",
        "alg_not_allowed",
    )


def test_access_token_from_another_key_is_refused(gateway: Gateway, clerk: Session) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    claims = access_claims(clerk, gateway)
    same_kid = es_sign(
        attacker, {"alg": "ES256", "typ": "at+jwt", "kid": gateway_token_kid(clerk)}, claims
    )
    problem(
        clerk.client.get(ME, headers=with_token(clerk, same_kid)),
        401,
        "invalid_token",
        "bad_signature",
    )
    own_kid = es_sign(attacker, {"alg": "ES256", "typ": "at+jwt", "kid": "attacker"}, claims)
    problem(
        clerk.client.get(ME, headers=with_token(clerk, own_kid)),
        401,
        "invalid_token",
        "unknown_key",
    )
    embedded = es_sign(
        attacker,
        {
            "alg": "ES256",
            "typ": "at+jwt",
            "kid": gateway_token_kid(clerk),
            "jwk": jwk_of(attacker.public_key()),
        },
        claims,
    )
    problem(
        clerk.client.get(ME, headers=with_token(clerk, embedded)),
        401,
        "invalid_token",
        "header_not_allowed",
    )


def test_stolen_token_without_the_key_is_useless(gateway: Gateway, clerk: Session) -> None:
    thief = new_session(gateway, clerk.official_id)
    headers = {
        "Authorization": f"DPoP {clerk.access_token}",
        "DPoP": thief.proof("GET", ME, access_token=clerk.access_token),
    }
    problem(clerk.client.get(ME, headers=headers), 401, "invalid_dpop", "key_not_bound")
    bearer = {"Authorization": f"Bearer {clerk.access_token}"}
    problem(clerk.client.get(ME, headers=bearer), 401, "invalid_token", "missing")


# --- login replay -------------------------------------------------------------------------


def test_replayed_nonce_is_refused(gateway: Gateway, clerk: Session) -> None:
    nonce = clerk.challenge()
    first = clerk.token_request({"grant_type": JWT_BEARER, "assertion": clerk.assertion(nonce)})
    assert first.status_code == 200, first.text
    again = clerk.token_request({"grant_type": JWT_BEARER, "assertion": clerk.assertion(nonce)})
    problem(again, 401, "replayed_nonce")


def test_replayed_assertion_jti_is_refused(gateway: Gateway, clerk: Session) -> None:
    assertion = clerk.assertion(clerk.challenge())
    assert (
        clerk.token_request({"grant_type": JWT_BEARER, "assertion": assertion}).status_code == 200
    )
    replay = clerk.token_request({"grant_type": JWT_BEARER, "assertion": assertion})
    problem(replay, 401, "replayed_assertion")


def test_replayed_dpop_proof_is_refused(gateway: Gateway, clerk: Session) -> None:
    headers = clerk.headers("GET", ME)
    assert clerk.client.get(ME, headers=headers).status_code == 200
    problem(clerk.client.get(ME, headers=headers), 401, "replayed_dpop")


def test_dpop_for_another_url_or_method_is_refused(gateway: Gateway, clerk: Session) -> None:
    auth = {"Authorization": f"DPoP {clerk.access_token}"}
    other_url = clerk.proof("GET", "/v1/departments", access_token=clerk.access_token)
    problem(
        clerk.client.get(ME, headers={**auth, "DPoP": other_url}),
        401,
        "invalid_dpop",
        "htu_mismatch",
    )
    other_host = clerk.proof(
        "GET", ME, access_token=clerk.access_token, htu="https://evil.example" + ME
    )
    problem(
        clerk.client.get(ME, headers={**auth, "DPoP": other_host}),
        401,
        "invalid_dpop",
        "htu_mismatch",
    )
    other_method = clerk.proof("POST", ME, access_token=clerk.access_token)
    problem(
        clerk.client.get(ME, headers={**auth, "DPoP": other_method}),
        401,
        "invalid_dpop",
        "htm_mismatch",
    )


def test_dpop_proof_carrying_a_private_key_is_refused(gateway: Gateway, clerk: Session) -> None:
    private_jwk = {
        **public_jwk(clerk.key.public_key()),
        "d": b64(clerk.key.private_numbers().private_value.to_bytes(32, "big")),
    }
    from keys.dpop import access_token_hash

    proof = es_sign(
        clerk.key,
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": private_jwk},
        {
            "jti": uuid.uuid4().hex,
            "htm": "GET",
            "htu": gateway.base_url + ME,
            "iat": int(time.time()),
            "ath": access_token_hash(clerk.access_token),
        },
    )
    headers = {"Authorization": f"DPoP {clerk.access_token}", "DPoP": proof}
    problem(clerk.client.get(ME, headers=headers), 401, "invalid_dpop", "private_jwk")


def test_expired_assertion_is_refused(gateway: Gateway, clerk: Session) -> None:
    past = int(time.time()) - 600
    assertion = clerk.assertion(clerk.challenge(), iat=past, exp=past + 120)
    problem(
        clerk.token_request({"grant_type": JWT_BEARER, "assertion": assertion}),
        401,
        "invalid_assertion",
        "expired",
    )
    too_long = clerk.assertion(clerk.challenge(), exp=int(time.time()) + 3600)
    problem(
        clerk.token_request({"grant_type": JWT_BEARER, "assertion": too_long}),
        401,
        "invalid_assertion",
        "lifetime_too_long",
    )


def test_login_assertion_with_alg_none_or_hs256_is_refused(
    gateway: Gateway, clerk: Session
) -> None:
    claims = json.loads(
        base64.urlsafe_b64decode(clerk.assertion(clerk.challenge()).split(".")[1] + "==")
    )
    none = unsigned({"alg": "none", "typ": "JWT", "kid": clerk.kid}, claims)
    problem(
        clerk.token_request({"grant_type": JWT_BEARER, "assertion": none}),
        401,
        "invalid_assertion",
        "alg_not_allowed",
    )
    public_pem = clerk.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs = hs256_sign(public_pem, {"alg": "HS256", "typ": "JWT", "kid": clerk.kid}, claims)
    problem(
        clerk.token_request({"grant_type": JWT_BEARER, "assertion": hs}),
        401,
        "invalid_assertion",
        "alg_not_allowed",
    )


def test_proof_of_another_purpose_presented_as_login_is_refused(
    gateway: Gateway, clerk: Session
) -> None:
    """An enrollment proof and a DPoP proof, both genuinely signed by the official's key,
    carrying every login claim: refused for their typ."""
    nonce = clerk.challenge()
    now = int(time.time())
    claims = {
        "iss": clerk.official_id,
        "sub": clerk.official_id,
        "aud": gateway.base_url + "/v1/auth/token",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        "nonce": nonce,
    }
    for typ in (TYP_ENROLL, "dpop+jwt", "sealhub-approval+jwt", "at+jwt"):
        other = sign_jws(claims, clerk.key, typ=typ, kid=clerk.kid)
        problem(
            clerk.token_request({"grant_type": JWT_BEARER, "assertion": other}),
            401,
            "invalid_assertion",
            "typ_mismatch",
        )


def test_login_with_a_key_of_another_official_is_refused(gateway: Gateway, clerk: Session) -> None:
    other = login_as(gateway, "yl-jyj", ["clerk"])
    assertion = other.assertion(clerk.challenge(), iss=clerk.official_id, sub=clerk.official_id)
    response = other.token_request({"grant_type": JWT_BEARER, "assertion": assertion})
    problem(response, 401, "invalid_assertion", "unknown_key")
    other.close()


# --- key lifecycle ------------------------------------------------------------------------


def test_revoked_key_mid_session_is_refused_at_once(gateway: Gateway, clerk: Session) -> None:
    assert clerk.get(ME).status_code == 200
    refresh_token = clerk.refresh_token
    revoked = clerk.delete(f"/v1/officials/{clerk.official_id}/keys/{clerk.kid}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    problem(clerk.get(ME), 401, "invalid_token", "key_revoked")
    problem(clerk.refresh(refresh_token), 401, "invalid_grant")
    problem(clerk.login(), 401, "invalid_assertion", "key_revoked")
    events = [e for e in audit_events(gateway, "key.revoked") if e["kid"] == clerk.kid]
    assert len(events) == 1


def test_refresh_token_reuse_revokes_the_family(gateway: Gateway, clerk: Session) -> None:
    first = clerk.refresh_token
    assert clerk.refresh().status_code == 200
    second = clerk.refresh_token
    problem(clerk.refresh(first), 401, "refresh_token_reused")
    problem(clerk.refresh(second), 401, "invalid_grant")
    rows = sql(
        gateway,
        "SELECT revoke_reason FROM refresh_families WHERE official_id = $1",
        clerk.official_id,
    )
    assert [row["revoke_reason"] for row in rows] == ["reused"]
    # The access token is still bound to a valid key: reuse ends the family, not the key.
    assert clerk.login().status_code == 200


def test_refresh_token_with_another_key_is_refused(gateway: Gateway, clerk: Session) -> None:
    thief = new_session(gateway, clerk.official_id)
    problem(thief.refresh(clerk.refresh_token), 401, "invalid_grant")
    assert clerk.refresh().status_code == 200  # not counted as reuse


# --- enrollment ---------------------------------------------------------------------------


def test_enrollment_code_cannot_be_reused(gateway: Gateway) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    laptop, phone = new_session(gateway, official), new_session(gateway, official)
    assert laptop.enroll(code).status_code == 201
    problem(phone.enroll(code), 401, "enrollment_code_used")
    problem(laptop.enroll(code), 401, "enrollment_code_used")


def test_expired_enrollment_code_is_refused(gateway: Gateway) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    expires = sql(
        gateway,
        "SELECT expires_at - created_at AS life FROM enrollment_codes WHERE official_id = $1",
        official,
    )[0]["life"]
    assert expires.total_seconds() == 72 * 3600
    sql(
        gateway,
        "UPDATE enrollment_codes SET expires_at = now() - interval '1 second'"
        " WHERE official_id = $1",
        official,
    )
    problem(new_session(gateway, official).enroll(code), 401, "enrollment_code_expired")


def test_enrollment_code_brute_force_locks_after_five_attempts(gateway: Gateway) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    session = new_session(gateway, official)
    for attempt in range(5):
        problem(session.enroll(f"guess-{attempt}-{code[:8]}"), 401, "enrollment_code_invalid")
    problem(session.enroll(code), 401, "enrollment_code_locked")
    assert (
        sql(
            gateway, "SELECT failed_attempts FROM enrollment_codes WHERE official_id = $1", official
        )[0]["failed_attempts"]
        == 5
    )


def test_one_thumbprint_belongs_to_one_official(gateway: Gateway) -> None:
    first, first_code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    second, second_code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    session = new_session(gateway, first)
    assert session.enroll(first_code).status_code == 201
    stolen = Session(gateway, second, session.key)
    problem(stolen.enroll(second_code), 409, "key_already_enrolled")


def test_enrollment_proof_with_private_key_is_refused(gateway: Gateway) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {
        **jwk_of(key.public_key()),
        "d": b64(key.private_numbers().private_value.to_bytes(32, "big")),
    }
    proof = es_sign(
        key,
        {"alg": "ES256", "typ": TYP_ENROLL, "jwk": jwk},
        {"official": official, "enrollment_code": code, "iat": int(time.time()), "jti": "x1"},
    )
    with new_session(gateway, official) as session:
        response = session.client.post(f"/v1/officials/{official}/keys", json={"proof": proof})
    problem(response, 401, "invalid_enrollment_proof", "private_jwk")


# --- limits and supervision ---------------------------------------------------------------


def test_naming_an_official_cannot_lock_it_out(gateway: Gateway, clerk: Session) -> None:
    """Someone who knows an official's id floods challenges and login attempts naming it,
    with its own key: neither counts against the official, who still logs in at once."""
    attacker = new_session(gateway, clerk.official_id)  # the id, not the key
    for _ in range(15):
        assert (
            attacker.client.post(
                "/v1/auth/challenge", json={"subject": clerk.official_id}
            ).status_code
            == 200
        )
        forged = attacker.token_request(
            {"grant_type": JWT_BEARER, "assertion": attacker.assertion("n")}
        )
        problem(forged, 401, "invalid_assertion", "unknown_key")
    attacker.close()
    logged_in = clerk.login()
    assert logged_in.status_code == 200, logged_in.text
    assert not sql(gateway, "SELECT 1 FROM auth_failures WHERE subject = $1", clerk.official_id)


def test_logins_are_rate_limited_per_official_once_the_key_signed(
    gateway: Gateway, clerk: Session
) -> None:
    """The per-official limit still bounds the key holder itself (10 a minute)."""
    if time.time() % 60 > 40:  # one clock minute for the whole burst
        time.sleep(61 - time.time() % 60)
    statuses = [clerk.login().status_code for _ in range(11)]
    assert 429 in statuses, statuses
    assert statuses.count(200) <= 10


def test_failed_logins_are_aggregated_per_source_and_minute(gateway: Gateway) -> None:
    with gateway.client() as http:
        before = len(audit_events(gateway, "login.failed"))
        for _ in range(6):
            response = http.post(
                "/v1/auth/token",
                data={"grant_type": JWT_BEARER, "assertion": "a.b.c"},
                headers={"DPoP": "x.y.z"},
            )
            assert response.status_code == 401
    assert len(audit_events(gateway, "login.failed")) - before <= 2  # per minute row, not six
    counted = sql(
        gateway, "SELECT sum(count) AS n FROM auth_failures WHERE kind = 'login' AND subject = ''"
    )
    assert counted[0]["n"] >= 6
