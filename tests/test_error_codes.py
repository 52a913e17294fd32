"""One registry of error codes, ``keys.codes.Code``: every code the packages can raise is a
member, each member has an HTTP status, and each has a row with that status in the error
table of docs/api.md (and the table no row for a code that is not one).

A code without a status becomes a 500 at the edge (``certification_forbids_seal`` did, for
a client's certified PDF). Codes are found twice: by reading the source (``Code.NAME``
anywhere, ``code = "..."`` in a class body, ``ApiError("...")``, ``problem_response(status,
"...")``, ``code="..."``) and by importing every module and walking the exception classes,
so neither a dynamic class nor an unusual spelling slips past.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest

from gateway.http.errors import STATUS_BY_CODE
from keys.codes import Code

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "seals", "storage", "keys")
TABLE_ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (\d{3}) \| .+ \|$")


def _call_name(node: ast.Call) -> str:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return ""


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _codes_in(tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Code"
            and node.attr.isupper()
        ):
            # Code.NAME: the member's value, or the name itself when there is no such member.
            member = Code.__members__.get(node.attr)
            yield (member.value if member else f"Code.{node.attr}"), node.lineno
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(statement, ast.Assign):
                    targets, value = statement.targets, statement.value
                elif isinstance(statement, ast.AnnAssign):
                    targets, value = [statement.target], statement.value
                if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                    code = _string(value)
                    if code is not None:
                        yield code, statement.lineno
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            position = {"ApiError": 0, "problem_response": 1}.get(name)
            if position is not None and len(node.args) > position:
                code = _string(node.args[position])
                if code is not None:
                    yield code, node.lineno
            for keyword in node.keywords:
                code = _string(keyword.value) if keyword.arg == "code" else None
                if code is not None:
                    yield code, node.lineno


def codes_in_source() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"), str(path))
            for code, line in _codes_in(tree):
                found.setdefault(code, []).append(f"{path.relative_to(REPO)}:{line}")
    return found


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def codes_of_exception_classes() -> dict[str, list[str]]:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not info.name.endswith(".__main__"):  # running it would start the CLI
                importlib.import_module(info.name)
    found: dict[str, list[str]] = {}
    for cls in set(_subclasses(BaseException)):
        if cls.__module__.split(".")[0] not in PACKAGES:
            continue
        code = cls.__dict__.get("code")
        if isinstance(code, str):
            found.setdefault(code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    return found


def documented_codes() -> dict[str, int]:
    text = (REPO / "docs" / "api.md").read_text("utf-8")
    section = text.split("\n## Error codes\n", 1)
    assert len(section) == 2, "docs/api.md has no '## Error codes' section"
    table = section[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        match = TABLE_ROW.match(line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is documented twice"
            rows[match.group(1)] = int(match.group(2))
    return rows


def test_the_scans_find_codes() -> None:
    """Guards against a scan that silently finds nothing (and so passes)."""
    source, classes = codes_in_source(), codes_of_exception_classes()
    assert {"certification_forbids_seal", "pdf_malformed", "payload_too_large"} <= set(source)
    assert {"certification_forbids_seal", "rate_limited", "not_found"} <= set(classes)
    assert len(source) > 60 and len(classes) > 50


@pytest.mark.parametrize("scan", [codes_in_source, codes_of_exception_classes])
def test_every_raised_code_is_registered(scan: object) -> None:
    assert callable(scan)
    found: dict[str, list[str]] = scan()
    missing = {
        code: where for code, where in found.items() if code not in Code.__members__.values()
    }
    assert missing == {}, f"codes missing from keys.codes.Code: {missing}"


def test_every_code_has_an_error_status() -> None:
    assert {code: code.status for code in Code if not 400 <= code.status < 600} == {}
    assert all(HTTPStatus(code.status) for code in Code)  # a real status, with a phrase
    assert dict(STATUS_BY_CODE) == {code.value: code.status for code in Code}


def test_every_code_is_documented_with_its_status() -> None:
    documented = documented_codes()
    registered = {code.value: code.status for code in Code}
    undocumented = sorted(set(registered) - set(documented))
    assert undocumented == [], f"codes missing from the error table of docs/api.md: {undocumented}"
    unknown = sorted(set(documented) - set(registered))
    assert unknown == [], f"docs/api.md documents codes that are not in Code: {unknown}"
    wrong = {
        code: (status, registered[code])
        for code, status in documented.items()
        if registered[code] != status
    }
    assert wrong == {}, f"docs/api.md status differs from keys.codes.Code: {wrong}"
