"""An audit log leaf, pure: RFC 8785 bytes of an event, the salted hash of its details and
the times as the log writes them. No I/O; it sits beside the Merkle tree (merkle.py) and the
signed checkpoints (signed_note.py) that are built over these leaves.

Leaf (docs/api.md): RFC 8785 JSON of ``{"index", "type", "at", "actor": {"official", "jkt"},
"department", "document", "details_hash"}`` with ``details_hash`` the lowercase hex SHA-256 of
``salt || RFC 8785(details)``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import rfc8785

__all__ = ["build_leaf", "canonical_details", "details_hash", "format_time"]


def format_time(at: datetime) -> str:
    """RFC 3339 UTC with microseconds: exactly what PostgreSQL keeps, so it round-trips."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# RFC 8785 (JCS) is compact JSON with sorted keys; for the values below the standard library's
# C encoder writes exactly those bytes (the same string escapes), many times faster than the
# pure Python ``rfc8785`` package, which stays the reference for everything else (floats, huge
# integers) and in the tests (tests/audit/test_canonical.py).
_SAFE_INTEGER = 2**53 - 1
_PLAIN_JSON = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)
_json_string = json.encoder.encode_basestring


def _is_plain_json(value: Any) -> bool:
    """Only dicts, lists, strings, booleans, None and integers JCS can carry; object keys in
    the Basic Multilingual Plane, where code point order (Python's sort) is UTF-16 order
    (JCS's sort)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INTEGER <= value <= _SAFE_INTEGER)
    if kind is dict:
        return all(
            type(key) is str and (key.isascii() or max(key) <= "\uffff") and _is_plain_json(item)
            for key, item in value.items()
        )
    if kind is list:
        return all(_is_plain_json(item) for item in value)
    return False


def canonical_details(details: Any) -> bytes:
    """RFC 8785 bytes of ``details``; values JCS cannot carry (huge integers, NaN) are kept
    as their JSON text so one odd event can never block the sequencer."""
    if _is_plain_json(details):
        try:
            return _PLAIN_JSON.encode(details).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 decide, as always
            pass
    try:
        return bytes(rfc8785.dumps(details))
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        text = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
        return bytes(rfc8785.dumps({"unrepresentable_json": text}))


def details_hash(salt: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(salt + canonical).digest()


def _json_or_null(text: str | None) -> str:
    return "null" if text is None else _json_string(text)


def build_leaf(
    *,
    index: int,
    type: str,
    at: datetime,
    actor_official: str | None,
    actor_jkt: str | None,
    department: str | None,
    document: str | None,
    details_hash: bytes,
) -> bytes:
    """The RFC 8785 leaf, written out with its keys in JCS order (the sequencer's hot path;
    equal to ``rfc8785.dumps`` of the leaf object, as the tests check)."""
    if not 0 <= index <= _SAFE_INTEGER:
        raise ValueError(f"leaf index {index} out of range")
    return (
        '{"actor":{"jkt":'
        + _json_or_null(actor_jkt)
        + ',"official":'
        + _json_or_null(actor_official)
        + '},"at":"'
        + format_time(at)
        + '","department":'
        + _json_or_null(department)
        + ',"details_hash":"'
        + details_hash.hex()
        + '","document":'
        + _json_or_null(document)
        + ',"index":'
        + str(int(index))
        + ',"type":'
        + _json_string(type)
        + "}"
    ).encode("utf-8")
