"""Approval chains (核稿 → 会签 → 签发) as pure rules: no database, no HTTP.

A workflow is an ordered list of steps; each step names its assignees and a mode,
``any`` (one approval completes it) or ``all`` (会签: every assignee approves, in any
order). Only the first incomplete step is open. Any rejection returns the draft to its
drafter; the approvals are bound to one draft version, so a new version starts over.
The last step is the sign-off (签发) and belongs to leaders only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from gateway.http.text import unsafe_character
from keys.codes import Code, CodedError
from storage.vocabulary import ApprovalDecision, Role, StepMode

MODES = tuple(StepMode)
SIGN_OFF_ROLE = Role.LEADER
# `system` is a department's software: it may draft (clerk rights) but never approve.
APPROVER_ROLES: frozenset[Role] = frozenset(
    {Role.CLERK, Role.LEADER, Role.DEPT_ADMIN, Role.SEAL_KEEPER}
)
DRAFTER_ROLES: frozenset[Role] = APPROVER_ROLES | {Role.SYSTEM}
MAX_STEPS = 10
MAX_ASSIGNEES = 50
MAX_STEP_NAME = 50

Outcome = Literal["recorded", "step_completed", "signed_off", "returned"]


class WorkflowError(CodedError):
    code: str = Code.INVALID_WORKFLOW


class DeniedAccess(Exception):
    """Refused for who the caller is, not for what it sent: the HTTP edge records it as
    ``access.denied`` with *reason* (for e-supervision) before answering."""

    reason: ClassVar[str]


class InvalidWorkflow(WorkflowError):
    code = Code.INVALID_WORKFLOW


class NotAnAssignee(WorkflowError, DeniedAccess):
    code = Code.FORBIDDEN
    reason = "not_an_assignee"


class StepNotOpen(WorkflowError):
    code = Code.STEP_NOT_OPEN


class AlreadyDecided(WorkflowError):
    code = Code.ALREADY_DECIDED


@dataclass(frozen=True)
class StepSpec:
    name: str
    mode: str
    assignees: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "assignees": list(self.assignees)}


@dataclass(frozen=True)
class WorkflowSpec:
    steps: tuple[StepSpec, ...]

    def as_json(self) -> dict[str, Any]:
        return {"steps": [step.as_json() for step in self.steps]}

    @property
    def assignees(self) -> frozenset[str]:
        return frozenset(official for step in self.steps for official in step.assignees)


def _official_id(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidWorkflow(f"{where} must be an official id")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidWorkflow(f"{where} must be an official id") from None


def parse_workflow(raw: Any) -> WorkflowSpec:
    """``{"steps": [{"name", "assignees", "mode"}]}`` checked for shape (not yet who)."""
    if not isinstance(raw, dict) or set(raw) != {"steps"}:
        raise InvalidWorkflow('meta.workflow must be {"steps": [...]}')
    steps_raw = raw["steps"]
    if not isinstance(steps_raw, list) or not 1 <= len(steps_raw) <= MAX_STEPS:
        raise InvalidWorkflow(f"meta.workflow.steps must list 1 to {MAX_STEPS} steps")
    steps: list[StepSpec] = []
    for index, step in enumerate(steps_raw):
        where = f"meta.workflow.steps[{index}]"
        if not isinstance(step, dict) or not set(step) <= {"name", "assignees", "mode"}:
            raise InvalidWorkflow(f"{where} must be an object with name, assignees, mode")
        name = step.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_STEP_NAME:
            raise InvalidWorkflow(f"{where}.name must be 1 to {MAX_STEP_NAME} characters")
        if (unsafe := unsafe_character(name)) is not None:
            raise InvalidWorkflow(f"{where}.name must not contain {unsafe}")
        mode = step.get("mode", StepMode.ANY)
        if mode not in MODES:
            raise InvalidWorkflow(f"{where}.mode must be all or any")
        assignees_raw = step.get("assignees")
        if not isinstance(assignees_raw, list) or not 1 <= len(assignees_raw) <= MAX_ASSIGNEES:
            raise InvalidWorkflow(f"{where}.assignees must list 1 to {MAX_ASSIGNEES} officials")
        assignees = tuple(
            dict.fromkeys(
                _official_id(value, f"{where}.assignees[{n}]")
                for n, value in enumerate(assignees_raw)
            )
        )
        steps.append(StepSpec(name.strip(), mode, assignees))
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise InvalidWorkflow("meta.workflow step names must be different")
    return WorkflowSpec(tuple(steps))


@dataclass(frozen=True)
class Candidate:
    """What the rules need to know about an official named as an assignee."""

    id: str
    department: str
    roles: frozenset[str]
    active: bool


def check_assignees(
    spec: WorkflowSpec,
    officials: Mapping[str, Candidate],
    department: str,
    drafter: str | None = None,
) -> None:
    """Assignees are active approvers of the sending department; the last step, leaders.

    Unknown ids and officials of other departments get the same answer, so the check
    does not reveal who exists elsewhere.
    """
    for index, step in enumerate(spec.steps):
        for official_id in step.assignees:
            official = officials.get(official_id)
            if official is None or official.department != department or not official.active:
                raise InvalidWorkflow(
                    f"step {index} ({step.name}): {official_id} is not an active official"
                    f" of {department}"
                )
            if not official.roles & APPROVER_ROLES:
                raise InvalidWorkflow(
                    f"step {index} ({step.name}): {official_id} has no role that may approve"
                )
    last = spec.steps[-1]
    if drafter is not None and drafter in last.assignees:
        # Otherwise a leader could draft, name itself for every step and sign its own
        # document off alone: the sign-off always comes from someone else.
        raise InvalidWorkflow(
            f"the last step ({last.name}) is the sign-off (签发): the drafter cannot sign off "
            "its own document"
        )
    for official_id in last.assignees:
        if SIGN_OFF_ROLE not in officials[official_id].roles:
            raise InvalidWorkflow(
                f"the last step ({last.name}) is the sign-off (签发): {official_id} is not a leader"
            )


@dataclass(frozen=True)
class Decision:
    step: int
    official: str
    decision: str


def step_complete(step: StepSpec, approvers: Iterable[str]) -> bool:
    approved = set(approvers) & set(step.assignees)
    if step.mode == StepMode.ANY:
        return bool(approved)
    return approved == set(step.assignees)


@dataclass(frozen=True)
class Progress:
    """Where a version of the draft stands: the open step, or signed off, or returned."""

    current: int | None
    completed: tuple[int, ...]
    rejected: bool

    @property
    def signed_off(self) -> bool:
        return self.current is None and not self.rejected


def progress(spec: WorkflowSpec, decisions: Sequence[Decision]) -> Progress:
    if any(decision.decision == ApprovalDecision.REJECT for decision in decisions):
        completed = _completed_prefix(spec, decisions)
        return Progress(None, completed, True)
    completed = _completed_prefix(spec, decisions)
    current = len(completed) if len(completed) < len(spec.steps) else None
    return Progress(current, completed, False)


def _completed_prefix(spec: WorkflowSpec, decisions: Sequence[Decision]) -> tuple[int, ...]:
    done: list[int] = []
    for index, step in enumerate(spec.steps):
        approvers = [
            d.official
            for d in decisions
            if d.step == index and d.decision == ApprovalDecision.APPROVE
        ]
        if not step_complete(step, approvers):
            break
        done.append(index)
    return tuple(done)


def open_step_for(spec: WorkflowSpec, decisions: Sequence[Decision], official: str) -> int:
    """The step *official* may decide now, or why not."""
    state = progress(spec, decisions)
    if not any(official in step.assignees for step in spec.steps):
        raise NotAnAssignee("you are not an assignee of this document's workflow")
    if state.current is None:
        raise StepNotOpen("this version of the draft has no open step")
    step = spec.steps[state.current]
    if official not in step.assignees:
        raise StepNotOpen(f"the open step is {state.current} ({step.name}); it is not yours")
    if any(d.step == state.current and d.official == official for d in decisions):
        raise AlreadyDecided("you already decided this step for this version")
    return state.current


def outcome_of(spec: WorkflowSpec, before: Sequence[Decision], decision: Decision) -> Outcome:
    """What recording *decision* does to the document."""
    if decision.decision == ApprovalDecision.REJECT:
        return "returned"
    after = progress(spec, [*before, decision])
    if after.signed_off:
        return "signed_off"
    if decision.step in after.completed:
        return "step_completed"
    return "recorded"
