"""The audit catalogue is the one place event types are spelled (storage/audit_events.py)."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

from storage.audit_events import EventType
from storage.audit_outbox import EVENT_TYPE

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The domains whose services build every event through the catalogue.
CATALOGUED = (
    "exchange",
    "workflow",
    "sealing",
    "identity",
    "pki",
    "directory",
    "supervision",
    "webhooks",
    "audit",
)
# A dotted lower-case word pair: what an event type looks like in source.
LOOKS_LIKE_TYPE = re.compile(r"[a-z_]+\.[a-z_]+")


def test_every_type_is_a_valid_outbox_type() -> None:
    for event_type in EventType:
        assert EVENT_TYPE.fullmatch(event_type.value), event_type


def _fail_on_events_built_by_hand(paths: list[pathlib.Path]) -> None:
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AuditEvent":
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} builds an AuditEvent by hand")


@pytest.mark.parametrize("domain", CATALOGUED)
def test_catalogued_domains_build_no_event_by_hand(domain: str) -> None:
    """An ``AuditEvent(...)`` in these packages would bypass the catalogue's types and keys."""
    paths = sorted((ROOT / "gateway" / domain).glob("*.py"))
    assert paths, f"gateway/{domain} has no modules: the list names a package that moved"
    _fail_on_events_built_by_hand(paths)


def test_storage_builds_no_event_by_hand_outside_the_catalogue() -> None:
    catalogue = ROOT / "storage" / "audit_events.py"
    paths = [path for path in sorted(ROOT.glob("storage/**/*.py")) if path != catalogue]
    _fail_on_events_built_by_hand(paths)


def test_every_event_type_in_the_code_is_in_the_catalogue() -> None:
    """A type string written anywhere in gateway/ or storage/ names an EventType: the enum
    lists every type there is."""
    families = {event_type.value.split(".")[0] for event_type in EventType}
    known = {event_type.value for event_type in EventType}
    found = set()
    for path in [*ROOT.glob("gateway/**/*.py"), *ROOT.glob("storage/**/*.py")]:
        tree = ast.parse(path.read_text())
        # Pieces of f-strings are not types (f"supervision.alert_{action}" is built whole).
        pieces = {
            id(part)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            for part in node.values
        }
        for node in ast.walk(tree):
            if id(node) in pieces:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if LOOKS_LIKE_TYPE.fullmatch(text) and text.split(".")[0] in families:
                    found.add(text)
    assert found - known == set()
