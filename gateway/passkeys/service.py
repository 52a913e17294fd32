"""Passkeys (WebAuthn) as the second factor of console keys: registration, removal, the
department setting that makes them required, and the checks logins and signed acts call.

Who must use one: console (``browser``) logins of officials holding ``admin``, ``inspector``,
``leader`` or ``seal_keeper`` in a department whose ``passkey_required`` is on (the
default), and every console login of an official that has an active passkey. Key file
logins (SDK, CLI) never do.

Registering needs a console key's session and is allowed when the official never had a
passkey, when the session's key was enrolled after its newest passkey, removed ones included
(a lost passkey is recovered through a new enrollment code, so the four-eyes rules of keys
apply; one manager's removal frees no older key), or with a step-up by a current passkey.
Removal: the official itself or its managers. A key under passkeys (an active one, or a
removed one newer than the key) stays under them: its step-ups are demanded even when none
is left.

Every assertion is user-verified, for this relying party and origin, and bound to what it
confirms: its challenge is ``SHA-256(ASCII of the JWS)`` (the login assertion, the approval,
the receipt, the seal request; for a registration step-up the registration challenge), so
it can confirm nothing else; a credential's sign count must grow when the authenticator
keeps one. Registration challenges are stateless HMAC nonces bound to the official (at most
5 minutes), redeemed once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
from webauthn import (
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gateway.identity.access import AccessLog, Clock
from gateway.identity.errors import NotFound
from gateway.identity.nonces import NonceIssuers
from gateway.identity.principal import Caller, Principal
from gateway.identity.service import OfficialsService
from gateway.passkeys.errors import (
    ConsoleKeyRequired,
    InvalidPasskey,
    PasskeyExists,
    PasskeyRequired,
    StepUpRequired,
)
from keys.challenge import ChallengeError
from keys.jws import b64url_decode, b64url_encode
from storage import audit_events as events
from storage import passkeys as rows
from storage.audit_outbox import AuditSink
from storage.db import DbConnection
from storage.identity import keys as key_rows
from storage.identity import officials as official_rows
from storage.identity import refresh as refresh_rows
from storage.identity.keys import KeyOwner
from storage.identity.officials import Official
from storage.passkeys import DepartmentSettings, Passkey
from storage.vocabulary import Role

PasskeyState = Literal["verified", "setup_required", "not_required"]

# Console logins of officials holding one of these need a passkey where the department says so.
PASSKEY_ROLES: frozenset[Role] = frozenset(
    {Role.ADMIN, Role.INSPECTOR, Role.LEADER, Role.SEAL_KEEPER}
)
REGISTRATION_CHALLENGE_SECONDS = 300
_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_REFUSED = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)


@dataclass(frozen=True)
class RelyingParty:
    """The WebAuthn relying party: the public URL's host name and origin."""

    id: str
    origin: str
    name: str = "sealhub"

    @classmethod
    def of(cls, public_origin: str) -> RelyingParty:
        parts = urlsplit(public_origin)
        return cls(id=parts.hostname or "localhost", origin=f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True)
class StepUp:
    """A verified assertion, as the audit event of the step it confirmed records it."""

    passkey: uuid.UUID
    credential: str
    sign_count: int
    challenge: str

    def details(self) -> dict[str, Any]:
        return {
            "credential": self.credential,
            "sign_count": self.sign_count,
            "challenge": self.challenge,
        }


def challenge_for(signed: str) -> bytes:
    """The WebAuthn challenge that confirms *signed*: SHA-256 of its ASCII text."""
    try:
        return hashlib.sha256(signed.encode("ascii")).digest()
    except UnicodeEncodeError:
        raise InvalidPasskey("challenge_mismatch", "a confirmed JWS is ASCII") from None


def removal_text(passkey_id: uuid.UUID) -> str:
    """What a step-up confirming the removal of a passkey signs over."""
    return f"remove-passkey:{passkey_id}"


def _same_origin_only(client_data_json: bytes) -> None:
    """The console is never framed (``frame-ancestors 'none'``): a response made in a
    cross-origin frame (``crossOrigin: true``) is someone else's page asking (py_webauthn
    does not check it)."""
    try:
        cross_origin = parse_client_data_json(client_data_json).cross_origin
    except _REFUSED:
        raise InvalidPasskey("malformed", "clientDataJSON is not valid") from None
    if cross_origin:
        raise InvalidPasskey("cross_origin", "the response was made in a cross-origin frame")


