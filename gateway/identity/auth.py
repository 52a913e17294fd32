"""Authentication and authorization, decided in one place from the route table.

Every route declares ``access`` and ``roles``; this middleware authenticates each request
to an ``authenticated`` route (access token + DPoP proof + the key's current status, one
database round trip), refuses a missing role with 403, and attaches the :class:`Principal`.
Handlers then only ask :func:`require_department` about the resource they touch, which
answers 404 across departments so existence never leaks.

Login-related refusals leave here as :class:`~gateway.http.errors.ApiError` carrying the
failed check as ``reason`` and their headers (``WWW-Authenticate``, ``Retry-After``,
``DPoP-Nonce``); gateway/http/middleware.py renders them like every other error.
Unauthenticated failures are counted per source and minute.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.http.errors import STATUS_BY_CODE, ApiError, detail_of
from gateway.http.ratelimit import RateLimited
from gateway.http.routing import Handler, Route, route_of
from gateway.identity.access import AccessLog, reason_of
from gateway.identity.errors import Forbidden as Forbidden
from gateway.identity.errors import NotFound as NotFound
from gateway.identity.nonces import NonceIssuers
from gateway.identity.principal import Caller
from gateway.identity.principal import Principal as Principal
from gateway.identity.service import TOKEN_PATH as TOKEN_PATH
from gateway.passkeys.errors import SetupRequired
from gateway.runtime import CLOCK, RUNTIME, Runtime
from keys import keystore as keystore_module
from keys.challenge import ChallengeError
from keys.clock import SYSTEM_CLOCK
from keys.dpop import DpopProof, check_token_binding, verify_dpop_proof
from keys.jws import (
    AccessToken,
    DpopNonceRequiredError,
    InvalidDpopError,
    InvalidTokenError,
    JwsError,
    decode_protected_header,
    verify_access_token,
)
from keys.keystore import KeyStoreError
from storage import identity
from storage.identity.counters import FailureKind
from storage.vocabulary import Role

ACCESS: web.AppKey[AccessLog] = web.AppKey("access_log", AccessLog)
NONCES: web.AppKey[NonceIssuers] = web.AppKey("nonce_issuers", NonceIssuers)

_PURGE_PROBABILITY = 0.01


def now_of(request: web.Request) -> datetime:
    """The gateway's clock: ``app[CLOCK]`` when a test injected one, else the wall clock."""
    return request.app.get(CLOCK, SYSTEM_CLOCK)()


def source_of(request: web.Request) -> str:
    """The peer address. Forwarded headers are not trusted: they are set by the client."""
    return request.remote or "unknown"


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    try:
        return request[PRINCIPAL]
    except KeyError:
        raise RuntimeError("principal_of() on a route that is not authenticated") from None


def caller_of(request: web.Request) -> Caller:
    """The principal (if any) with the request facts an ``access.denied`` event records."""
    return Caller(request.get(PRINCIPAL), request.method, request.path, source_of(request))


async def deny_access(request: web.Request, reason: str, **details: str) -> None:
    """One ``access.denied`` event, in its own transaction (the refusal changes nothing)."""
    await request.app[ACCESS].deny(caller_of(request), reason, **details)


async def hidden(request: web.Request, reason: str, **details: str) -> NotFound:
    """The 404 that hides a resource from a signed-in caller (another department's, or none
    at all: ID probing), counted as ``access.denied``, aggregated per official, source and
    minute. Returned for the caller to raise; counting never turns the 404 into a 500."""
    return await request.app[ACCESS].hide(caller_of(request), reason, **details)


async def require_department(
    request: web.Request,
    department: str,
    *,
    cross_department_roles: Iterable[str] = (Role.ADMIN,),
) -> Principal:
    """Department isolation: a resource of another department is 404 for the caller
    (audited as ``access.denied``), unless the caller holds a cross-department role."""
    principal = principal_of(request)
    if principal.department == department or principal.has_any(cross_department_roles):
        return principal
    raise await hidden(request, "other_department")


