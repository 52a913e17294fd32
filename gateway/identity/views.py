"""JSON shapes of the identity endpoints (docs/api.md), from the service's plain results.

Each shape is a TypedDict that the routes name in ``responses`` (``/openapi.json`` shows its
JSON Schema, schemathesis holds the answers to it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NotRequired

from aiohttp import web
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import encode_cursor, json_response
from gateway.http.errors import ApiError
from gateway.identity.principal import Principal
from gateway.identity.service import IssuedCode, NewOfficial, TokenGrant
from gateway.paging import Page
from storage.identity.keys import AddedKey, OfficialKey
from storage.identity.official_requests import OfficialRequest
from storage.identity.officials import ListedOfficial, Official
from storage.vocabulary import OfficialRequestKind, OfficialRequestStatus, OfficialStatus, Role


class OfficialJson(TypedDict):
    id: str
    name: str
    department: str
    roles: list[Role]
    status: OfficialStatus
    created_at: str


class ListedOfficialJson(TypedDict):
    """An official in its department's list: ``has_key`` when it holds a key not revoked."""

    id: str
    name: str
    department: str
    roles: list[Role]
    status: OfficialStatus
    has_key: bool


class OfficialListPage(TypedDict):
    items: list[ListedOfficialJson]
    next_cursor: str | None


class NewOfficialJson(OfficialJson):
    """A new official with its one enrollment code (shown once)."""

    enrollment_code: str
    enrollment_code_expires_at: str


class IssuedCodeJson(TypedDict):
    id: str
    enrollment_code: str
    enrollment_code_expires_at: str


class KeyJson(TypedDict):
    kid: str
    jwk: dict[str, str]
    created_at: str
    revoked_at: str | None
    status: Literal["active", "revoked"]
    code_issued_by: str | None
    code_cosigned_by: str | None
    added_by_other: bool
    device_kind: Literal["browser", "file"]
    label: str | None
    last_used_at: str | None


class KeyPage(TypedDict):
    items: list[KeyJson]
    next_cursor: None


class OfficialRequestJson(TypedDict):
    id: str
    kind: OfficialRequestKind
    official: str | None
    department: str
    target_department: str | None
    payload: dict[str, Any]
    status: OfficialRequestStatus
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None


class OfficialRequestPage(TypedDict):
    items: list[OfficialRequestJson]
    next_cursor: None


class PendingJson(TypedDict):
    """202: the act waits for a second manager."""

    status: Literal["pending_approval"]
    request: OfficialRequestJson


class KeyNotice(TypedDict):
    type: Literal["key_added_by_other"]
    kid: str
    added_at: str
    code_issued_by: str | None
    code_cosigned_by: str | None


class TokenJson(TypedDict):
    access_token: str
    token_type: Literal["DPoP"]
    expires_in: int
    refresh_token: str
    passkey: Literal["verified", "setup_required", "not_required"]
    notices: NotRequired[list[KeyNotice]]


class ChallengeJson(TypedDict):
    nonce: str
    expires_in: int


class Jwks(TypedDict):
    keys: list[dict[str, Any]]


class DeviceJson(TypedDict):
    kind: Literal["browser", "file"]
    label: str | None


class MeJson(TypedDict):
    id: str
    name: str
    department: str
    roles: list[str]
    kid: str
    passkey: Literal["verified", "setup_required", "not_required"]
    device: DeviceJson


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _stamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def official(item: Official) -> OfficialJson:
    return {
        "id": item.id,
        "name": item.name,
        "department": item.department,
        "roles": list(item.roles),
        "status": item.status,
        "created_at": _stamp(item.created_at),
    }


def listed_official(item: ListedOfficial) -> ListedOfficialJson:
    found = item.official
    return {
        "id": found.id,
        "name": found.name,
        "department": found.department,
        "roles": list(found.roles),
        "status": found.status,
        "has_key": item.has_key,
    }


def official_list_page(page: Page[ListedOfficial]) -> OfficialListPage:
    last = page.last
    cursor = (
        None
        if last is None
        else encode_cursor({"name": last.official.name, "id": last.official.id})
    )
    return {"items": [listed_official(item) for item in page.items], "next_cursor": cursor}


