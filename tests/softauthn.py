"""A small software WebAuthn authenticator for tests: P-256 credentials, ``none``
attestation, CBOR by cbor2, clientDataJSON with the origin it is told to claim.

It produces what a browser hands to the page: a RegistrationResponseJSON from
:meth:`SoftAuthenticator.create` (given the server's ``publicKey`` creation options) and an
AuthenticationResponseJSON from :meth:`SoftAuthenticator.get` (given the challenge bytes).
Each knob an attacker (or a broken authenticator) could turn is a keyword: another origin or
RP id, no user verification, a sign count that does not grow.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def challenge_for(signed: str) -> bytes:
    """What the console puts in ``challenge`` to confirm a JWS (or a registration challenge)."""
    return hashlib.sha256(signed.encode("ascii")).digest()


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """One authenticator (a phone, a laptop's platform authenticator) for one origin."""

    origin: str
    counts: bool = True  # False: an authenticator that always reports sign count 0
    credentials: dict[bytes, Credential] = field(default_factory=dict)

    @property
    def rp_id(self) -> str:
        host = self.origin.split("://", 1)[1].rsplit(":", 1)[0]
        return host.strip("[]")

    def _auth_data(self, rp_id: str, flags: int, count: int, attested: bytes = b"") -> bytes:
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", count)
            + attested
        )

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def create(
        self,
        public_key: dict[str, object],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
    ) -> dict[str, object]:
        """``navigator.credentials.create({publicKey})``: a new resident P-256 credential."""
        rp = public_key["rp"]
        user = public_key["user"]
        assert isinstance(rp, dict) and isinstance(user, dict)
        chosen_rp = rp_id or str(rp.get("id") or self.rp_id)
        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(os.urandom(32), key, chosen_rp, unb64url(str(user["id"])))
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = bytes(16) + struct.pack(">H", len(credential.id)) + credential.id + cose
        flags = UP | AT | (UV if user_verified else 0)
        count = 1 if self.counts else 0
        credential.sign_count = count
        auth_data = self._auth_data(chosen_rp, flags, count, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(
            "webauthn.create", str(public_key["challenge"]), origin or self.origin
        )
        self.credentials[credential.id] = credential
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        challenge: bytes,
        *,
        credential: bytes | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
    ) -> dict[str, object]:
        """``navigator.credentials.get``: an assertion of *credential* (default: the only or
        newest one) over *challenge*."""
        chosen = self.credentials[credential] if credential else list(self.credentials.values())[-1]
        if sign_count is None:
            if self.counts:
                chosen.sign_count += 1
            sign_count = chosen.sign_count
        flags = UP | (UV if user_verified else 0)
        auth_data = self._auth_data(rp_id or chosen.rp_id, flags, sign_count)
        client_data = self._client_data("webauthn.get", b64url(challenge), origin or self.origin)
        signature = chosen.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(chosen.id),
            "rawId": b64url(chosen.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(chosen.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def confirm(self, signed: str, **knobs: object) -> dict[str, object]:
        """An assertion confirming the JWS (or registration challenge) *signed*."""
        return self.get(challenge_for(signed), **knobs)  # type: ignore[arg-type]
