"""拟稿 → 核稿 → 会签 → 签发 → 用印 → 分发 over HTTPS with the real gateway."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import SENDER, meta_for, send
from tests.seals.seal_corpus import reportlab_pdf
from tests.workflow.conftest import approval_jws, audit_types

RECIPIENT = "yl-jyj"


@dataclass
class Officials:
    drafter: Session
    reviewers: tuple[Session, Session]
    leaders: tuple[Session, Session]
    signer: Session
    clerk: Session

    def all(self) -> list[Session]:
        return [
            self.drafter,
            *self.reviewers,
            *self.leaders,
            self.signer,
            self.clerk,
        ]


@pytest.fixture(scope="module")
def officials(gateway: Gateway) -> Iterator[Officials]:
    team = Officials(
        drafter=login_as(gateway, SENDER, ["clerk"], name="拟稿人"),
        reviewers=(
            login_as(gateway, SENDER, ["clerk"], name="核稿人甲"),
            login_as(gateway, SENDER, ["clerk"], name="核稿人乙"),
        ),
        leaders=(
            login_as(gateway, SENDER, ["leader"], name="副主任甲"),
            login_as(gateway, SENDER, ["leader"], name="副主任乙"),
        ),
        signer=login_as(gateway, SENDER, ["leader"], name="主任"),
        clerk=login_as(gateway, SENDER, ["clerk"], name="办事员"),
    )
    yield team
    for session in team.all():
        session.close()


def chain(team: Officials) -> dict[str, Any]:
    return {
        "steps": [
            {
                "name": "核稿",
                "mode": "any",
                "assignees": [s.official_id for s in team.reviewers],
            },
            {
                "name": "会签",
                "mode": "all",
                "assignees": [s.official_id for s in team.leaders],
            },
            {"name": "签发", "mode": "any", "assignees": [team.signer.official_id]},
        ]
    }


def decide(
    session: Session,
    document: dict[str, Any],
    step: int | str,
    decision: str = "approve",
    opinion: str = "同意",
    draft_sha256: str | None = None,
) -> httpx.Response:
    signature = approval_jws(
        session,
        document["id"],
        draft_sha256 or document["draft_sha256"],
        step,
        decision,
        opinion,
    )
    return session.post(f"/v1/documents/{document['id']}/approvals", json={"signature": signature})


def submit(team: Officials, doc_number: str, pdf: bytes) -> dict[str, Any]:
    sent = send(team.drafter, meta_for([RECIPIENT], doc_number, workflow=chain(team)), pdf)
    assert sent.status_code == 201, sent.text
    body: dict[str, Any] = sent.json()
    assert body["status"] == "in_approval"
    assert body["sha256"] is None and body["deliveries"] == 0
    return body


def test_three_step_chain_is_sealed_only_by_the_seal_keeper(
    gateway: Gateway,
    officials: Officials,
    seal_keeper: Session,
    sample_pdf: bytes,
    pdfsig: Callable[[bytes], str],
    tmp_path: Path,
) -> None:
    team = officials
    document = submit(team, "玉政办发〔2026〕101号", sample_pdf)
    doc_id = document["id"]

    # The reviewer reads the exact bytes it signs over.
    draft = team.reviewers[1].get(f"/v1/documents/{doc_id}/draft")
    assert draft.status_code == 200
    assert hashlib.sha256(draft.content).hexdigest() == document["draft_sha256"]
    assert team.clerk.get(f"/v1/documents/{doc_id}/draft").status_code == 403

    # Nothing may be sealed before sign-off.
    early = seal_keeper.post(f"/v1/documents/{doc_id}/seal")
    assert early.status_code == 409, early.text
    # A leader cannot skip ahead to the countersign step.
    ahead = decide(team.leaders[0], document, 1)
    assert ahead.status_code == 409 and ahead.json()["code"] == "step_not_open"

    signature = approval_jws(
        team.reviewers[1], doc_id, document["draft_sha256"], 0, opinion="文字已核"
    )
    key = {"Idempotency-Key": f"review-{doc_id}"}
    path = f"/v1/documents/{doc_id}/approvals"
    reviewed = team.reviewers[1].post(path, json={"signature": signature}, headers=key)
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["outcome"] == "step_completed"
    again = team.reviewers[1].post(path, json={"signature": signature}, headers=key)
    assert (again.status_code, again.json()) == (200, reviewed.json())
    replayed = team.reviewers[1].post(path, json={"signature": signature})
    assert replayed.status_code == 409
    # "any": the other reviewer's step is closed.
    late = decide(team.reviewers[0], document, 0)
    assert late.status_code == 409 and late.json()["code"] == "step_not_open"

    first = decide(team.leaders[0], document, "会签", opinion="同意，请主任签发")
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "recorded"
    assert team.leaders[0].get(f"/v1/documents/{doc_id}").json()["status"] == "in_approval"
    twice = decide(team.leaders[0], document, 1)
    assert twice.status_code == 409 and twice.json()["code"] == "already_decided"
    second = decide(team.leaders[1], document, 1, opinion="同意")
    assert second.json()["outcome"] == "step_completed", second.text

    signed = decide(team.signer, document, 2, opinion="签发")
    assert signed.status_code == 200, signed.text
    assert signed.json() | {"id": None} == {
        "id": None,
        "step": 2,
        "decision": "approve",
        "outcome": "signed_off",
        "status": "awaiting_seal",
    }

    # Signed off: the draft is frozen, and still not dispatched.
    view = team.drafter.get(f"/v1/documents/{doc_id}").json()
    assert view["status"] == "awaiting_seal" and view["deliveries"] == []
    revised = team.drafter.post(
        f"/v1/documents/{doc_id}/versions",
        files={"file": ("v2.pdf", reportlab_pdf(pages=1), "application/pdf")},
    )
    assert revised.status_code == 409 and revised.json()["code"] == "document_locked"
    assert decide(team.signer, document, 2).status_code == 409

    # A clerk cannot seal; the seal keeper of another department cannot see the document.
    refused = team.clerk.post(f"/v1/documents/{doc_id}/seal")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    with login_as(gateway, RECIPIENT, ["seal_keeper"]) as stranger:
        assert stranger.post(f"/v1/documents/{doc_id}/seal").status_code == 404

    key = {"Idempotency-Key": f"seal-{doc_id}"}
    sealed = seal_keeper.post(f"/v1/documents/{doc_id}/seal", headers=key)
    assert sealed.status_code == 200, sealed.text
    result = sealed.json()
    assert result["status"] == "dispatched" and result["deliveries"] == 1
    assert result["draft_sha256"] == document["draft_sha256"]
    # A retry with the same key gets the first answer; a new request is refused.
    retried = seal_keeper.post(f"/v1/documents/{doc_id}/seal", headers=key)
    assert (retried.status_code, retried.json()) == (200, result)
    assert seal_keeper.post(f"/v1/documents/{doc_id}/seal").status_code == 409

    with login_as(gateway, RECIPIENT, ["clerk"]) as receiver:
        content = receiver.get(f"/v1/documents/{doc_id}/content")
        assert content.status_code == 200
        assert hashlib.sha256(content.content).hexdigest() == result["sha256"]
        report = pdfsig(content.content)
        assert "Signature is Valid." in report, report
        assert "Certificate is Trusted." in report, report
        assert "Total document signed" in report, report
        trail_seen_by_recipient = receiver.get(f"/v1/documents/{doc_id}").json()["approvals"]

    final = team.drafter.get(f"/v1/documents/{doc_id}").json()
    assert final["status"] == "dispatched" and final["sealed_by"] == seal_keeper.official_id
    trail = final["approvals"]
    assert trail == trail_seen_by_recipient
    assert [(a["step"], a["step_name"], a["official"], a["decision"]) for a in trail] == [
        (0, "核稿", team.reviewers[1].official_id, "approve"),
        (1, "会签", team.leaders[0].official_id, "approve"),
        (1, "会签", team.leaders[1].official_id, "approve"),
        (2, "签发", team.signer.official_id, "approve"),
    ]
    assert [a["official_name"] for a in trail] == ["核稿人乙", "副主任甲", "副主任乙", "主任"]
    assert [a["opinion"] for a in trail] == ["文字已核", "同意，请主任签发", "同意", "签发"]
    assert all(a["at"] and a["version"] == 1 for a in trail)
    assert [s["state"] for s in final["workflow"]["steps"]] == ["done", "done", "done"]
    (tmp_path / "trail.json").write_text(json.dumps(trail, ensure_ascii=False, indent=2))
    print("APPROVAL TRAIL", json.dumps(trail, ensure_ascii=False, indent=2))

    types = audit_types(gateway, doc_id)
    assert types[:2] == ["document.created", "workflow.step_opened"]
    assert types.count("approval.approved") == 4
    assert types.count("workflow.step_completed") == 3
    assert "document.signed_off" in types
    assert types.index("document.signed_off") < types.index("seal.used")
    assert types.index("seal.used") < types.index("document.dispatched")
    assert "delivery.created" in types and "draft.downloaded" in types


def test_rejection_returns_it_and_a_new_version_starts_over(
    officials: Officials, sample_pdf: bytes, gateway: Gateway
) -> None:
    team = officials
    document = submit(team, "玉政办发〔2026〕102号", sample_pdf)
    doc_id = document["id"]
    assert decide(team.reviewers[0], document, 0).status_code == 200
    rejected = decide(team.leaders[1], document, 1, "reject", "请补充检查时间安排")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["outcome"] == "returned"
    assert team.drafter.get(f"/v1/documents/{doc_id}").json()["status"] == "returned"
    # Nobody can continue on a returned draft.
    after = decide(team.leaders[0], document, 1)
    assert after.status_code == 409 and after.json()["code"] == "conflict"

    # Only the drafter submits the new version; a PDF is required.
    not_drafter = team.clerk.post(
        f"/v1/documents/{doc_id}/versions",
        files={"file": ("v2.pdf", reportlab_pdf(pages=1), "application/pdf")},
    )
    assert not_drafter.status_code == 403
    not_pdf = team.drafter.post(
        f"/v1/documents/{doc_id}/versions",
        files={"file": ("v2.txt", b"hello", "text/plain")},
    )
    assert not_pdf.status_code == 415 and not_pdf.json()["code"] == "not_a_pdf"

    new_pdf = reportlab_pdf(pages=3)
    key = {"Idempotency-Key": f"v2-{doc_id}"}

    def submit_v2(pdf: bytes) -> httpx.Response:
        return team.drafter.post(
            f"/v1/documents/{doc_id}/versions",
            files={"file": ("v2.pdf", pdf, "application/pdf")},
            headers=key,
        )

    revised = submit_v2(new_pdf)
    assert revised.status_code == 201, revised.text
    version = revised.json()
    # A retry whose first answer was lost gets that answer, not a version 3.
    retried = submit_v2(new_pdf)
    assert (retried.status_code, retried.json()) == (201, version)
    other_file = submit_v2(reportlab_pdf(pages=2))
    assert (other_file.status_code, other_file.json()["code"]) == (409, "idempotency_conflict")
    assert version["version"] == 2 and version["status"] == "in_approval"
    assert version["draft_sha256"] == hashlib.sha256(new_pdf).hexdigest()

    # An approval of version 1 does not count for version 2.
    stale = decide(team.reviewers[1], document, 0)
    assert stale.status_code == 401 and stale.json()["code"] == "invalid_signature"
    assert stale.json()["reason"] == "content_mismatch"
    fresh = decide(team.reviewers[1], document, 0, draft_sha256=version["draft_sha256"])
    assert fresh.status_code == 200 and fresh.json()["outcome"] == "step_completed"

    view = team.drafter.get(f"/v1/documents/{doc_id}").json()
    assert [(a["version"], a["step"], a["decision"]) for a in view["approvals"]] == [
        (1, 0, "approve"),
        (1, 1, "reject"),
        (2, 0, "approve"),
    ]
    assert view["approvals"][1]["opinion"] == "请补充检查时间安排"
    assert view["workflow"]["version"] == 2 and view["workflow"]["current_step"] == 1
    assert [v["version"] for v in view["workflow"]["versions"]] == [1, 2]
    old = team.reviewers[0].get(f"/v1/documents/{doc_id}/draft?version=1")
    assert hashlib.sha256(old.content).hexdigest() == document["draft_sha256"]
    types = audit_types(gateway, doc_id)
    assert "approval.rejected" in types and "document.returned" in types
    assert "document.revised" in types


def test_recipients_see_only_the_sign_off_of_what_they_received(
    gateway: Gateway, officials: Officials, seal_keeper: Session, sample_pdf: bytes
) -> None:
    """Earlier drafts, their rejections and opinions stay inside the sending department."""
    team = officials
    document = submit(team, "玉政办发〔2026〕106号", sample_pdf)
    doc_id = document["id"]
    assert decide(team.reviewers[0], document, 0, "reject", "内部意见：格式不对").is_success
    revised = team.drafter.post(
        f"/v1/documents/{doc_id}/versions",
        files={"file": ("v2.pdf", reportlab_pdf(pages=2), "application/pdf")},
    )
    assert revised.status_code == 201, revised.text
    v2 = revised.json()["draft_sha256"]
    for session, step in [
        (team.reviewers[0], 0),
        (team.leaders[0], 1),
        (team.leaders[1], 1),
        (team.signer, 2),
    ]:
        answer = decide(session, document, step, draft_sha256=v2)
        assert answer.status_code == 200, answer.text
    assert seal_keeper.post(f"/v1/documents/{doc_id}/seal").status_code == 200

    inside = team.drafter.get(f"/v1/documents/{doc_id}").json()
    assert (inside["approvals"][0]["version"], inside["approvals"][0]["decision"]) == (1, "reject")
    assert [v["version"] for v in inside["workflow"]["versions"]] == [1, 2]
    with login_as(gateway, RECIPIENT, ["clerk"]) as receiver:
        outside = receiver.get(f"/v1/documents/{doc_id}").json()
    assert {a["version"] for a in outside["approvals"]} == {2}
    assert [a["step_name"] for a in outside["approvals"]] == ["核稿", "会签", "会签", "签发"]
    assert "内部意见" not in json.dumps(outside, ensure_ascii=False)
    assert [v["version"] for v in outside["workflow"]["versions"]] == [2]


def test_a_draft_in_its_chain_can_be_withdrawn(
    officials: Officials, seal_keeper: Session, sample_pdf: bytes
) -> None:
    """A countersigner who left could otherwise hold the document in_approval forever."""
    team = officials
    document = submit(team, "玉政办发〔2026〕107号", sample_pdf)
    assert decide(team.reviewers[0], document, 0).status_code == 200
    withdrawn = team.drafter.post(f"/v1/documents/{document['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    late = decide(team.leaders[0], document, 1)
    assert late.status_code == 409, late.text
    assert seal_keeper.post(f"/v1/documents/{document['id']}/seal").status_code == 409
    again = team.drafter.post(f"/v1/documents/{document['id']}/withdraw")
    assert again.status_code == 409


def test_approval_for_another_document_or_step_is_refused(
    officials: Officials, sample_pdf: bytes
) -> None:
    team = officials
    first = submit(team, "玉政办发〔2026〕103号", sample_pdf)
    second = submit(team, "玉政办发〔2026〕104号", reportlab_pdf(pages=1))
    reviewer = team.reviewers[0]

    other_document = approval_jws(reviewer, second["id"], first["draft_sha256"], 0)
    refused = reviewer.post(
        f"/v1/documents/{first['id']}/approvals", json={"signature": other_document}
    )
    assert refused.status_code == 401 and refused.json()["reason"] == "document_mismatch"

    other_step = decide(reviewer, first, 1)
    assert other_step.status_code == 401 and other_step.json()["reason"] == "step_mismatch"
    other_name = decide(reviewer, first, "签发")
    assert other_name.status_code == 401 and other_name.json()["reason"] == "step_mismatch"

    other_draft = decide(reviewer, first, 0, draft_sha256=second["draft_sha256"])
    assert other_draft.status_code == 401 and other_draft.json()["reason"] == "content_mismatch"

    # Signed by someone else's key: the token's key must be the signer's.
    forged = approval_jws(team.reviewers[1], first["id"], first["draft_sha256"], 0)
    stolen = reviewer.post(f"/v1/documents/{first['id']}/approvals", json={"signature": forged})
    assert stolen.status_code == 401 and stolen.json()["code"] == "invalid_signature"

    # Not an assignee at all: 403 (audited); a signature cannot be used twice.
    outsider = decide(team.clerk, first, 0)
    assert outsider.status_code == 403 and outsider.json()["code"] == "forbidden"
    good = approval_jws(reviewer, first["id"], first["draft_sha256"], 0)
    assert (
        reviewer.post(
            f"/v1/documents/{first['id']}/approvals", json={"signature": good}
        ).status_code
        == 200
    )
    view = reviewer.get(f"/v1/documents/{first['id']}").json()
    assert len(view["approvals"]) == 1


def test_an_opinion_with_hostile_characters_is_refused(
    officials: Officials, sample_pdf: bytes
) -> None:
    """A bidi override would make the trail read differently from what was signed."""
    team = officials
    document = submit(team, "玉政办发〔2026〕105号", sample_pdf)
    reviewer = team.reviewers[0]
    for opinion in ("同意\u202e意同不", "同意\x00", "同意\x1b[2J"):
        refused = decide(reviewer, document, 0, opinion=opinion)
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "invalid_request"
    assert reviewer.get(f"/v1/documents/{document['id']}").json()["approvals"] == []
    accepted = decide(reviewer, document, 0, opinion="同意。\n请按期办理。")
    assert accepted.status_code == 200, accepted.text


def test_workflow_is_validated_before_the_file(
    gateway: Gateway, officials: Officials, sample_pdf: bytes
) -> None:
    team = officials
    steps = chain(team)["steps"]
    # The sign-off must be assigned to leaders only.
    not_leader = {"steps": [*steps[:2], {**steps[2], "assignees": [team.clerk.official_id]}]}
    answer = send(
        team.drafter,
        meta_for([RECIPIENT], "玉政办发〔2026〕105号", workflow=not_leader),
        sample_pdf,
    )
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_workflow"
    # Assignees must belong to the sending department.
    with login_as(gateway, RECIPIENT, ["leader"]) as foreign_leader:
        foreign = {"steps": [{**steps[2], "assignees": [foreign_leader.official_id]}]}
        answer = send(
            team.drafter,
            meta_for([RECIPIENT], "玉政办发〔2026〕106号", workflow=foreign),
            sample_pdf,
        )
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_workflow"
    bad_mode = {"steps": [{**steps[2], "mode": "most"}]}
    answer = send(
        team.drafter, meta_for([RECIPIENT], "玉政办发〔2026〕107号", workflow=bad_mode), sample_pdf
    )
    assert answer.status_code == 422
    # Without a workflow a clerk still cannot send.
    direct = send(team.drafter, meta_for([RECIPIENT], "玉政办发〔2026〕108号"), sample_pdf)
    assert direct.status_code == 403 and direct.json()["code"] == "seal_requires_approval"
