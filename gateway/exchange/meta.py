"""A document's metadata as its sender gives it: parsed and bounded before anything is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.exchange.errors import ClassifiedNotAllowed, InvalidMeta
from gateway.http.text import unsafe_character
from gateway.workflow import rules as workflow
from storage import directory

URGENCIES = ("normal", "urgent", "very_urgent")
ALLOWED_CLASSIFICATIONS = ("public", "internal")
CLASSIFIED = ("confidential", "secret", "top_secret", "秘密", "机密", "绝密")
MAX_RECIPIENTS = 2000
_YEAR_IN_NUMBER = re.compile(r"[〔\[(（](\d{4})[〕\])）]")
_META_KEYS = frozenset(
    {"title", "doc_number", "urgency", "classification", "recipients", "cc", "deadline", "workflow"}
)


@dataclass(frozen=True)
class DocumentMeta:
    title: str
    doc_number: str
    doc_year: int
    urgency: str
    classification: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    deadline: datetime | None
    workflow: workflow.WorkflowSpec | None = None

    def canonical(self) -> bytes:
        """Stable bytes of the request for Idempotency-Key comparison."""
        body: dict[str, Any] = {
            "title": self.title,
            "doc_number": self.doc_number,
            "urgency": self.urgency,
            "classification": self.classification,
            "recipients": sorted(self.recipients),
            "cc": sorted(self.cc),
            "deadline": self.deadline.isoformat() if self.deadline else None,
        }
        if self.workflow is not None:
            body["workflow"] = self.workflow.as_json()
        return json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _text(raw: dict[str, Any], name: str, max_length: int) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidMeta(f"meta.{name} must be a non-empty string")
    if len(value) > max_length:
        raise InvalidMeta(f"meta.{name} must have at most {max_length} characters")
    if (unsafe := unsafe_character(value)) is not None:
        raise InvalidMeta(f"meta.{name} must not contain {unsafe}")
    return value.strip()


def _codes(raw: dict[str, Any], name: str, *, required: bool) -> tuple[str, ...]:
    value = raw.get(name, [] if not required else None)
    if not isinstance(value, list) or (required and not value):
        raise InvalidMeta(
            f"meta.{name} must be a non-empty list of department or group codes"
            if required
            else f"meta.{name} must be a list of codes"
        )
    if len(value) > MAX_RECIPIENTS:
        raise InvalidMeta(f"meta.{name} may name at most {MAX_RECIPIENTS} codes")
    codes = []
    for code in value:
        if not isinstance(code, str) or not directory.CODE_PATTERN.fullmatch(code):
            raise InvalidMeta(f"meta.{name} has an invalid code")
        codes.append(code)
    return tuple(dict.fromkeys(codes))


def parse_recipient_codes(value: Any) -> tuple[str, ...]:
    """The ``recipients`` of a resend: the same rules as in ``meta``."""
    return _codes({"recipients": value}, "recipients", required=True)


def parse_meta(raw: Any, *, now: datetime) -> DocumentMeta:
    """Validate the ``meta`` part (GB/T 9704 elements we carry) before any file is read."""
    if not isinstance(raw, dict):
        raise InvalidMeta("meta must be a JSON object")
    unknown = sorted(set(raw) - _META_KEYS)
    if unknown:
        raise InvalidMeta("unknown meta field(s): " + ", ".join(unknown)[:200])
    classification = raw.get("classification")
    if classification in CLASSIFIED:
        raise ClassifiedNotAllowed("classified documents may not travel on an Internet platform")
    if classification not in ALLOWED_CLASSIFICATIONS:
        raise InvalidMeta("meta.classification must be public or internal")
    urgency = raw.get("urgency", "normal")
    if urgency not in URGENCIES:
        raise InvalidMeta("meta.urgency must be normal, urgent or very_urgent")
    doc_number = _text(raw, "doc_number", 100)
    year_match = _YEAR_IN_NUMBER.search(doc_number)
    doc_year = int(year_match[1]) if year_match else now.year
    deadline = _deadline(raw.get("deadline"), now)
    recipients = _codes(raw, "recipients", required=True)
    cc = tuple(code for code in _codes(raw, "cc", required=False) if code not in recipients)
    return DocumentMeta(
        title=_text(raw, "title", 500),
        doc_number=doc_number,
        doc_year=doc_year,
        urgency=urgency,
        classification=classification,
        recipients=recipients,
        cc=cc,
        deadline=deadline,
        workflow=None if raw.get("workflow") is None else workflow.parse_workflow(raw["workflow"]),
    )


def _deadline(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidMeta("meta.deadline must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidMeta("meta.deadline must be an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise InvalidMeta("meta.deadline needs a time zone (e.g. Z)")
    if parsed <= now:
        raise InvalidMeta("meta.deadline must be in the future")
    return parsed


def due_at(
    deadline: datetime | None,
    urgency: str,
    sent_at: datetime,
    sign_for_within: Mapping[str, timedelta],
) -> datetime:
    """When a delivery must be signed for: the deadline, else by urgency; fixed when sent."""
    return deadline or sent_at + sign_for_within[urgency]
