"""The contract, end to end, with nothing from this repository on the client side.

An official is created on the server with ``sealhub official create --json``, then makes a
key, enrolls it, logs in and calls the API using only python-jose, ``cryptography`` for the
key pair, and the rules written in API.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws as jose_jws

from tests.auth.conftest import JWT_BEARER, sql
from tests.conftest import REPO, Gateway

# Switch to [sys.executable, "-m", "gateway"] once `sealhub` registers the command.
OFFICIAL_CLI = [sys.executable, "-m", "gateway"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class PlainClient:
    """What a third-party client writes from API.md alone."""

    def __init__(self, gateway: Gateway) -> None:
        self.base = gateway.base_url
        self.http = gateway.client()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        numbers = self.key.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
        canonical = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        self.thumbprint = b64url(hashlib.sha256(canonical).digest())

    def sign(self, claims: dict[str, Any], headers: dict[str, Any]) -> str:
        token: str = jose_jws.sign(claims, self.pem, headers=headers, algorithm="ES256")
        return token

    def dpop(self, method: str, path: str, access_token: str | None = None) -> str:
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": method,
            "htu": self.base + path,
            "iat": int(time.time()),
        }
        if access_token:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        return self.sign(claims, {"typ": "dpop+jwt", "jwk": self.jwk})


def test_official_created_on_the_server_enrolls_and_logs_in_with_plain_jose(
    gateway: Gateway,
) -> None:
    created = subprocess.run(
        [
            *OFFICIAL_CLI,
            "--data-dir",
            str(gateway.data_dir),
            "official",
            "create",
            "--department",
            "yl-jyj",
            "--name",
            "李秘书",
            "--roles",
            "clerk,leader",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": gateway.database_url, "SEALHUB_LOG_LEVEL": "warning"},
        cwd=REPO,
        timeout=120,
        check=True,
    )
    made = json.loads(created.stdout)
    official, code = made["id"], made["enrollment_code"]
    assert len(base64.urlsafe_b64decode(code + "==")) * 8 >= 128
    stored = sql(gateway, "SELECT code_hash FROM enrollment_codes WHERE official_id = $1", official)
    assert code not in stored[0]["code_hash"]  # only a hash is kept

    client = PlainClient(gateway)
    now = int(time.time())
    proof = client.sign(
        {"official": official, "enrollment_code": code, "iat": now, "jti": str(uuid.uuid4())},
        {"typ": "sealhub-enroll+jwt", "jwk": client.jwk},
    )
    enrolled = client.http.post(f"/v1/officials/{official}/keys", json={"proof": proof})
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["kid"] == client.thumbprint

    challenge = client.http.post("/v1/auth/challenge", json={"subject": official})
    assert challenge.status_code == 200
    assert 0 < challenge.json()["expires_in"] <= 120
    assertion = client.sign(
        {
            "iss": official,
            "sub": official,
            "aud": client.base + "/v1/auth/token",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            "nonce": challenge.json()["nonce"],
        },
        {"typ": "JWT", "kid": client.thumbprint},
    )
    token = client.http.post(
        "/v1/auth/token",
        data={"grant_type": JWT_BEARER, "assertion": assertion},
        headers={"DPoP": client.dpop("POST", "/v1/auth/token")},
    )
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "DPoP" and body["expires_in"] == 900
    access = body["access_token"]

    # The access token verifies against the published JWKS, by kid, with ES256 only.
    jwks = client.http.get("/.well-known/jwks.json").json()["keys"]
    header = json.loads(base64.urlsafe_b64decode(access.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    signer = next(k for k in jwks if k["kid"] == header["kid"])
    assert signer["use"] == "sig"
    claims = json.loads(jose_jws.verify(access, signer, algorithms=["ES256"]))
    assert claims["sub"] == official and claims["dept"] == "yl-jyj"
    assert claims["cnf"] == {"jkt": client.thumbprint}
    assert claims["exp"] - claims["iat"] == 900

    me = client.http.get(
        "/v1/me",
        headers={"Authorization": f"DPoP {access}", "DPoP": client.dpop("GET", "/v1/me", access)},
    )
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": official,
        "name": "李秘书",
        "department": "yl-jyj",
        "roles": ["clerk", "leader"],
        "kid": client.thumbprint,
        # A key file (no device at enrollment): passkeys never apply.
        "passkey": "not_required",
        "device": {"kind": "file", "label": None},
    }
    unit = client.http.get(
        "/v1/departments/yl",
        headers={
            "Authorization": f"DPoP {access}",
            "DPoP": client.dpop("GET", "/v1/departments/yl", access),
        },
    )
    assert unit.json()["name"] == "玉林市人民政府"

    # JSON token requests work too, and the refresh token rotates.
    refreshed = client.http.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers={"DPoP": client.dpop("POST", "/v1/auth/token")},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != body["refresh_token"]


def test_jwks_publishes_token_and_receipt_keys(gateway: Gateway) -> None:
    with gateway.client() as http:
        response = http.get("/.well-known/jwks.json")
    keys = response.json()["keys"]
    assert len(keys) >= 2
    assert all(k["use"] == "sig" and k["alg"] == "ES256" and "d" not in k for k in keys)
    assert len({k["kid"] for k in keys}) == len(keys)
    assert isinstance(httpx.Headers(response.headers).get("cache-control"), str)
