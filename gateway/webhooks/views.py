"""The webhook endpoints' JSON, both ways: request bodies in (models), webhooks, dead
letters, allow-list entries and the policy out (TypedDicts, shown in /openapi.json)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from typing_extensions import TypedDict  # pydantic needs its TypedDict below Python 3.12

from gateway.http.bodies import encode_cursor
from gateway.http.errors import ApiError
from gateway.http.models import RequestBody, SingleLine
from gateway.paging import Page
from gateway.webhooks.service import NewAllowEntry, NewWebhook
from gateway.webhooks.worker import MAX_URL_CHARS, InvalidWebhookUrl, normalize_host, parse_target
from storage.webhooks import AllowEntry, DeadLetter, Policy, Webhook

# Fields whose refusals keep the code they had before the bodies were declared.
_URL_FIELDS = ("url", "host")


def _as_value_error(check: Callable[[str], str]) -> Callable[[str], str]:
    """*check*'s InvalidWebhookUrl as the ValueError pydantic reports (and validate maps)."""

    def run(value: str) -> str:
        try:
            return check(value)
        except InvalidWebhookUrl as refused:
            raise ValueError(str(refused)) from None

    return run


def refusal(detail: str) -> Exception:
    """A refused body's exception: a bad ``url`` or ``host`` stays ``webhook_url_invalid``."""
    field = detail.partition(":")[0]
    if field in _URL_FIELDS:
        return InvalidWebhookUrl(detail)
    return ApiError("invalid_request", detail)


def _target(value: str) -> str:
    parse_target(value)
    return value


class NewWebhookBody(RequestBody):
    """A webhook of the department: an https:// target on the allow-list."""

    url: Annotated[str, Field(max_length=MAX_URL_CHARS), AfterValidator(_as_value_error(_target))]
    description: SingleLine = Field(default="", max_length=200)


class NewAllowEntryBody(RequestBody):
    """A host and port webhooks may target."""

    host: Annotated[str, AfterValidator(_as_value_error(normalize_host))]
    port: int = Field(default=443, ge=1, le=65535)
    allow_private: bool = Field(
        default=False, description="let the host resolve to private or loopback addresses"
    )
    note: SingleLine = Field(default="", max_length=200)

    def entry(self) -> NewAllowEntry:
        return NewAllowEntry(self.host, self.port, self.allow_private, self.note)


Delay = Annotated[float, Field(ge=0.001, le=86400)]


class PolicyBody(RequestBody):
    """The retry policy: attempts before a dead letter, the backoff's first and last delay."""

    max_attempts: int = Field(ge=1, le=30)
    base_delay_seconds: Delay
    max_delay_seconds: Delay

    @model_validator(mode="after")
    def _ordered(self) -> PolicyBody:
        if self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("max_delay_seconds must not be below base_delay_seconds")
        return self

    def policy(self) -> Policy:
        return Policy(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)


class WebhookJson(TypedDict):
    id: str
    department: str
    url: str
    description: str
    created_at: str


class NewWebhookJson(WebhookJson):
    """The new webhook and its secret, shown this once."""

    secret: Annotated[
        str,
        Field(description="HMAC-SHA256 key (its UTF-8 bytes); returned once, at creation"),
    ]


class WebhookList(TypedDict):
    items: list[WebhookJson]
    next_cursor: None


class DeadLetterJson(TypedDict):
    id: str
    webhook: str
    url: str
    delivery: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    dead_at: str


class DeadLetterPage(TypedDict):
    items: list[DeadLetterJson]
    next_cursor: str | None


class Replayed(TypedDict):
    id: str
    state: Literal["pending"]


class AllowEntryJson(TypedDict):
    id: str
    host: str
    port: int
    allow_private: bool
    note: str
    added_by: str
    added_at: str


class AllowList(TypedDict):
    items: list[AllowEntryJson]
    next_cursor: None


class PolicyJson(TypedDict):
    max_attempts: int
    base_delay_seconds: float
    max_delay_seconds: float


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def webhook_json(webhook: Webhook) -> WebhookJson:
    return {
        "id": str(webhook.id),
        "department": webhook.department,
        "url": webhook.url,
        "description": webhook.description,
        "created_at": _iso(webhook.created_at),
    }


def new_webhook_json(new: NewWebhook) -> NewWebhookJson:
    return {**webhook_json(new.webhook), "secret": new.secret}


def webhooks_json(webhooks: list[Webhook]) -> WebhookList:
    return {"items": [webhook_json(w) for w in webhooks], "next_cursor": None}


def replayed_json(job_id: uuid.UUID) -> Replayed:
    return {"id": str(job_id), "state": "pending"}


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


def dead_letter_json(letter: DeadLetter) -> DeadLetterJson:
    return {
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


def dead_letters_json(page: Page[DeadLetter]) -> DeadLetterPage:
    last = page.last
    next_cursor = (
        None
        if last is None
        else encode_cursor({"dead_at": last.dead_at.isoformat(), "id": str(last.id)})
    )
    return {
        "items": [dead_letter_json(letter) for letter in page.items],
        "next_cursor": next_cursor,
    }


def entry_json(entry: AllowEntry) -> AllowEntryJson:
    return {
        "id": str(entry.id),
        "host": entry.host,
        "port": entry.port,
        "allow_private": entry.allow_private,
        "note": entry.note,
        "added_by": entry.added_by,
        "added_at": _iso(entry.added_at),
    }


def allow_list_json(entries: list[AllowEntry]) -> AllowList:
    return {"items": [entry_json(e) for e in entries], "next_cursor": None}


def policy_json(policy: Policy) -> PolicyJson:
    """As the API shows it (and as its change is audited: Policy.as_json)."""
    return {
        "max_attempts": policy.max_attempts,
        "base_delay_seconds": policy.base_delay,
        "max_delay_seconds": policy.max_delay,
    }
