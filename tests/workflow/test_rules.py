"""The pure step rules: which step is open, any/all, completion, who may be assigned."""

from __future__ import annotations

import uuid

import pytest

from gateway.workflow.rules import (
    AlreadyDecided,
    Candidate,
    Decision,
    InvalidWorkflow,
    NotAnAssignee,
    StepNotOpen,
    check_assignees,
    open_step_for,
    outcome_of,
    parse_workflow,
    progress,
)

A, B, C, D, E = (str(uuid.uuid4()) for _ in range(5))


def spec_raw() -> dict[str, object]:
    return {
        "steps": [
            {"name": "核稿", "mode": "any", "assignees": [A, B]},
            {"name": "会签", "mode": "all", "assignees": [C, D]},
            {"name": "签发", "assignees": [E]},
        ]
    }


def test_parse_defaults_and_dedupes() -> None:
    raw = spec_raw()
    raw["steps"][0]["assignees"] = [A, A.upper(), B]  # type: ignore[index]
    spec = parse_workflow(raw)
    assert [s.mode for s in spec.steps] == ["any", "all", "any"]
    assert spec.steps[0].assignees == (A, B)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"steps": []},
        {"steps": [{"name": "x", "assignees": []}]},
        {"steps": [{"name": "x", "assignees": ["not-an-id"]}]},
        {"steps": [{"name": "x", "assignees": [A], "mode": "most"}]},
        {"steps": [{"name": "", "assignees": [A]}]},
        {"steps": [{"name": "x", "assignees": [A]}, {"name": "x", "assignees": [B]}]},
        {"steps": [{"name": "x", "assignees": [A], "deadline": 3}]},
        {"steps": [{"name": "x", "assignees": [A]}], "extra": 1},
    ],
)
def test_parse_refuses(raw: object) -> None:
    with pytest.raises(InvalidWorkflow):
        parse_workflow(raw)


def test_chain_progress_any_all_and_sign_off() -> None:
    spec = parse_workflow(spec_raw())
    decisions: list[Decision] = []
    assert progress(spec, decisions).current == 0
    with pytest.raises(StepNotOpen):
        open_step_for(spec, decisions, C)
    with pytest.raises(NotAnAssignee):
        open_step_for(spec, decisions, str(uuid.uuid4()))
    assert outcome_of(spec, decisions, Decision(0, B, "approve")) == "step_completed"
    decisions.append(Decision(0, B, "approve"))
    with pytest.raises(StepNotOpen):
        open_step_for(spec, decisions, A)  # "any": closed by B
    assert open_step_for(spec, decisions, D) == 1
    assert outcome_of(spec, decisions, Decision(1, D, "approve")) == "recorded"
    decisions.append(Decision(1, D, "approve"))
    with pytest.raises(AlreadyDecided):
        open_step_for(spec, decisions, D)
    assert progress(spec, decisions).current == 1  # "all": C still missing
    decisions.append(Decision(1, C, "approve"))
    assert progress(spec, decisions).current == 2
    assert outcome_of(spec, decisions, Decision(2, E, "approve")) == "signed_off"
    decisions.append(Decision(2, E, "approve"))
    assert progress(spec, decisions).signed_off


def test_any_rejection_returns_the_draft() -> None:
    spec = parse_workflow(spec_raw())
    decisions = [Decision(0, A, "approve"), Decision(1, C, "approve")]
    assert outcome_of(spec, decisions, Decision(1, D, "reject")) == "returned"
    state = progress(spec, [*decisions, Decision(1, D, "reject")])
    assert state.rejected and state.current is None and not state.signed_off


def officials(**overrides: Candidate) -> dict[str, Candidate]:
    base = {
        A: Candidate(A, "yl-bgs", frozenset({"clerk"}), True),
        B: Candidate(B, "yl-bgs", frozenset({"clerk"}), True),
        C: Candidate(C, "yl-bgs", frozenset({"leader"}), True),
        D: Candidate(D, "yl-bgs", frozenset({"leader"}), True),
        E: Candidate(E, "yl-bgs", frozenset({"leader", "clerk"}), True),
    }
    return {**base, **overrides}


def test_assignee_rules() -> None:
    spec = parse_workflow(spec_raw())
    check_assignees(spec, officials(), "yl-bgs")
    refusals = {
        "not a leader": {E: Candidate(E, "yl-bgs", frozenset({"clerk"}), True)},
        "other department": {A: Candidate(A, "yl-jyj", frozenset({"clerk"}), True)},
        "disabled": {B: Candidate(B, "yl-bgs", frozenset({"clerk"}), False)},
        "software": {A: Candidate(A, "yl-bgs", frozenset({"system"}), True)},
    }
    for why, change in refusals.items():
        with pytest.raises(InvalidWorkflow):
            check_assignees(spec, officials(**change), "yl-bgs")
            pytest.fail(why)
    missing = officials()
    del missing[D]
    with pytest.raises(InvalidWorkflow):
        check_assignees(spec, missing, "yl-bgs")


def test_the_drafter_never_signs_off_its_own_document() -> None:
    """A leader drafting may review or countersign, never be the sign-off: someone else
    always approves."""
    spec = parse_workflow(spec_raw())
    check_assignees(spec, officials(), "yl-bgs", drafter=A)
    check_assignees(spec, officials(), "yl-bgs", drafter=C)
    with pytest.raises(InvalidWorkflow, match="drafter cannot sign off"):
        check_assignees(spec, officials(), "yl-bgs", drafter=E)
