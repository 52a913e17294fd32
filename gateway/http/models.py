"""Request and response bodies declared once, with pydantic: the declaration validates and
documents.

A request body is a strict ``BaseModel`` (no coercion: ``"1"`` is no integer, ``true`` no
number). Unknown fields are ignored, as the hand-written parsers did, unless the body is a
``ClosedBody`` (a document's meta, its workflow) that refuses them.

A response body is a ``TypedDict`` that the views build: mypy checks each view against it,
and ``/openapi.json`` shows its JSON Schema, which schemathesis holds every 2xx answer to.

pydantic rather than msgspec: it is already installed, generates JSON Schema for models and
TypedDicts, and its errors carry the location of the field at fault. Validation runs on the
object that ``gateway/http/bodies.py`` parsed (strict UTF-8, no duplicate keys, no NaN), so
those refusals keep their ``invalid_json`` code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from gateway.http.errors import ApiError
from gateway.http.text import unsafe_character

M = TypeVar("M", bound=BaseModel)


class RequestBody(BaseModel):
    """Base of every request body: strict types, immutable, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class ClosedBody(RequestBody):
    """A request body that refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")


def _line(value: str) -> str:
    if (unsafe := unsafe_character(value)) is not None:
        raise ValueError(f"must not contain {unsafe}")
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _text(value: str) -> str:
    if (unsafe := unsafe_character(value)) is not None:
        raise ValueError(f"must not contain {unsafe}")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _single_line(value: str) -> str:
    if (unsafe := unsafe_character(value)) is not None:
        raise ValueError(f"must not contain {unsafe}")
    return value


def _lines(value: str) -> str:
    if (unsafe := unsafe_character(value, multiline=True)) is not None:
        raise ValueError(f"must not contain {unsafe}")
    return value


# Free text under the one text rule (gateway/http/text.py); give the length with Field().
Line = Annotated[str, AfterValidator(_line)]
"""One line, not blank, kept without its surrounding white space."""
Text = Annotated[str, AfterValidator(_text)]
"""One line, not blank, kept as sent."""
SingleLine = Annotated[str, AfterValidator(_single_line)]
"""One line, kept as sent (ids and names as the identity endpoints take them)."""
Lines = Annotated[str, AfterValidator(_lines)]
"""Text that may span lines (opinions, reasons), kept as sent."""


def rfc3339(value: str) -> datetime:
    """An RFC 3339 time with its zone (``Z`` or an offset)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone (e.g. Z)")
    return parsed


def _rfc3339_text(value: str) -> str:
    rfc3339(value)
    return value


Time = Annotated[
    str,
    Field(max_length=40, json_schema_extra={"format": "date-time"}),
    AfterValidator(_rfc3339_text),
]
"""An RFC 3339 time, kept as text (strict validation takes no ``datetime`` from JSON)."""


def location(error: ErrorDetails, prefix: str = "") -> str:
    """``steps[2].name`` for the location ``("steps", 2, "name")``."""
    where = prefix
    for part in error["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            where += f".{part}" if where else str(part)
    return where or "the body"


def message(error: ErrorDetails) -> str:
    """pydantic's message without its ``Value error, `` prefix, first letter lowered."""
    if error["type"] == "string_unicode":  # a lone surrogate, as the text rule words it
        return "must not contain an unpaired surrogate"
    if error["type"] == "model_type":
        return "must be a JSON object"
    text = error["msg"].removeprefix("Value error, ")
    return text[:1].lower() + text[1:]


def describe(exc: ValidationError, prefix: str = "") -> str:
    """The first refusal, naming the field: ``recipients[0]: string should match ...``."""
    first = exc.errors(include_url=False, include_input=False)[0]
    detail = f"{location(first, prefix)}: {message(first)}"
    more = exc.error_count() - 1
    return detail + (f" (and {more} more)" if more else "")


def validate(
    model: type[M],
    raw: Any,
    *,
    prefix: str = "",
    refuse: Callable[[str], Exception] = lambda detail: ApiError("invalid_request", detail),
) -> M:
    """*raw* (parsed JSON) as *model*, or *refuse*'s exception naming the first bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise refuse(describe(exc, prefix)) from None
