"""docs/api.md is the contract: its route index is what /openapi.json serves (the error table
is checked against the code registry by tests/test_error_codes.py)."""

from __future__ import annotations

import re

from tests.conftest import REPO, Gateway

API_DOC = REPO / "docs" / "api.md"
METHODS = "GET|POST|PUT|PATCH|DELETE"
INDEX_ROW = re.compile(rf"^\| `({METHODS}) (/\S*)` \|", re.MULTILINE)
# Any operation named in the prose, also the `GET|POST /v1/groups` shorthand.
MENTION = re.compile(rf"`((?:{METHODS})(?:\|(?:{METHODS}))*) (/[^`\s?]*)")


def _section(title: str) -> str:
    text = API_DOC.read_text("utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _index() -> set[tuple[str, str]]:
    return set(INDEX_ROW.findall(_section("Route index")))


def test_route_index_is_what_openapi_json_serves(gateway: Gateway) -> None:
    with gateway.client() as client:
        spec = client.get("/openapi.json").json()
    served = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }
    documented = _index()
    assert sorted(served - documented) == [], "served but missing from docs/api.md's index"
    assert sorted(documented - served) == [], "in docs/api.md's index but not served"


def test_every_operation_the_prose_names_exists() -> None:
    text = API_DOC.read_text("utf-8")
    named = {
        (method, path) for methods, path in MENTION.findall(text) for method in methods.split("|")
    }
    assert len(named) > 30  # the pattern still finds the prose's operations
    assert sorted(named - _index()) == []
