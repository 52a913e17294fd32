"""A document's metadata as its sender gives it: parsed and bounded before anything is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from gateway.exchange.errors import ClassifiedNotAllowed, InvalidMeta
from gateway.http.models import ClosedBody, Line, Time, describe, rfc3339
from gateway.workflow import rules as workflow
from gateway.workflow.rules import InvalidWorkflow
from storage import directory

CLASSIFIED = ("confidential", "secret", "top_secret", "秘密", "机密", "绝密")
MAX_RECIPIENTS = 2000
_YEAR_IN_NUMBER = re.compile(r"[〔\[(（](\d{4})[〕\])）]")


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


Code = Annotated[str, Field(pattern=rf"^{directory.CODE_PATTERN.pattern}$")]
"""A department or group code."""


class WorkflowStepBody(ClosedBody):
    name: Line = Field(max_length=workflow.MAX_STEP_NAME)
    assignees: list[str] = Field(min_length=1, max_length=workflow.MAX_ASSIGNEES)
    mode: Literal["all", "any"] = "any"


class WorkflowBody(ClosedBody):
    """The approval chain (核稿, 会签, 签发): its steps in order, each with its assignees."""

    steps: list[WorkflowStepBody] = Field(min_length=1, max_length=workflow.MAX_STEPS)


class SendMeta(ClosedBody):
    """The ``meta`` part of a send (the GB/T 9704 elements we carry), checked in this field
    order before any file byte is read."""

    classification: Literal["public", "internal"]
    urgency: Literal["normal", "urgent", "very_urgent"] = "normal"
    doc_number: Line = Field(max_length=100)
    deadline: Time | None = None
    recipients: list[Code] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    cc: list[Code] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    title: Line = Field(max_length=500)
    workflow: WorkflowBody | None = None

    @model_validator(mode="before")
    @classmethod
    def _refusals_first(cls, raw: Any) -> Any:
        """Unknown fields, then a classified document (422, whatever else is wrong)."""
        if not isinstance(raw, dict):
            raise InvalidMeta("meta must be a JSON object")
        unknown = sorted(set(raw) - set(cls.model_fields))
        if unknown:
            raise InvalidMeta("unknown meta field(s): " + ", ".join(unknown)[:200])
        if raw.get("classification") in CLASSIFIED:
            raise ClassifiedNotAllowed(
                "classified documents may not travel on an Internet platform"
            )
        return raw


def parse_meta(raw: Any, *, now: datetime) -> DocumentMeta:
    """Validate the ``meta`` part (GB/T 9704 elements we carry) before any file is read."""
    try:
        body = SendMeta.model_validate(raw)
    except ValidationError as exc:
        at_workflow = exc.errors()[0]["loc"][:1] == ("workflow",)
        raise (InvalidWorkflow if at_workflow else InvalidMeta)(describe(exc, "meta")) from None
    year_match = _YEAR_IN_NUMBER.search(body.doc_number)
    recipients = tuple(dict.fromkeys(body.recipients))
    return DocumentMeta(
        title=body.title,
        doc_number=body.doc_number,
        doc_year=int(year_match[1]) if year_match else now.year,
        urgency=body.urgency,
        classification=body.classification,
        recipients=recipients,
        cc=tuple(code for code in dict.fromkeys(body.cc) if code not in recipients),
        deadline=_deadline(body.deadline, now),
        workflow=None
        if body.workflow is None
        else workflow.parse_workflow(body.workflow.model_dump()),
    )


def _deadline(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    parsed = rfc3339(value)
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
