"""The one ``Range`` form a document download honours: a single ``bytes=a-b``."""

from __future__ import annotations

from gateway.exchange.errors import RangeNotSatisfiable


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range as [start, end); None for the whole body; 416 if unsatisfiable."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None  # unsupported forms: serve the whole document (RFC 9110 allows it)
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise ValueError
            start, end = max(0, size - suffix), size
        else:
            start = int(first)
            end = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        raise RangeNotSatisfiable("invalid Range header") from None
    if start >= size or start >= end or start < 0:
        raise RangeNotSatisfiable(f"the document has {size} bytes")
    return start, end
