"""JSON shapes of the passkey endpoints (docs/api.md, "Passkeys")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from keys.jws import b64url_encode
from storage.passkeys import DepartmentSettings, Passkey


class RegistrationOptionsJson(TypedDict):
    """``publicKey``: PublicKeyCredentialCreationOptions with base64url binary members, for
    ``navigator.credentials.create({publicKey})`` once decoded."""

    publicKey: dict[str, Any]


class PasskeyJson(TypedDict):
    id: str
    label: str
    credential: str
    transports: list[str]
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    status: Literal["active", "removed"]


class PasskeyPage(TypedDict):
    items: list[PasskeyJson]
    next_cursor: None


class SettingsJson(TypedDict):
    department: str
    passkey_required: bool
    updated_at: str | None
    updated_by: str | None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def registration_options(options: dict[str, Any]) -> RegistrationOptionsJson:
    return {"publicKey": options}


def passkey(item: Passkey) -> PasskeyJson:
    return {
        "id": str(item.id),
        "label": item.label,
        "credential": b64url_encode(item.credential_id),
        "transports": list(item.transports),
        "created_at": item.created_at.isoformat().replace("+00:00", "Z"),
        "last_used_at": _iso(item.last_used_at),
        "revoked_at": _iso(item.revoked_at),
        "status": "active" if item.active else "removed",
    }


def passkey_page(items: list[Passkey]) -> PasskeyPage:
    return {"items": [passkey(item) for item in items], "next_cursor": None}


def settings(item: DepartmentSettings) -> SettingsJson:
    return {
        "department": item.department,
        "passkey_required": item.passkey_required,
        "updated_at": _iso(item.updated_at),
        "updated_by": item.updated_by,
    }
