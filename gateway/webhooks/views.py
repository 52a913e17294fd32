"""The webhook endpoints' JSON, both ways: request bodies in, webhooks, dead letters,
allow-list entries and the policy out, with their schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from gateway.http.bodies import encode_cursor
from gateway.http.errors import ApiError
from gateway.http.text import unsafe_character
from gateway.paging import Page
from gateway.webhooks.service import NewAllowEntry, NewWebhook
from gateway.webhooks.worker import normalize_host
from storage.webhooks import AllowEntry, DeadLetter, Policy, Webhook

OBJECT = {"type": "object"}
WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["id", "department", "url", "description", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "department": {"type": "string"},
        "url": {"type": "string"},
        "description": {"type": "string"},
        "created_at": {"type": "string"},
        "secret": {
            "type": "string",
            "description": "HMAC-SHA256 key (its UTF-8 bytes); returned once, at creation",
        },
    },
}
NEW_WEBHOOK = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "maxLength": 2000},
        "description": {"type": "string", "maxLength": 200},
    },
}
NEW_ALLOW_ENTRY = {
    "type": "object",
    "required": ["host"],
    "properties": {
        "host": {"type": "string"},
        "port": {"type": "integer", "default": 443},
        "allow_private": {
            "type": "boolean",
            "default": False,
            "description": "let the host resolve to private or loopback addresses",
        },
        "note": {"type": "string", "maxLength": 200},
    },
}
POLICY_SCHEMA = {
    "type": "object",
    "required": ["max_attempts", "base_delay_seconds", "max_delay_seconds"],
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 30},
        "base_delay_seconds": {"type": "number", "minimum": 0.001, "maximum": 86400},
        "max_delay_seconds": {"type": "number", "minimum": 0.001, "maximum": 86400},
    },
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def text(body: dict[str, Any], name: str, max_length: int) -> str:
    """An optional free text of the body (default empty), under the free-text rule."""
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > max_length:
        raise ApiError("invalid_request", f"{name} must be a string of at most {max_length}")
    if (unsafe := unsafe_character(value)) is not None:
        raise ApiError("invalid_request", f"{name} must not contain {unsafe}")
    return value


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": str(webhook.id),
        "department": webhook.department,
        "url": webhook.url,
        "description": webhook.description,
        "created_at": _iso(webhook.created_at),
    }


def new_webhook_json(new: NewWebhook) -> dict[str, Any]:
    return {**webhook_json(new.webhook), "secret": new.secret}


def _instant(text: str) -> datetime | None:
    """An RFC 3339 time with a zone, in UTC; None when it is not one (or out of range)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def dead_letter_position(
    cursor: dict[str, Any] | None, before_text: str | None
) -> tuple[datetime | None, uuid.UUID | None]:
    """(before, after_id) of a dead-letter page: from the cursor, else the ``before`` query."""
    if cursor is None:
        before = _instant(before_text) if before_text else None
        if before_text and before is None:
            raise ApiError("invalid_request", "before must be an RFC 3339 time with a zone")
        return before, None
    try:
        before = _instant(str(cursor["dead_at"]))
        after_id = uuid.UUID(str(cursor["id"]))
    except (KeyError, ValueError):
        before, after_id = None, None
    if before is None or after_id is None:
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return before, after_id


def dead_letters_json(page: Page[DeadLetter]) -> dict[str, Any]:
    last = page.last
    items = [
        {
            "id": str(letter.id),
            "webhook": str(letter.webhook),
            "url": letter.url,
            "delivery": str(letter.delivery),
            "attempts": letter.attempts,
            "last_status": letter.last_status,
            "last_error": letter.last_error,
            "created_at": _iso(letter.created_at),
            "dead_at": _iso(letter.dead_at),
        }
        for letter in page.items
    ]
    next_cursor = (
        None
        if last is None
        else encode_cursor({"dead_at": last.dead_at.isoformat(), "id": str(last.id)})
    )
    return {"items": items, "next_cursor": next_cursor}


def entry_json(entry: AllowEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "host": entry.host,
        "port": entry.port,
        "allow_private": entry.allow_private,
        "note": entry.note,
        "added_by": entry.added_by,
        "added_at": _iso(entry.added_at),
    }


def new_allow_entry(body: dict[str, Any]) -> NewAllowEntry:
    host = normalize_host(body.get("host"))
    port = body.get("port", 443)
    allow_private = body.get("allow_private", False)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ApiError("invalid_request", "port must be an integer from 1 to 65535")
    if not isinstance(allow_private, bool):
        raise ApiError("invalid_request", "allow_private must be true or false")
    return NewAllowEntry(host, port, allow_private, text(body, "note", 200))


def _delay(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.001 <= value <= 86400:
        return float(value)
    return None


def policy_of(body: dict[str, Any]) -> Policy:
    attempts = body.get("max_attempts")
    base, cap = _delay(body.get("base_delay_seconds")), _delay(body.get("max_delay_seconds"))
    if (
        not isinstance(attempts, int)
        or isinstance(attempts, bool)
        or not 1 <= attempts <= 30
        or base is None
        or cap is None
    ):
        raise ApiError(
            "invalid_request",
            "max_attempts must be 1 to 30; delays from 0.001 to 86400 seconds",
        )
    if cap < base:
        raise ApiError("invalid_request", "max_delay_seconds must not be below base_delay_seconds")
    return Policy(attempts, base, cap)
