"""A minimal strict DER reader: just enough ASN.1 to check an RFC 3161 time-stamp token.

Kept in the SDK (instead of asn1crypto) so offline receipt verification needs only
``cryptography``. Single-byte tags and definite lengths only, as DER requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sealhub_sdk._internal.errors import VerificationError

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
GENERALIZED_TIME = 0x18


def _fail(detail: str) -> VerificationError:
    return VerificationError(detail, code="timestamp_invalid")


@dataclass(frozen=True)
class Tlv:
    """One DER element: its tag byte, its full encoding and its content."""

    tag: int
    encoded: bytes
    content: bytes

    def children(self) -> list[Tlv]:
        if not self.tag & 0x20:
            raise _fail("expected a constructed element")
        return read_all(self.content)

    def expect(self, tag: int) -> Tlv:
        if self.tag != tag:
            raise _fail(f"expected tag 0x{tag:02x}, found 0x{self.tag:02x}")
        return self


def read_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    if offset + 2 > len(data):
        raise _fail("truncated DER")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise _fail("multi-byte tags are not expected here")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise _fail("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise _fail("non-minimal DER length")
        pos += count
    end = pos + length
    if end > len(data):
        raise _fail("truncated DER")
    return Tlv(tag, data[offset:end], data[pos:end]), end


def read_all(data: bytes) -> list[Tlv]:
    items: list[Tlv] = []
    offset = 0
    while offset < len(data):
        item, offset = read_one(data, offset)
        items.append(item)
    return items


def parse(data: bytes) -> Tlv:
    item, end = read_one(data)
    if end != len(data):
        raise _fail("trailing bytes after DER")
    return item


def oid(tlv: Tlv) -> str:
    raw = tlv.expect(OID).content
    if not raw or raw[-1] & 0x80:
        raise _fail("malformed OID")
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def integer(tlv: Tlv) -> int:
    return int.from_bytes(tlv.expect(INTEGER).content, "big", signed=True)


def generalized_time(tlv: Tlv) -> datetime:
    text = tlv.expect(GENERALIZED_TIME).content.decode("ascii", "replace")
    if not text.endswith("Z") or len(text) < 15:
        raise _fail("genTime must be UTC GeneralizedTime")
    whole, _, fraction = text[:-1].partition(".")
    try:
        moment = datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise _fail("malformed GeneralizedTime") from None
    if fraction:
        moment = moment.replace(microsecond=int((fraction + "000000")[:6]))
    return moment
