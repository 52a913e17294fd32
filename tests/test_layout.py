"""The shape issue 18 gave the code, kept: route handlers only translate HTTP (20 lines at
most) and SQL is written only in storage/. Read from the source, so a new long handler or a
query in a service fails here, with its place named."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

MAX_HANDLER_LINES = 20
OUTSIDE_STORAGE = ("gateway", "keys", "seals")
SQL = re.compile(
    r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE|ALTER|DROP|TRUNCATE|LISTEN|NOTIFY)\b"
    r"[\s\S]*\b(FROM|INTO|SET|WHERE|VALUES|TABLE)\b"
    r"|\b(nextval|pg_advisory\w*|pg_try_advisory\w*|pg_notify)\s*\("
)


def _modules(*packages: str) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path, ast.parse(path.read_text("utf-8"), filename=str(path))


def _is_route(node: ast.AST) -> bool:
    """A function registered with ``@routes.add(...)``."""
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr == "add"
        for decorator in node.decorator_list
    )


def test_route_handlers_are_at_most_twenty_lines() -> None:
    long = []
    handlers = 0
    for path, module in _modules("gateway"):
        for node in ast.walk(module):
            if _is_route(node):
                assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                handlers += 1
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_HANDLER_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines})")
    assert handlers >= 70, "the route handlers were not found: is the decorator still routes.add?"
    assert long == [], "handlers should parse, call one service method and render"


def test_no_sql_outside_storage() -> None:
    found = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.value.strip()[:60]!r}"
        for path, module in _modules(*OUTSIDE_STORAGE)
        for node in ast.walk(module)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    assert found == [], "SQL belongs in storage/ (a repository taking the caller's connection)"


def test_the_sql_detector_sees_queries() -> None:
    """The check above can fail: it recognises the statements storage/ writes."""
    samples = [
        "SELECT id FROM seals WHERE department = $1",
        "INSERT INTO seal_requests (id) VALUES ($1)",
        "UPDATE seals SET status = 'revoked'",
        "SELECT pg_try_advisory_lock($1)",
        "SELECT nextval('tsa_serial_numbers')",
    ]
    assert all(SQL.search(sample) for sample in samples)
    assert not SQL.search("select the department to send from")
