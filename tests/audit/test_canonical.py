"""The sequencer's fast RFC 8785 paths write exactly what the reference ``rfc8785`` writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import audit_leaf

# Strings that stress escaping and key order: controls, quotes, backslashes, U+2028, CJK,
# the private use area (U+E000..U+FFFF) and astral characters (surrogate pairs in UTF-16).
_TRICKY = st.sampled_from(
    ["", '"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "名称", "\ue000", "\uffff", "😀", "a"]
)
_TEXT = st.one_of(st.text(), st.lists(_TRICKY, max_size=4).map("".join))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _reference(value: Any) -> bytes | None:
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, ValueError):
        return None


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_canonical_details_is_rfc8785(value: Any) -> None:
    expected = _reference(value)
    if expected is not None:  # others fall back to their JSON text, as before
        assert audit_leaf.canonical_details(value) == expected


def test_canonical_details_edge_cases() -> None:
    cases: list[Any] = [
        {"\ue000": 1, "😀": 2},  # UTF-16 order puts the astral key first
        {"b": [1, 2.5, {"a": None}], "a": "x"},
        {"big": 2**53 - 1, "small": -(2**53 - 1)},
        {"名称": "玉林市人民政府", "nested": {"ok": True, "x": 1.5}},
        [],
        {},
        "\u2028\x00",
    ]
    for value in cases:
        assert audit_leaf.canonical_details(value) == rfc8785.dumps(value)
    assert audit_leaf.canonical_details({"n": 2**53}) == rfc8785.dumps(
        {"unrepresentable_json": '{"n": 9007199254740992}'}
    )


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**53 - 1),
    _TEXT,
    st.datetimes(timezones=st.just(UTC)),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), _TEXT),
    st.binary(min_size=32, max_size=32),
)
def test_build_leaf_is_rfc8785(
    index: int,
    type_: str,
    at: datetime,
    official: str | None,
    jkt: str | None,
    department: str | None,
    document: str | None,
    digest: bytes,
) -> None:
    leaf = {
        "index": index,
        "type": type_,
        "at": audit_leaf.format_time(at),
        "actor": {"official": official, "jkt": jkt},
        "department": department,
        "document": document,
        "details_hash": digest.hex(),
    }
    expected = _reference(leaf)
    if expected is None:  # lone surrogates: PostgreSQL text never holds them
        return
    assert (
        audit_leaf.build_leaf(
            index=index,
            type=type_,
            at=at,
            actor_official=official,
            actor_jkt=jkt,
            department=department,
            document=document,
            details_hash=digest,
        )
        == expected
    )
