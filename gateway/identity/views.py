"""JSON shapes of the identity endpoints (docs/api.md), from the service's plain results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.http.bodies import json_response
from gateway.identity.principal import Principal
from gateway.identity.service import IssuedCode, NewOfficial, TokenGrant
from storage.identity.keys import AddedKey, OfficialKey
from storage.identity.official_requests import OfficialRequest
from storage.identity.officials import Official


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def official(item: Official) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "department": item.department,
        "roles": list(item.roles),
        "status": item.status,
        "created_at": _iso(item.created_at),
    }


def key(item: OfficialKey) -> dict[str, Any]:
    return {
        "kid": item.kid,
        "jwk": item.public_jwk,
        "created_at": _iso(item.created_at),
        "revoked_at": _iso(item.revoked_at),
        "status": "active" if item.revoked_at is None else "revoked",
        "code_issued_by": item.code_issued_by,
        "code_cosigned_by": item.code_cosigned_by,
        "added_by_other": item.added_by_other,
    }


def official_request(item: OfficialRequest) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "official": item.official,
        "department": item.department,
        "target_department": item.target_department,
        "payload": item.payload,
        "status": item.status,
        "requested_by": item.requested_by,
        "requested_at": _iso(item.requested_at),
        "decided_by": item.decided_by,
        "decided_at": _iso(item.decided_at),
    }


def page(items: list[dict[str, Any]]) -> web.Response:
    """A list answer; identity lists are short and come in one page."""
    return json_response({"items": items, "next_cursor": None})


def outcome(
    result: NewOfficial | IssuedCode | OfficialRequest | Official,
) -> web.Response:
    """201 with a new official or enrollment code, 202 when the act waits for a second
    person (the code is then not in the answer), 200 with an official otherwise."""
    if isinstance(result, OfficialRequest):
        return json_response(
            {"status": "pending_approval", "request": official_request(result)}, status=202
        )
    if isinstance(result, NewOfficial):
        return json_response(
            {
                **official(result.official),
                "enrollment_code": result.enrollment_code,
                "enrollment_code_expires_at": _iso(result.code_expires_at),
            },
            status=201,
        )
    if isinstance(result, IssuedCode):
        return json_response(
            {
                "id": result.official_id,
                "enrollment_code": result.enrollment_code,
                "enrollment_code_expires_at": _iso(result.expires_at),
            },
            status=201,
        )
    return json_response(official(result))


def _notice(item: AddedKey) -> dict[str, Any]:
    return {
        "type": "key_added_by_other",
        "kid": item.kid,
        "added_at": _iso(item.added_at),
        "code_issued_by": item.code_issued_by,
        "code_cosigned_by": item.code_cosigned_by,
    }


def token(grant: TokenGrant) -> web.Response:
    body: dict[str, Any] = {
        "access_token": grant.access_token,
        "token_type": "DPoP",
        "expires_in": grant.expires_in,
        "refresh_token": grant.refresh_token,
    }
    if grant.notices is not None:
        # Logins only: keys someone else added to this official since it last heard.
        body["notices"] = [_notice(item) for item in grant.notices]
    return json_response(body, headers={"Pragma": "no-cache"})


def me(principal: Principal) -> dict[str, Any]:
    return {
        "id": principal.official_id,
        "name": principal.name,
        "department": principal.department,
        "roles": sorted(principal.roles),
        "kid": principal.kid,
    }
