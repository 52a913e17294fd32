"""The directory endpoints' JSON, both ways: new units and groups in, pages out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.http.bodies import encode_cursor
from gateway.http.errors import ApiError
from gateway.http.text import unsafe_character
from gateway.paging import Page
from storage import directory
from storage.directory import Department, Group

MAX_GROUP_MEMBERS = 2000
DEPARTMENT = {"$ref": "#/components/schemas/Department"}
GROUP = {"$ref": "#/components/schemas/Group"}
_CODE = {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{0,62}$"}
NEW_DEPARTMENT = {
    "type": "object",
    "required": ["code", "name", "kind"],
    "additionalProperties": False,
    "properties": {
        "code": _CODE,
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "name_en": {"type": "string", "maxLength": 300},
        "parent": {"oneOf": [_CODE, {"type": "null"}]},
        "kind": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
    },
}
NEW_GROUP = {
    "type": "object",
    "required": ["code", "name", "members"],
    "additionalProperties": False,
    "properties": {
        "code": _CODE,
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "members": {"type": "array", "minItems": 1, "maxItems": MAX_GROUP_MEMBERS, "items": _CODE},
    },
}


@dataclass(frozen=True)
class NewGroup:
    code: str
    name: str
    members: list[str]


def after_code(cursor: dict[str, Any] | None) -> str | None:
    """The code a list page starts after (lists of units and of groups are in code order)."""
    if cursor is None:
        return None
    after = cursor.get("after")
    if not isinstance(after, str):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return after


def page_json(page: Page[Department] | Page[Group]) -> dict[str, Any]:
    last = page.last
    return {
        "items": [item.as_json() for item in page.items],
        "next_cursor": None if last is None else encode_cursor({"after": last.code}),
    }


def _code(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not directory.CODE_PATTERN.fullmatch(value):
        raise ApiError(
            "invalid_request", f"{key} must be a code: a-z, 0-9, '.', '-' (1 to 63 characters)"
        )
    return value


def _text(body: dict[str, Any], key: str, *, min_length: int, max_length: int) -> str:
    value = body.get(key, "" if min_length == 0 else None)
    if not isinstance(value, str) or not min_length <= len(value.strip()) <= max_length:
        raise ApiError("invalid_request", f"{key} must be {min_length} to {max_length} characters")
    if (unsafe := unsafe_character(value)) is not None:
        raise ApiError("invalid_request", f"{key} must not contain {unsafe}")
    return value.strip()


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError("invalid_request", "unknown field(s): " + ", ".join(unknown))


def new_department(body: dict[str, Any]) -> Department:
    _only(body, {"code", "name", "name_en", "parent", "kind"})
    kind = body.get("kind")
    if not isinstance(kind, str) or not directory.KIND_PATTERN.fullmatch(kind):
        raise ApiError("invalid_request", "kind must be 1 to 32 of a-z and '_' (e.g. department)")
    return Department(
        code=str(_code(body, "code")),
        name=_text(body, "name", min_length=1, max_length=200),
        name_en=_text(body, "name_en", min_length=0, max_length=300),
        parent=_code(body, "parent", required=False),
        kind=kind,
    )


def new_group(body: dict[str, Any]) -> NewGroup:
    _only(body, {"code", "name", "members"})
    code = str(_code(body, "code"))
    name = _text(body, "name", min_length=1, max_length=200)
    members = body.get("members")
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_GROUP_MEMBERS:
        raise ApiError(
            "invalid_request", f"members must be a list of 1 to {MAX_GROUP_MEMBERS} unit codes"
        )
    return NewGroup(code, name, [str(_code({"member": m}, "member")) for m in members])
