"""The bodies declared once (gateway/http/models.py): /openapi.json shows a real schema for
every JSON 2xx of the converted domains, every ``$ref`` resolves, and a refused body names
the field at fault. In process: no gateway is booted for what the route table decides."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.exchange.delivery_handlers import ResendBody, SignatureBody
from gateway.exchange.errors import ClassifiedNotAllowed, InvalidMeta
from gateway.exchange.meta import SendMeta, parse_meta
from gateway.http.errors import ApiError
from gateway.http.models import describe, validate
from gateway.http.openapi import build_openapi
from gateway.routes import routes
from gateway.workflow.rules import InvalidWorkflow

CONVERTED = (
    "gateway.exchange.",
    "gateway.workflow.",
    "gateway.sealing.",
    "gateway.identity.",
    "gateway.http.service_handlers",
    "gateway.directory.",
    "gateway.audit.",
    "gateway.supervision.",
    "gateway.webhooks.",
)
SPEC = build_openapi(routes.routes, server_url="https://sealhub.invalid", version="test")
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _converted_json_answers() -> list[tuple[str, str, str, dict[str, Any]]]:
    answers = []
    for route in routes.routes:
        if not route.handler.__module__.startswith(CONVERTED):
            continue
        operation = SPEC["paths"][route.path][route.method.lower()]
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith("2") and schema is not None:
                answers.append((route.method, route.path, status, schema))
    return answers


def test_every_json_2xx_of_the_converted_domains_has_a_declared_schema() -> None:
    answers = _converted_json_answers()
    assert len(answers) > 25
    for method, path, status, schema in answers:
        refs = [schema["$ref"]] if "$ref" in schema else _refs(schema.get("anyOf", []))
        assert refs, f"{method} {path} {status}: {schema} is not a declared type"
        for ref in refs:
            declared = SCHEMAS[ref.removeprefix("#/components/schemas/")]
            assert declared["type"] == "object" and declared["properties"], ref


def test_every_ref_resolves() -> None:
    refs = set(_refs(SPEC))
    assert "#/components/schemas/SendMeta" in refs
    missing = {ref for ref in refs if ref.removeprefix("#/components/schemas/") not in SCHEMAS}
    assert not missing


def test_request_models_are_the_documented_request_bodies() -> None:
    body = SPEC["paths"]["/v1/documents/{id}/resend"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResendBody"
    }
    assert SCHEMAS["ResendBody"]["required"] == ["recipients"]
    meta = SPEC["paths"]["/v1/documents"]["post"]["requestBody"]["content"]
    part = meta["multipart/form-data"]["schema"]["properties"]["meta"]
    assert part["contentSchema"] == {"$ref": "#/components/schemas/SendMeta"}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ({}, "signature: field required"),
        ({"signature": 7}, "signature: input should be a valid string"),
        ({"signature": ""}, "signature: string should have at least 1 character"),
        ([], "the body: must be a JSON object"),
    ],
)
def test_a_refused_body_names_its_field(raw: Any, detail: str) -> None:
    with pytest.raises(ApiError) as refused:
        validate(SignatureBody, raw)
    assert refused.value.code == "invalid_request"
    assert str(refused.value) == detail


def test_strict_types_and_the_text_rule() -> None:
    with pytest.raises(ValidationError) as refused:
        ResendBody.model_validate({"recipients": ["yl-a", "Bad Code"]})
    assert describe(refused.value).startswith("recipients[1]: string should match pattern")
    assert ResendBody.model_validate({"recipients": ["yl-a"], "extra": 1}).approval is None


META = {
    "title": "关于做好安全生产检查工作的通知",
    "doc_number": "玉政办发〔2026〕1号",
    "classification": "internal",
    "recipients": ["yl-a", "yl-a", "yl-b"],
    "cc": ["yl-b", "yl-c"],
}


def test_meta_keeps_its_refusals_and_their_codes() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    parsed = parse_meta(META, now=now)
    assert (parsed.recipients, parsed.cc, parsed.doc_year) == (("yl-a", "yl-b"), ("yl-c",), 2026)
    with pytest.raises(ClassifiedNotAllowed):  # 422 before any other fault is looked at
        parse_meta({**META, "classification": "机密", "title": ""}, now=now)
    with pytest.raises(InvalidMeta, match="unknown meta field"):
        parse_meta({**META, "classification": "机密", "colour": "red"}, now=now)
    with pytest.raises(InvalidMeta, match="surrogate"):
        parse_meta({**META, "title": "\ud800"}, now=now)
    with pytest.raises(InvalidMeta, match=r"meta\.title: must not contain control"):
        parse_meta({**META, "title": "标题\x1b"}, now=now)
    with pytest.raises(InvalidWorkflow, match=r"meta\.workflow\.steps"):
        parse_meta({**META, "workflow": {"steps": []}}, now=now)
    assert "workflow" in SendMeta.model_json_schema()["properties"]