async def record_failure(
    request: web.Request, kind: FailureKind, reason: str, *, subject: str = ""
) -> None:
    """Count a failed attempt (one audit event per minute, source, kind and subject)."""
    await request.app[ACCESS].failure(source_of(request), kind, reason, subject=subject)


# --- DPoP proofs ---------------------------------------------------------------------------


def _token_verification_key(
    runtime: Runtime, token: str, now: datetime
) -> dict[str, ec.EllipticCurvePublicKey]:
    """The one published ``token`` key the header's kid names (none: the check fails)."""
    kid = decode_protected_header(token, error=InvalidTokenError).get("kid")
    if not isinstance(kid, str):
        return {}
    store = runtime.pki.keystore
    try:
        key = store.get_public(keystore_module.TOKEN, kid)
        published = any(
            info.kid == kid and info.published(now) for info in store.infos(keystore_module.TOKEN)
        )
    except KeyStoreError:
        return {}
    if not published or not isinstance(key, ec.EllipticCurvePublicKey):
        return {}
    return {kid: key}


DPOP_NONCE_MAX_AGE = 300
_DPOP_NONCE_TO_SEND: web.RequestKey[str] = web.RequestKey("dpop_nonce_to_send", str)


async def checked_dpop_proof(
    request: web.Request, proof: str, *, url: str, access_token: str | None = None
) -> DpopProof:
    """``verify_dpop_proof`` for this request, with the server nonce when
    ``SEALHUB_DPOP_NONCE=required``: a proof without a current one is refused with
    ``use_dpop_nonce`` and a fresh nonce in ``DPoP-Nonce``; one whose nonce is past half its
    life is accepted and a fresh nonce sent along, so busy clients never see the refusal.
    Nonces are not single use (the proof's ``jti`` is); they only bound how far ahead of
    time a proof can be made.
    """
    runtime = request.app[RUNTIME]
    now = now_of(request)
    if not runtime.settings.dpop_nonce:
        return verify_dpop_proof(
            proof, method=request.method, url=url, now=now, access_token=access_token
        )
    nonces = await request.app[NONCES].dpop(now)
    try:
        checked = verify_dpop_proof(
            proof,
            method=request.method,
            url=url,
            now=now,
            access_token=access_token,
            require_nonce=True,
        )
        try:
            expires = nonces.check_nonce(checked.nonce or "", "", now, DPOP_NONCE_MAX_AGE)
        except ChallengeError:
            stale = DpopNonceRequiredError("nonce_mismatch", "the DPoP nonce is not current")
            raise stale from None
    except DpopNonceRequiredError:
        request[_DPOP_NONCE_TO_SEND] = nonces.issue_nonce("", now)
        raise
    if expires - now < timedelta(seconds=DPOP_NONCE_MAX_AGE / 2):
        request[_DPOP_NONCE_TO_SEND] = nonces.issue_nonce("", now)
    return checked