def _user_handle(official_id: str) -> bytes:
    return official_id.encode("utf-8")


def _subject(official_id: str) -> str:
    return f"register:{official_id}"


def _newest(active: list[Passkey]) -> datetime | None:
    return max((item.created_at for item in active), default=None)


class PasskeyService:
    """Registration, removal and department settings; the checks of logins and step-ups."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        audit: AuditSink,
        clock: Clock,
        access: AccessLog,
        nonces: NonceIssuers,
        officials: OfficialsService,
        relying_party: RelyingParty,
    ) -> None:
        self._pool = pool
        self._audit = audit
        self._clock = clock
        self._access = access
        self._nonces = nonces
        self._officials = officials
        self._rp = relying_party

    # --- checks other services call, on their connection and in their transaction --------

    async def verify(
        self,
        connection: DbConnection,
        official_id: str,
        presented: object,
        signed: str,
        now: datetime,
    ) -> StepUp:
        """A user-verified assertion of an active passkey of *official_id* over *signed*; its
        new sign count is kept (the row stays locked until the caller's transaction ends)."""
        challenge = challenge_for(signed)
        if not isinstance(presented, str | dict):
            raise InvalidPasskey("malformed", "passkey must be an AuthenticationResponseJSON")
        try:
            credential = parse_authentication_credential_json(presented)
        except _REFUSED:
            raise InvalidPasskey(
                "malformed", "passkey is not an AuthenticationResponseJSON"
            ) from None
        _same_origin_only(bytes(credential.response.client_data_json))
        found = await rows.by_credential(connection, credential.raw_id)
        if found is None or found.official_id != official_id or not found.active:
            raise InvalidPasskey("unknown_credential", "not an active passkey of this official")
        handle = credential.response.user_handle
        if handle is not None and bytes(handle) != _user_handle(official_id):
            raise InvalidPasskey("user_mismatch", "the passkey answered for another user")
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=self._rp.origin,
                credential_public_key=found.public_key,
                credential_current_sign_count=found.sign_count,
                require_user_verification=True,
            )
        except _REFUSED as exc:
            raise InvalidPasskey(
                "assertion_refused", str(exc) or "the assertion is not valid"
            ) from None
        await rows.record_use(connection, found.id, sign_count=verified.new_sign_count, now=now)
        return StepUp(
            found.id,
            b64url_encode(found.credential_id),
            verified.new_sign_count,
            b64url_encode(challenge),
        )

    async def step_up(
        self,
        connection: DbConnection,
        principal: Principal,
        signed: str,
        presented: object | None,
        *,
        needed: bool,
        now: datetime,
    ) -> StepUp | None:
        """The step-up confirming *signed*: verified when presented; when absent, refused
        (403 ``passkey_required``) if the act *needed* one and the caller is a console key
        under passkeys (``storage.passkeys.binds``)."""
        if presented is not None:
            return await self.verify(connection, principal.official_id, presented, signed, now)
        if (
            needed
            and principal.console
            and await rows.binds(connection, principal.official_id, principal.kid)
        ):
            raise StepUpRequired()
        return None

    async def _required(self, connection: DbConnection, official: Official) -> bool:
        if not set(official.roles) & PASSKEY_ROLES:
            return False
        settings = await rows.department_settings(connection, official.department)
        return settings.passkey_required

    async def login_state(
        self,
        connection: DbConnection,
        owner: KeyOwner,
        assertion: str,
        presented: str | None,
        now: datetime,
    ) -> tuple[PasskeyState, StepUp | None]:
        """A login's passkey state. A console login with a passkey (its challenge the login
        assertion) is ``verified``; without one it is refused (401 ``passkey_required``)
        when the official has an active passkey older than the key, else it may only set
        one up when the official needs one. Key files need none and may not send one."""
        if owner.key.device_kind != "browser":
            if presented is not None:
                raise InvalidPasskey("not_a_console_key", "passkeys are for console keys")
            return "not_required", None
        if presented is not None:
            return "verified", await self.verify(
                connection, owner.official.id, presented, assertion, now
            )
        every = await rows.passkeys_of(connection, owner.official.id)
        newest = _newest([item for item in every if item.active])
        if newest is not None:
            if owner.key.created_at > newest:
                return "setup_required", None  # a key enrolled anew after a lost passkey
            raise PasskeyRequired()
        removed = _newest(every)
        if removed is not None and owner.key.created_at < removed:
            # Its passkeys were removed: it may not register another (a new key may).
            return "setup_required", None
        if await self._required(connection, owner.official):
            return "setup_required", None
        return "not_required", None

    async def refresh_state(
        self, connection: DbConnection, owner: KeyOwner, family_state: str
    ) -> PasskeyState:
        """The state a refreshed token carries: the family's, unless a family that needed no
        passkey now does (one was registered since, or the department turned the setting
        on): then a new login (with it) or a restricted session."""
        if owner.key.device_kind != "browser" or family_state == "verified":
            return "verified" if family_state == "verified" else "not_required"
        if family_state == "setup_required":
            return "setup_required"
        if await rows.binds(connection, owner.official.id, owner.key.kid):
            raise PasskeyRequired("a passkey was registered since this login: log in with it")
        if await self._required(connection, owner.official):
            return "setup_required"
        return "not_required"

    # --- registration ---------------------------------------------------------------------

    def console_only(self, caller: Caller) -> Principal:
        principal = caller.official
        if not principal.console:
            raise ConsoleKeyRequired()
        return principal

    async def registration_options(self, caller: Caller) -> dict[str, Any]:
        """PublicKeyCredentialCreationOptions (JSON, base64url fields) with a fresh challenge."""
        principal = self.console_only(caller)
        now = self._clock()
        async with self._pool.acquire() as connection:
            official = await official_rows.get_official(connection, principal.official_id)
            existing = await rows.passkeys_of(connection, official.id, active_only=True)
        nonce = (await self._nonces.passkey(now)).issue_nonce(_subject(official.id), now)
        options = generate_registration_options(
            rp_id=self._rp.id,
            rp_name=self._rp.name,
            user_id=_user_handle(official.id),
            user_name=official.name,
            user_display_name=official.name,
            challenge=b64url_decode(nonce),
            timeout=REGISTRATION_CHALLENGE_SECONDS * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=item.credential_id) for item in existing
            ],
            supported_pub_key_algs=_ALGORITHMS,
        )
        parsed: dict[str, Any] = json.loads(options_to_json(options))
        return parsed

    async def register(
        self, caller: Caller, credential: Mapping[str, Any], label: str, step_up: object | None
    ) -> Passkey:
        """The new passkey, registered under the registration rule (module docstring)."""
        principal = self.console_only(caller)
        now = self._clock()
        try:
            parsed = parse_registration_credential_json(dict(credential))
            challenge = parse_client_data_json(bytes(parsed.response.client_data_json)).challenge
        except _REFUSED:
            raise InvalidPasskey(
                "malformed", "credential is not a RegistrationResponseJSON"
            ) from None
        _same_origin_only(bytes(parsed.response.client_data_json))
        nonce = b64url_encode(challenge)
        try:
            expires = (await self._nonces.passkey(now)).check_nonce(
                nonce, _subject(principal.official_id), now, REGISTRATION_CHALLENGE_SECONDS
            )
        except ChallengeError as exc:
            raise InvalidPasskey(
                f"challenge_{exc.reason}", "the registration challenge is not valid: ask again"
            ) from None
        try:
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=self._rp.origin,
                require_user_verification=True,
                supported_pub_key_algs=_ALGORITHMS,
            )
        except _REFUSED as exc:
            raise InvalidPasskey("registration_refused", str(exc) or "not valid") from None
        async with self._pool.acquire() as connection, connection.transaction():
            official = await official_rows.get_official(
                connection, principal.official_id, for_update=True
            )
            via, confirmed = await self._may_register(connection, principal, nonce, step_up, now)
            if not await rows.spend_challenge(connection, official.id, nonce, expires_at=expires):
                raise InvalidPasskey("challenge_used", "this registration challenge was used")
            added = await rows.insert_passkey(
                connection,
                official_id=official.id,
                credential_id=verified.credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                label=label,
                transports=[str(t.value) for t in parsed.response.transports or []],
                registered_with=principal.kid,
                now=now,
            )
            if added is None:
                raise PasskeyExists()
            await self._audit.record(
                connection,
                events.passkey_registered(
                    principal,
                    now,
                    department=official.department,
                    official=official.id,
                    passkey=added.id,
                    credential=b64url_encode(added.credential_id),
                    label=label,
                    via=via,
                    step_up=None if confirmed is None else confirmed.details(),
                ),
            )
        return added

    async def _may_register(
        self,
        connection: DbConnection,
        principal: Principal,
        nonce: str,
        step_up: object | None,
        now: datetime,
    ) -> tuple[str, StepUp | None]:
        # Removed passkeys count: a manager's removal must not let a key that was under
        # them (perhaps stolen) register one as if it were the first.
        newest = _newest(await rows.passkeys_of(connection, principal.official_id))
        if newest is None:
            return "first", None
        if step_up is not None:
            return "step_up", await self.verify(
                connection, principal.official_id, step_up, nonce, now
            )
        owner = await key_rows.key_owner(connection, principal.kid)
        if owner is not None and owner.key.created_at > newest:
            return "new_key", None
        raise StepUpRequired("confirm with a current passkey (passkey), or enroll this device anew")

    # --- listing and removal ----------------------------------------------------------------

    async def reachable(self, caller: Caller, official_id: str) -> Official:
        """The official, when the caller is it or one of its managers (404 or 403 else)."""
        return await self._own_or_managed(caller, official_id)

    async def _own_or_managed(self, caller: Caller, official_id: str) -> Official:
        if official_id == caller.official.official_id:
            return await self._officials.official(caller, official_id)
        return await self._officials.managed_official(caller, official_id)

    async def list(self, caller: Caller, official_id: str) -> list[Passkey]:
        official = await self._own_or_managed(caller, official_id)
        async with self._pool.acquire() as connection:
            return await rows.passkeys_of(connection, official.id)

    async def remove(
        self, caller: Caller, official_id: str, passkey_id: str, step_up: object | None = None
    ) -> Passkey:
        """Remove a passkey. The official itself, from a console key, confirms with a
        current passkey (*step_up*, challenge ``SHA-256("remove-passkey:" + id)``) unless its
        key was enrolled after the newest one: else whoever sits at an unlocked console
        could drop the passkey and with it every step-up. Its managers need none; their
        removal ends the official's passkey-verified refresh families."""
        official = await self._own_or_managed(caller, official_id)
        try:
            wanted = uuid.UUID(passkey_id)
        except ValueError:
            raise NotFound() from None
        principal = caller.official
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            found = [p for p in await rows.passkeys_of(connection, official.id) if p.id == wanted]
            if not found:
                raise NotFound()
            if official.id == principal.official_id and principal.console and found[0].active:
                await self._may_register(connection, principal, removal_text(wanted), step_up, now)
            removed = await rows.revoke_passkey(connection, official.id, wanted, now=now)
            assert removed is not None
            if removed.revoked_at == now and official.id != principal.official_id:
                # A manager takes a (lost or stolen) passkey away: the sessions it verified
                # end with it, so a thief's verified session cannot refresh on for hours.
                await refresh_rows.revoke_passkey_families(
                    connection, official.id, now=now, reason="passkey_removed"
                )
            if removed.revoked_at == now:
                await self._audit.record(
                    connection,
                    events.passkey_removed(
                        principal,
                        now,
                        department=official.department,
                        official=official.id,
                        passkey=removed.id,
                        credential=b64url_encode(removed.credential_id),
                    ),
                )
        return removed

    # --- department settings ------------------------------------------------------------------

    async def settings(self, caller: Caller, department: str) -> DepartmentSettings:
        """The settings, for an admin or the department's dept_admin (others: 404)."""
        principal = caller.official
        if Role.ADMIN not in principal.roles and principal.department != department:
            raise await self._access.hide(caller, "other_department")
        async with self._pool.acquire() as connection:
            if not await official_rows.department_exists(connection, department):
                raise NotFound()
            return await rows.department_settings(connection, department)

    async def change_settings(
        self, caller: Caller, department: str, *, passkey_required: bool
    ) -> DepartmentSettings:
        await self.settings(caller, department)
        principal = caller.official
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            await rows.lock_department_settings(connection, department)
            before = await rows.department_settings(connection, department)
            after = await rows.put_department_settings(
                connection,
                department,
                passkey_required=passkey_required,
                now=now,
                updated_by=principal.official_id,
            )
            await self._audit.record(
                connection,
                events.department_settings_changed(
                    principal,
                    now,
                    department=department,
                    before={"passkey_required": before.passkey_required},
                    after={"passkey_required": after.passkey_required},
                ),
            )
        return after
