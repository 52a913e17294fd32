"""Login endpoints: challenge nonces, the token endpoint (RFC 7523 + RFC 9449), JWKS, /v1/me."""

from __future__ import annotations

import uuid
from typing import Any, TypeGuard

from aiohttp import web

from gateway.http.bodies import json_response, parse_json_bytes
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.ratelimit import RATE_LIMITS, pace_source
from gateway.http.ratelimit import check as rate_limit
from gateway.http.routing import RouteTable
from gateway.identity.auth import (
    TOKEN_PATH,
    audit_of,
    challenge_nonces,
    checked_dpop_proof,
    ensure_jwks_keys,
    now_of,
    principal_of,
    public_url,
    reason_of,
    record_failure,
    source_of,
    token_signing_key,
)
from gateway.runtime import RUNTIME
from keys.challenge import NONCE_MAX_AGE, ChallengeError
from keys.dpop import DpopProof
from keys.jws import (
    InvalidAssertionError,
    InvalidDpopError,
    JwsError,
    issue_access_token,
    parse_public_jwk,
    read_unverified,
    verify_login_assertion,
)
from storage import identity
from storage.audit_outbox import AuditEvent

routes = RouteTable()

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH = "refresh_token"
_MAX_SUBJECT_CHARS = 64
# The official a failed login is counted against, once its key signed the assertion.
AUTH_SUBJECT: web.RequestKey[str] = web.RequestKey("auth_subject", str)

TOKEN_RESPONSE = json_content(
    {
        "type": "object",
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "DPoP"},
            "expires_in": {"type": "integer"},
            "refresh_token": {"type": "string"},
            "notices": {"type": "array", "items": {"type": "object"}},
        },
    }
)