async def send_dpop_nonce(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a nonce chosen while checking the proof goes out with the
    answer, whatever it is (streamed, an error, a refusal)."""
    nonce = request.get(_DPOP_NONCE_TO_SEND)
    if nonce is not None:
        response.headers["DPoP-Nonce"] = nonce


def public_url(runtime: Runtime, path: str) -> str:
    return runtime.settings.public_origin + path


# --- the middleware -----------------------------------------------------------------------


async def _authenticate(request: web.Request) -> Principal:
    runtime = request.app[RUNTIME]
    now = now_of(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "dpop" or not token:
        raise InvalidTokenError("missing", "send Authorization: DPoP <access token>")
    proofs = request.headers.getall("DPoP", [])
    if len(proofs) != 1:
        raise InvalidDpopError("missing", "send exactly one DPoP proof header")
    claims: AccessToken = verify_access_token(
        token,
        keys=_token_verification_key(runtime, token, now),
        public_url=runtime.settings.public_origin,
        now=now,
    )
    proof = await checked_dpop_proof(
        request,
        proofs[0],
        url=public_url(runtime, request.rel_url.raw_path),
        access_token=token,
    )
    check_token_binding(claims, proof)
    async with runtime.pool.acquire() as connection:
        fresh, owner = await identity.authenticate_request(
            connection, kid=proof.jkt, dpop_jti=proof.jti, replay_until=proof.replay_until
        )
        if random.random() < _PURGE_PROBABILITY:  # noqa: S311 (scheduling, not security)
            await identity.purge_expired(connection, now=now)
    if owner is None or owner.official.id != claims.subject:
        raise InvalidTokenError("unknown_key", "the token's key is not enrolled")
    if owner.key.revoked_at is not None:
        raise InvalidTokenError("key_revoked", "the token's key has been revoked")
    official = owner.official
    if not official.active:
        raise InvalidTokenError("official_disabled", "the official is disabled")
    if official.department != claims.department or set(official.roles) != set(claims.roles):
        raise InvalidTokenError("token_outdated", "department or roles changed: log in again")
    if not fresh:
        raise identity.ReplayedDpop("this DPoP proof was already used")
    return Principal(
        official_id=official.id,
        name=official.name,
        department=official.department,
        roles=frozenset(official.roles),
        kid=owner.key.kid,
        token_expires_at=claims.expires_at,
        device_kind=owner.key.device_kind,
        passkey=claims.passkey,
        device_label=owner.key.label,
    )


# What a ``setup_required`` session (a console login that must first register a passkey)
# may call; ``{id}`` must then be the caller itself. Anything else: 403
# ``passkey_setup_required``.
SETUP_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/v1/me"),
        ("POST", "/v1/passkeys/registration-options"),
        ("POST", "/v1/passkeys"),
        ("GET", "/v1/officials/{id}/passkeys"),
        ("DELETE", "/v1/officials/{id}/passkeys/{passkey}"),
        ("GET", "/v1/officials/{id}/keys"),
        ("DELETE", "/v1/officials/{id}/keys/{kid}"),
    }
)


async def _check_setup_session(request: web.Request, principal: Principal, route: Route) -> None:
    if principal.passkey != "setup_required":
        return
    own = request.match_info.get("id", principal.official_id) == principal.official_id
    if (route.method, route.path) in SETUP_ROUTES and own:
        return
    await deny_access(request, "passkey_setup_required")
    raise SetupRequired()


def _refusal(request: web.Request, exc: BaseException, code: str) -> ApiError:
    """The refusal as the renderer answers it: the failed check as ``reason``, and the
    headers RFC 9449 and RFC 6585 ask for."""
    status = STATUS_BY_CODE[code]
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        if code == "use_dpop_nonce":
            error = code
        elif "dpop" in code:
            error = "invalid_dpop_proof"
        else:
            error = "invalid_token"
        headers["WWW-Authenticate"] = f'DPoP algs="ES256", error="{error}"'
    nonce = request.get(_DPOP_NONCE_TO_SEND)
    if nonce is not None:
        headers["DPoP-Nonce"] = nonce
    extra = {"reason": exc.reason} if isinstance(exc, JwsError | ChallengeError) else None
    return ApiError(code, detail_of(exc), status=status, headers=headers, extra=extra)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate and authorize from the matched route's declaration."""
    route = route_of(request)
    try:
        if route is not None and route.access == "authenticated":
            try:
                request[PRINCIPAL] = await _authenticate(request)
            except (JwsError, identity.Replayed) as exc:
                await record_failure(request, "token", reason_of(exc))
                raise
            await _check_setup_session(request, request[PRINCIPAL], route)
            if route.roles and not request[PRINCIPAL].has_any(route.roles):
                await deny_access(request, "role_missing")
                raise Forbidden("your roles do not allow this")
        return await handler(request)
    except (
        JwsError,
        ChallengeError,
        RateLimited,
        identity.IdentityError,
        Forbidden,
        NotFound,
        SetupRequired,
    ) as exc:
        code = getattr(type(exc), "code", "")
        if code not in STATUS_BY_CODE:
            raise
        raise _refusal(request, exc, code) from exc
