"""Issue 16, the workflow's trust rules, over HTTPS against a real gateway: 补发 of a
signed-off document needs a leader's signed approval; a drafter cannot approve its own
document alone; a draft is read by its drafter and approvers, and by seal keepers only while
it awaits their seal."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from keys.jws import TYP_RESEND, sign_jws
from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import SENDER, meta_for, send
from tests.workflow.conftest import audit_types, denied_reasons
from tests.workflow.test_workflow_flow import Officials, decide, submit

NEW_RECIPIENT = "yl-gaj"
RECIPIENT = "yl-jyj"


@pytest.fixture(scope="module")
def team(gateway: Gateway) -> Iterator[Officials]:
    """A sending department's chain: drafter, two reviewers, two countersigners, a signer."""
    members = Officials(
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
    yield members
    for session in members.all():
        session.close()


def signed_off_and_sealed(
    team: Officials, seal_keeper: Session, doc_number: str, pdf: bytes
) -> dict[str, Any]:
    document = submit(team, doc_number, pdf)
    for session, step in [
        (team.reviewers[0], 0),
        (team.leaders[0], 1),
        (team.leaders[1], 1),
        (team.signer, 2),
    ]:
        answer = decide(session, document, step)
        assert answer.status_code == 200, answer.text
    sealed = seal_keeper.post(f"/v1/documents/{document['id']}/seal")
    assert sealed.status_code == 200, sealed.text
    body: dict[str, Any] = team.drafter.get(f"/v1/documents/{document['id']}").json()
    return body


def resend_approval(signer: Session, document: dict[str, Any], recipients: list[str]) -> str:
    return sign_jws(
        {
            "document": document["id"],
            "sha256": document["sha256"],
            "recipients": recipients,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        signer.key,
        typ=TYP_RESEND,
        kid=signer.kid,
    )


# --- 补发 ----------------------------------------------------------------------------------


def test_resending_a_signed_off_document_needs_a_leaders_signed_approval(
    gateway: Gateway, team: Officials, seal_keeper: Session, sample_pdf: bytes
) -> None:
    document = signed_off_and_sealed(team, seal_keeper, "玉政办发〔2026〕601号", sample_pdf)
    path = f"/v1/documents/{document['id']}/resend"
    wanted = [NEW_RECIPIENT]

    # A clerk widens the distribution of what the leader signed off: refused.
    bare = team.clerk.post(path, json={"recipients": wanted})
    assert bare.status_code == 403, bare.text
    assert bare.json()["code"] == "resend_requires_approval"
    # Signed by someone who is no leader (the clerk itself): refused.
    own = team.clerk.post(
        path, json={"recipients": wanted, "approval": resend_approval(team.clerk, document, wanted)}
    )
    assert own.status_code == 403 and own.json()["code"] == "resend_requires_approval"
    # A leader of another department: refused.
    with login_as(gateway, "yl-jyj", ["leader"]) as outsider:
        foreign = resend_approval(outsider, document, wanted)
        refused = team.clerk.post(path, json={"recipients": wanted, "approval": foreign})
    assert refused.status_code == 403 and refused.json()["code"] == "resend_requires_approval"
    # A leader's approval for other recipients does not cover these.
    other = resend_approval(team.signer, document, ["yl-kjj"])
    mismatch = team.clerk.post(path, json={"recipients": wanted, "approval": other})
    assert mismatch.status_code == 401, mismatch.text
    assert mismatch.json()["reason"] == "recipients_mismatch"
    assert [
        d["recipient"]
        for d in team.clerk.get(f"/v1/documents/{document['id']}").json()["deliveries"]
    ] == [d["recipient"] for d in document["deliveries"]]

    approved = team.clerk.post(
        path,
        json={"recipients": wanted, "approval": resend_approval(team.signer, document, wanted)},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["added"] == [NEW_RECIPIENT]
    assert "document.resent" in audit_types(gateway, document["id"])


def test_resending_a_document_sent_without_sign_off_needs_no_approval(
    seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕602号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    resent = seal_keeper.post(
        f"/v1/documents/{sent.json()['id']}/resend", json={"recipients": [NEW_RECIPIENT]}
    )
    assert resent.status_code == 200, resent.text
    assert resent.json()["added"] == [NEW_RECIPIENT]


# --- who approves, who reads drafts -----------------------------------------------------------


def test_a_leader_cannot_draft_and_sign_off_its_own_document(
    team: Officials, sample_pdf: bytes
) -> None:
    drafter = team.signer  # a leader
    alone = {"steps": [{"name": "签发", "mode": "any", "assignees": [drafter.official_id]}]}
    refused = send(
        drafter, meta_for([RECIPIENT], "玉政办发〔2026〕611号", workflow=alone), sample_pdf
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_workflow"
    # Reviewing every step itself and naming a second leader with "any" changes nothing.
    shared = {
        "steps": [
            {"name": "核稿", "mode": "any", "assignees": [drafter.official_id]},
            {
                "name": "签发",
                "mode": "any",
                "assignees": [drafter.official_id, team.leaders[0].official_id],
            },
        ]
    }
    refused = send(
        drafter, meta_for([RECIPIENT], "玉政办发〔2026〕612号", workflow=shared), sample_pdf
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_workflow"
    # The drafter may review its draft when someone else signs it off.
    fine = {
        "steps": [
            {"name": "核稿", "mode": "any", "assignees": [drafter.official_id]},
            {"name": "签发", "mode": "any", "assignees": [team.leaders[0].official_id]},
        ]
    }
    accepted = send(
        drafter, meta_for([RECIPIENT], "玉政办发〔2026〕613号", workflow=fine), sample_pdf
    )
    assert accepted.status_code == 201, accepted.text


def test_seal_keepers_read_a_draft_only_while_it_awaits_their_seal(
    team: Officials, seal_keeper: Session, sample_pdf: bytes
) -> None:
    document = submit(team, "玉政办发〔2026〕614号", sample_pdf)
    draft = f"/v1/documents/{document['id']}/draft"
    early = seal_keeper.get(draft)
    assert early.status_code == 403, early.status_code  # still in approval
    for session, step in [
        (team.reviewers[0], 0),
        (team.leaders[0], 1),
        (team.leaders[1], 1),
        (team.signer, 2),
    ]:
        assert decide(session, document, step).status_code == 200
    assert seal_keeper.get(draft).status_code == 200  # awaiting its seal
    assert seal_keeper.post(f"/v1/documents/{document['id']}/seal").status_code == 200
    late = seal_keeper.get(draft)
    assert late.status_code == 403 and late.json()["code"] == "forbidden"
    # The drafter and the approvers keep reading it; an uninvolved clerk never did.
    assert team.drafter.get(draft).status_code == 200
    assert team.reviewers[1].get(draft).status_code == 200
    assert team.clerk.get(draft).status_code == 403


def test_refusals_of_who_the_caller_is_are_audited_with_their_reason(
    gateway: Gateway, team: Officials, sample_pdf: bytes
) -> None:
    document = submit(team, "玉政办发〔2026〕615号", sample_pdf)
    path = f"/v1/documents/{document['id']}"
    assert team.clerk.get(f"{path}/draft").status_code == 403
    revised = team.clerk.post(
        f"{path}/versions", files={"file": ("v2.pdf", sample_pdf, "application/pdf")}
    )
    assert revised.status_code == 403
    assert decide(team.clerk, document, 0).status_code == 403
    assert denied_reasons(gateway, document["id"]) == [
        "not_an_approver",
        "not_the_drafter",
        "not_an_assignee",
    ]