def _is_subject(value: object) -> TypeGuard[str]:
    """An official id: short and printable (it keys rate-limit rows and log lines)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= _MAX_SUBJECT_CHARS
        and value.isprintable()
        and value.isascii()
    )


@routes.add(
    "POST",
    "/v1/auth/challenge",
    summary="A single-use login nonce for an official (stateless HMAC, at most 120 s).",
    access="public",
    tag="auth",
    request_body=json_content(
        {"type": "object", "required": ["subject"], "properties": {"subject": {"type": "string"}}}
    ),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def challenge(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    now = now_of(request)
    body = parse_json_bytes(await request.read())
    subject = body.get("subject") if isinstance(body, dict) else None
    if not _is_subject(subject):
        raise ApiError("invalid_request", "subject must be the official id")
    # Paced per source only: a per-subject limit here would let anyone who knows an
    # official's id use up that official's challenges. Nonces are stateless and cheap.
    await pace_source(
        runtime.pool, "challenge", source_of(request), now=now, limits=request.app[RATE_LIMITS]
    )
    nonces = await challenge_nonces(runtime, now)
    return json_response({"nonce": nonces.issue_nonce(subject, now), "expires_in": NONCE_MAX_AGE})


async def _token_form(request: web.Request) -> dict[str, str]:
    """The token request as form fields (RFC 6749) or a JSON object of strings."""
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            form = await request.post()
        except UnicodeDecodeError:
            raise ApiError("invalid_request", "the form is not valid UTF-8") from None
        fields: dict[str, Any] = {}
        for name in form:
            values = form.getall(name)
            if len(values) != 1:
                raise ApiError("invalid_request", f"{name} given more than once")
            fields[name] = values[0]
    elif request.content_type in ("application/json", ""):
        parsed = parse_json_bytes(await request.read())
        if not isinstance(parsed, dict):
            raise ApiError("invalid_json", "the body must be a JSON object")
        fields = parsed
    else:
        raise ApiError("unsupported_media_type", "send a form or JSON", status=415)
    if not all(isinstance(value, str) for value in fields.values()):
        raise ApiError("invalid_request", "every field must be a string")
    return fields


async def _dpop_for_token(request: web.Request) -> DpopProof:
    runtime = request.app[RUNTIME]
    proofs = request.headers.getall("DPoP", [])
    if len(proofs) != 1:
        raise InvalidDpopError("missing", "send exactly one DPoP proof header")
    return await checked_dpop_proof(request, proofs[0], url=public_url(runtime, TOKEN_PATH))


def _token_response(
    request: web.Request,
    owner: identity.KeyOwner,
    refresh: identity.IssuedRefreshToken,
    notices: list[dict[str, Any]] | None = None,
) -> web.Response:
    runtime = request.app[RUNTIME]
    kid, private_key = token_signing_key(runtime)
    official = owner.official
    token, _ = issue_access_token(
        private_key=private_key,
        kid=kid,
        public_url=runtime.settings.public_origin,
        subject=official.id,
        department=official.department,
        roles=official.roles,
        jkt=owner.key.kid,
        jti=uuid.uuid4().hex,
        now=now_of(request),
        lifetime=runtime.settings.access_token_seconds,
    )
    return json_response(
        {
            "access_token": token,
            "token_type": "DPoP",
            "expires_in": runtime.settings.access_token_seconds,
            "refresh_token": refresh.token,
            # Logins only: keys someone else added to this official since it last heard.
            **({} if notices is None else {"notices": notices}),
        },
        headers={"Pragma": "no-cache"},
    )


async def _jwt_bearer(request: web.Request, fields: dict[str, str]) -> web.Response:
    runtime = request.app[RUNTIME]
    now = now_of(request)
    assertion = fields.get("assertion")
    if not assertion:
        raise ApiError("invalid_request", "assertion is required")
    _, unverified = read_unverified(assertion, error=InvalidAssertionError)
    subject = unverified.get("sub")
    if not _is_subject(subject):
        raise InvalidAssertionError("claim_invalid", "sub must be the official id")
    proof = await _dpop_for_token(request)
    async with runtime.pool.acquire() as connection:
        owner = await identity.key_owner(connection, proof.jkt)
    # The DPoP key must be the enrolled key that signs the assertion: the token is then
    # bound to a key whose revocation the gateway sees on every request.
    if owner is None or owner.official.id != subject:
        raise InvalidAssertionError("unknown_key", "the DPoP key is not a key of this official")
    if owner.key.revoked_at is not None:
        raise InvalidAssertionError("key_revoked", "this key has been revoked")
    header_kid = read_unverified(assertion, error=InvalidAssertionError)[0].get("kid")
    if header_kid is not None and header_kid != owner.key.kid:
        raise InvalidAssertionError("kid_mismatch", "kid must be the DPoP key's thumbprint")
    checked = verify_login_assertion(
        assertion,
        key=parse_public_jwk(owner.key.public_jwk),
        token_url=public_url(runtime, TOKEN_PATH),
        now=now,
        expected_subject=subject,
    )
    # From here on the caller proved it holds the official's key: only now do its attempts
    # and failures count against the official (anyone can name an id; only the key signs).
    request[AUTH_SUBJECT] = subject
    async with runtime.pool.acquire() as connection:
        await rate_limit(
            connection, "token", "subject", subject, now=now, limits=request.app[RATE_LIMITS]
        )
    nonce_expiry = (await challenge_nonces(runtime, now)).check_nonce(checked.nonce, subject, now)
    if not owner.official.active:
        raise identity.OfficialDisabled("the official is disabled")
    async with runtime.pool.acquire() as connection, connection.transaction():
        await identity.spend_all(
            connection,
            [
                ("assertion", subject, checked.jti, checked.replay_until),
                ("nonce", "", checked.nonce, nonce_expiry),
                ("dpop", proof.jkt, proof.jti, proof.replay_until),
            ],
        )
        refresh = await identity.start_refresh_family(
            connection, official_id=subject, kid=owner.key.kid, now=now
        )
        notices = await identity.login_notices(connection, subject, owner.key.kid, now=now)
        await audit_of(request).record(
            connection,
            AuditEvent(
                "login.succeeded",
                now,
                actor_official=subject,
                actor_jkt=owner.key.kid,
                department=owner.official.department,
                details={"source": source_of(request), "family": refresh.family_id},
            ),
        )
    return _token_response(request, owner, refresh, notices)


async def _refresh(request: web.Request, fields: dict[str, str]) -> web.Response:
    runtime = request.app[RUNTIME]
    now = now_of(request)
    token = fields.get("refresh_token")
    if not token:
        raise ApiError("invalid_request", "refresh_token is required")
    proof = await _dpop_for_token(request)
    async with runtime.pool.acquire() as connection:
        # Spent first: a replayed proof must not rotate (and so lose) the refresh token.
        await identity.spend_all(connection, [("dpop", proof.jkt, proof.jti, proof.replay_until)])
        owner, refresh = await identity.rotate_refresh_token(
            connection,
            token,
            jkt=proof.jkt,
            now=now,
            audit=audit_of(request),
            source=source_of(request),
        )
    return _token_response(request, owner, refresh)


@routes.add(
    "POST",
    TOKEN_PATH,
    summary="Exchange a login assertion or a refresh token for a DPoP-bound access token.",
    access="public",
    tag="auth",
    request_body={
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        }
    },
    responses={"200": {"content": TOKEN_RESPONSE}},
)
async def token(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    await pace_source(
        runtime.pool,
        "token",
        source_of(request),
        now=now_of(request),
        limits=request.app[RATE_LIMITS],
    )
    fields = await _token_form(request)
    grant = fields.get("grant_type")
    kind: identity.FailureKind = "refresh" if grant == REFRESH else "login"
    try:
        if grant == JWT_BEARER:
            return await _jwt_bearer(request, fields)
        if grant == REFRESH:
            return await _refresh(request, fields)
    except (JwsError, ChallengeError, identity.IdentityError) as exc:
        await record_failure(request, kind, reason_of(exc), subject=request.get(AUTH_SUBJECT, ""))
        raise
    raise ApiError("invalid_request", "grant_type must be jwt-bearer or refresh_token")


@routes.add(
    "GET",
    "/.well-known/jwks.json",
    summary="The gateway's public keys (token and receipt signing).",
    access="public",
    tag="auth",
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def jwks(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ensure_jwks_keys(runtime)
    return json_response(
        runtime.pki.keystore.jwks(now=now_of(request)),
        headers={"Cache-Control": "public, max-age=60"},
    )


@routes.add(
    "GET",
    "/v1/me",
    summary="The authenticated official: id, name, department, roles, key id.",
    access="authenticated",
    tag="auth",
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def me(request: web.Request) -> web.Response:
    principal = principal_of(request)
    return json_response(
        {
            "id": principal.official_id,
            "name": principal.name,
            "department": principal.department,
            "roles": sorted(principal.roles),
            "kid": principal.kid,
        }
    )
