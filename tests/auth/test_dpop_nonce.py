"""Server DPoP nonces (RFC 9449 section 8) with ``SEALHUB_DPOP_NONCE=required``.

A proof without a current server nonce is refused with ``use_dpop_nonce`` and a fresh nonce
in ``DPoP-Nonce``, at the token endpoint and on every authenticated request; the SDK picks
the nonce up and retries by itself. (Nonce expiry and purpose separation are the
``ChallengeNonces`` tests in tests/test_challenge.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sealhub_sdk import Client, DeviceKey

from keys.challenge import ChallengeNonces
from keys.jws import b64url_encode
from tests.auth.conftest import JWT_BEARER, problem
from tests.conftest import Gateway, Session, create_official_in_db, new_session, start_gateway


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url, tmp_path_factory.mktemp("gw"), env={"SEALHUB_DPOP_NONCE": "required"}
    )
    try:
        yield running
    finally:
        running.stop()


def refused_for_nonce(response: httpx.Response) -> str:
    """The refusal RFC 9449 describes; returns the fresh nonce it carries."""
    problem(response, 401, "use_dpop_nonce")
    assert 'error="use_dpop_nonce"' in response.headers["WWW-Authenticate"]
    nonce = response.headers["DPoP-Nonce"]
    assert 20 <= len(nonce) <= 200
    return nonce


def enrolled(gateway: Gateway, department: str = "yl-jyj") -> Session:
    official, code = create_official_in_db(gateway.database_url, department, ["clerk"])
    session = new_session(gateway, official)
    assert session.enroll(code).status_code == 201
    return session


def test_token_endpoint_and_requests_need_the_server_nonce(gateway: Gateway) -> None:
    with enrolled(gateway) as session:
        form = {"grant_type": JWT_BEARER, "assertion": session.assertion(session.challenge())}
        nonce = refused_for_nonce(session.token_request(form))
        # The same assertion may be sent again: the refusal spent nothing.
        with_nonce = session.proof("POST", "/v1/auth/token", nonce=nonce)
        answer = session.token_request(form, dpop=with_nonce)
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]

        def get_me(proof_nonce: str | None) -> httpx.Response:
            claims = {} if proof_nonce is None else {"nonce": proof_nonce}
            proof = session.proof("GET", "/v1/me", access_token=token, **claims)
            return session.client.get(
                "/v1/me", headers={"Authorization": f"DPoP {token}", "DPoP": proof}
            )

        fresh = refused_for_nonce(get_me(None))
        accepted = get_me(fresh)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["id"] == session.official_id
        # A fresh nonce needs no replacement yet; the same nonce serves the next proof too.
        assert "DPoP-Nonce" not in accepted.headers
        assert get_me(fresh).status_code == 200


def test_forged_and_foreign_nonces_are_refused(gateway: Gateway) -> None:
    with enrolled(gateway) as session:
        form = {"grant_type": JWT_BEARER, "assertion": session.assertion(session.challenge())}
        nonce = refused_for_nonce(session.token_request(form))
        elsewhere = ChallengeNonces(bytes(32), purpose="dpop")
        forged = nonce[:-4] + ("AAAA" if not nonce.endswith("AAAA") else "BBBB")
        bogus = {
            "forged": forged,
            "random": b64url_encode(b"\x01" + bytes(56)),
            # Minted by another gateway (another key) for the same purpose.
            "foreign": elsewhere.issue_nonce("", datetime.now(UTC)),
            # A login challenge nonce of this very gateway is not a DPoP nonce.
            "login challenge": session.challenge(),
        }
        for what, value in bogus.items():
            proof = session.proof("POST", "/v1/auth/token", nonce=value)
            answer = session.token_request(form, dpop=proof)
            assert answer.status_code == 401, what
            assert answer.json()["code"] == "use_dpop_nonce", what
            assert answer.headers["DPoP-Nonce"] != value, what
        proof = session.proof("POST", "/v1/auth/token", nonce=nonce)
        assert session.token_request(form, dpop=proof).status_code == 200


def test_the_sdk_follows_the_server_nonce(gateway: Gateway) -> None:
    official, code = create_official_in_db(gateway.database_url, "yl-gaj", ["clerk"])
    with Client(
        gateway.base_url, ca_file=gateway.ca_path, key=DeviceKey.generate(), official_id=official
    ) as client:
        client.enroll(official, code)
        client.login()
        assert client.me().department == "yl-gaj"
        assert client.department("yl-jyj").name
