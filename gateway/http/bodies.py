"""Small request/response helpers shared by the thin handlers."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from gateway.http.errors import ApiError
from gateway.http.models import validate
from gateway.http.text import unsafe_character

M = TypeVar("M", bound=BaseModel)

DEFAULT_PAGE = 50
MAX_PAGE = 500


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """UTF-8 JSON with Chinese text kept as is (never ``\\uXXXX``-escaped away)."""
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ApiError("invalid_json", f"duplicate key {key!r} in JSON object")
        result[key] = value
    return result


def parse_json_bytes(raw: bytes) -> Any:
    """Strict JSON: valid UTF-8, no duplicate keys, no NaN/Infinity."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("invalid_json", "the body is not valid UTF-8") from None

    def refuse_constant(name: str) -> Any:
        raise ApiError("invalid_json", f"{name} is not allowed in JSON")

    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=refuse_constant
        )
    except json.JSONDecodeError as exc:
        raise ApiError("invalid_json", f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ApiError("invalid_json", "JSON nested too deeply") from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, bounded by the app's ``client_max_size``."""
    if request.content_type not in ("application/json", ""):
        raise ApiError("unsupported_media_type", "send the body as application/json", status=415)
    body = parse_json_bytes(await request.read())
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "the body must be a JSON object")
    return body


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated as *model* (its route's ``request_model``): ``invalid_json``
    for what is no JSON object, ``invalid_request`` naming the first field at fault."""
    return validate(model, await read_json_object(request))


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued") from None
    if not isinstance(position, dict):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return position


def page_params(request: web.Request) -> tuple[int, dict[str, Any] | None]:
    """``limit`` (1..500, default 50) and the decoded ``cursor`` of a list request."""
    raw_limit = request.query.get("limit", str(DEFAULT_PAGE))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise ApiError("invalid_request", "limit must be an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError("invalid_request", f"limit must be between 1 and {MAX_PAGE}")
    cursor = request.query.get("cursor")
    return limit, (decode_cursor(cursor) if cursor else None)


def query_text(request: web.Request, name: str, *, max_length: int = 200) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_length:
        raise ApiError("invalid_request", f"{name} must have at most {max_length} characters")
    if (unsafe := unsafe_character(value)) is not None:
        raise ApiError("invalid_request", f"{name} must not contain {unsafe}")
    return value


def query_time(request: web.Request, name: str) -> datetime | None:
    """An optional RFC 3339 query parameter with a time zone, in UTC."""
    raw = query_text(request, name, max_length=40)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError("invalid_request", f"{name} must be an RFC 3339 time") from None
    if value.tzinfo is None:
        raise ApiError("invalid_request", f"{name} must carry a time zone")
    return value.astimezone(UTC)


def time_id_cursor(at: datetime, item_id: object) -> str:
    """The cursor of a list in (time, id) order: where the next page starts after."""
    return encode_cursor({"at": at.isoformat(), "id": str(item_id)})


def after_time_id(cursor: dict[str, Any] | None) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) a :func:`time_id_cursor` names; ``invalid_cursor`` for anything else."""
    if cursor is None:
        return None
    try:
        at = datetime.fromisoformat(str(cursor["at"]))
        item_id = uuid.UUID(str(cursor["id"]))
    except (KeyError, ValueError):
        raise ApiError("invalid_cursor", "the cursor is not one this server issued") from None
    if at.tzinfo is None:
        raise ApiError("invalid_cursor", "the cursor is not one this server issued")
    return at, item_id