def after_official(cursor: dict[str, Any] | None) -> tuple[str, str] | None:
    """The (name, id) an officials page starts after."""
    if cursor is None:
        return None
    name, official_id = cursor.get("name"), cursor.get("id")
    if not isinstance(name, str) or not isinstance(official_id, str):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return name, official_id


def key(item: OfficialKey) -> KeyJson:
    return {
        "kid": item.kid,
        "jwk": item.public_jwk,
        "created_at": _stamp(item.created_at),
        "revoked_at": _iso(item.revoked_at),
        "status": "active" if item.revoked_at is None else "revoked",
        "code_issued_by": item.code_issued_by,
        "code_cosigned_by": item.code_cosigned_by,
        "added_by_other": item.added_by_other,
        "device_kind": "browser" if item.device_kind == "browser" else "file",
        "label": item.label,
        "last_used_at": _iso(item.last_used_at),
    }


def official_request(item: OfficialRequest) -> OfficialRequestJson:
    return {
        "id": item.id,
        "kind": item.kind,
        "official": item.official,
        "department": item.department,
        "target_department": item.target_department,
        "payload": item.payload,
        "status": item.status,
        "requested_by": item.requested_by,
        "requested_at": _stamp(item.requested_at),
        "decided_by": item.decided_by,
        "decided_at": _iso(item.decided_at),
    }


def key_page(items: list[OfficialKey]) -> web.Response:
    """A list answer; identity lists are short and come in one page."""
    body: KeyPage = {"items": [key(item) for item in items], "next_cursor": None}
    return json_response(body)


def request_page(items: list[OfficialRequest]) -> web.Response:
    body: OfficialRequestPage = {
        "items": [official_request(item) for item in items],
        "next_cursor": None,
    }
    return json_response(body)


def pending(item: OfficialRequest) -> PendingJson:
    return {"status": "pending_approval", "request": official_request(item)}


def new_official(result: NewOfficial) -> NewOfficialJson:
    return {
        **official(result.official),
        "enrollment_code": result.enrollment_code,
        "enrollment_code_expires_at": _stamp(result.code_expires_at),
    }


def issued_code(result: IssuedCode) -> IssuedCodeJson:
    return {
        "id": result.official_id,
        "enrollment_code": result.enrollment_code,
        "enrollment_code_expires_at": _stamp(result.expires_at),
    }


def outcome(
    result: NewOfficial | IssuedCode | OfficialRequest | Official,
) -> web.Response:
    """201 with a new official or enrollment code, 202 when the act waits for a second
    person (the code is then not in the answer), 200 with an official otherwise."""
    if isinstance(result, OfficialRequest):
        return json_response(pending(result), status=202)
    if isinstance(result, NewOfficial):
        return json_response(new_official(result), status=201)
    if isinstance(result, IssuedCode):
        return json_response(issued_code(result), status=201)
    return json_response(official(result))


def _notice(item: AddedKey) -> KeyNotice:
    return {
        "type": "key_added_by_other",
        "kid": item.kid,
        "added_at": _stamp(item.added_at),
        "code_issued_by": item.code_issued_by,
        "code_cosigned_by": item.code_cosigned_by,
    }


def token(grant: TokenGrant) -> web.Response:
    body: TokenJson = {
        "access_token": grant.access_token,
        "token_type": "DPoP",
        "expires_in": grant.expires_in,
        "refresh_token": grant.refresh_token,
        "passkey": _state(grant.passkey),
    }
    if grant.notices is not None:
        # Logins only: keys someone else added to this official since it last heard.
        body["notices"] = [_notice(item) for item in grant.notices]
    return json_response(body, headers={"Pragma": "no-cache"})


def challenge(nonce: str, expires_in: int) -> ChallengeJson:
    return {"nonce": nonce, "expires_in": expires_in}


def me(principal: Principal) -> MeJson:
    return {
        "id": principal.official_id,
        "name": principal.name,
        "department": principal.department,
        "roles": sorted(principal.roles),
        "kid": principal.kid,
        "passkey": _state(principal.passkey),
        "device": {
            "kind": "browser" if principal.console else "file",
            "label": principal.device_label,
        },
    }


PasskeyState = Literal["verified", "setup_required", "not_required"]


def _state(value: str) -> PasskeyState:
    if value == "verified":
        return "verified"
    if value == "setup_required":
        return "setup_required"
    return "not_required"
