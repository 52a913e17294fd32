"""Adding units and distribution groups over HTTPS (API.md: ``POST /v1/departments``,
``POST /v1/groups``): admins only, validated, one code namespace for both, audited, and a new
group works as a recipient at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import meta_for, send
from tests.exchange.test_exchange_flow import audit_details


@pytest.fixture(scope="module")
def admin(gateway: Gateway) -> Iterator[Session]:
    with login_as(gateway, "yl", ["admin"], name="平台管理员") as session:
        yield session


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


NEW_UNIT = {
    "code": "yl-szj",
    "name": "玉林市数据资源管理中心",
    "name_en": "Yulin Data Resources Centre",
    "parent": "yl",
    "kind": "department",
}


def test_an_admin_adds_a_unit_that_everyone_then_finds(gateway: Gateway, admin: Session) -> None:
    created = admin.post("/v1/departments", json=NEW_UNIT)
    assert created.status_code == 201, created.text
    assert created.json() == NEW_UNIT
    with login_as(gateway, "yl-jyj", ["clerk"]) as clerk:
        assert clerk.get("/v1/departments/yl-szj").json() == NEW_UNIT
        children = clerk.get("/v1/departments?parent=yl&limit=500").json()["items"]
        assert NEW_UNIT in children
        # Only admins add units.
        refused(clerk.post("/v1/departments", json={**NEW_UNIT, "code": "yl-x"}), 403, "forbidden")
    with gateway.client() as anonymous:
        refused(anonymous.post("/v1/departments", json=NEW_UNIT), 401, "invalid_token")
    assert [d["code"] for d in audit_details(gateway, "department.created")] == ["yl-szj"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**NEW_UNIT, "code": "yl-bgs"}, 409, "already_exists"),
        ({**NEW_UNIT, "code": "yl-new1", "parent": "nowhere"}, 422, "parent_unknown"),
        ({**NEW_UNIT, "code": "YL-Upper"}, 400, "invalid_request"),
        ({**NEW_UNIT, "code": "yl-new2", "name": ""}, 400, "invalid_request"),
        ({**NEW_UNIT, "code": "yl-new3", "name": "玉林市\u202e局"}, 400, "invalid_request"),
        ({**NEW_UNIT, "code": "yl-new4", "kind": "Bureau!"}, 400, "invalid_request"),
        ({**NEW_UNIT, "code": "yl-new5", "secret": "x"}, 400, "invalid_request"),
        ({"code": "yl-new6"}, 400, "invalid_request"),
    ],
)
def test_bad_units_are_refused_and_nothing_is_added(
    admin: Session, body: dict[str, Any], status: int, code: str
) -> None:
    refused(admin.post("/v1/departments", json=body), status, code)
    if body.get("code") != "yl-bgs" and isinstance(body.get("code"), str):
        assert admin.get(f"/v1/departments/{body['code']}").status_code in (400, 404)


def test_groups_share_the_code_namespace_and_work_as_recipients(
    gateway: Gateway, admin: Session, seal_keeper: Session, sample_pdf: bytes
) -> None:
    group = {
        "code": "flood-control",
        "name": "防汛抗旱指挥部成员单位",
        "members": ["yl-slj", "yl-yjj"],
    }
    created = admin.post("/v1/groups", json=group)
    assert created.status_code == 201, created.text
    assert created.json() == {**group, "members": sorted(group["members"])}
    assert admin.get("/v1/groups/flood-control").json()["members"] == ["yl-slj", "yl-yjj"]
    sent = send(seal_keeper, meta_for(["flood-control"], "玉政办发〔2026〕301号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    document = seal_keeper.get(f"/v1/documents/{sent.json()['id']}").json()
    assert sorted(d["recipient"] for d in document["deliveries"]) == ["yl-slj", "yl-yjj"]
    # One namespace: no unit may take a group's code, nor a group a unit's.
    refused(
        admin.post("/v1/departments", json={**NEW_UNIT, "code": "flood-control"}),
        409,
        "already_exists",
    )
    refused(admin.post("/v1/groups", json={**group, "code": "yl-jyj"}), 409, "already_exists")
    refused(admin.post("/v1/groups", json=group), 409, "already_exists")
    # An unknown member refuses the whole group.
    half = {"code": "half-made", "name": "半成品", "members": ["yl-slj", "nowhere"]}
    refused(admin.post("/v1/groups", json=half), 422, "recipient_unknown")
    assert admin.get("/v1/groups/half-made").status_code == 404
    refused(admin.post("/v1/groups", json={**half, "members": []}), 400, "invalid_request")
    with login_as(gateway, "yl-jyj", ["clerk"]) as clerk:
        refused(clerk.post("/v1/groups", json={**group, "code": "mine"}), 403, "forbidden")
    assert [g["code"] for g in audit_details(gateway, "group.created")] == ["flood-control"]
