"""Behaviour-identical speed-ups for three hot spots of pyhanko/asn1crypto parsing.

1. pyhanko's hex-string reader.

pyhanko reads ``<...>`` strings one byte at a time through Python generators; a signature's
/Contents is several kilobytes of hex, which made parsing it the largest single cost of
verifying a seal. This reader finds the closing ``>`` with one search and decodes with
binascii; anything unusual (comments, stray characters, truncation) is handed back to
pyhanko's own reader so errors and edge cases stay exactly pyhanko's.

2. pyhanko's PNG predictor undoing (FlateDecode ``/Predictor`` 10-15), which adds bytes one
by one in Python: four content streams of 60 MiB with predictor 12 held a worker for over
10 s of CPU from a file under a megabyte. Rows are added here as whole integers with carries
masked off at byte boundaries (SWAR), with pyhanko's exact semantics: filters 0 (None),
1 (Sub, against the raw previous byte, as pyhanko does) and 2 (Up), and the same assertion
and error for anything else.

3. asn1crypto's RFC 4518 string preparation of X.509 name values, a pure function of the
string that pyhanko calls for every name comparison (signer lookup, ESS certificate check,
path building) on freshly parsed certificates: memoised, since the same seal and CA names
come back in every document.
"""

from __future__ import annotations

import binascii
import functools
import re
from typing import Any, BinaryIO

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import filters, generic

_original = generic.read_hex_string_from_stream
_WHITESPACE = b" \n\r\t\f\x00"
_PLAIN_HEX = re.compile(rb"[0-9A-Fa-f \n\r\t\f\x00]*")
_CHUNK = 1 << 16


def _fast_read_hex_string(stream: BinaryIO) -> Any:
    start = stream.tell()
    stream.read(1)  # the opening '<'
    buf = bytearray()
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        end = chunk.find(b">")
        if end >= 0:
            buf += chunk[:end]
            body = bytes(buf)
            if _PLAIN_HEX.fullmatch(body) is None:
                break
            stream.seek(start + 1 + len(body) + 1)
            digits = body.translate(None, _WHITESPACE)
            if len(digits) % 2:
                digits += b"0"
            return generic.pdf_string(binascii.unhexlify(digits))
        buf += chunk
    stream.seek(start)
    return _original(stream)


_original_png_decode = filters._png_decode


def _add_bytes(a: int, b: int, low7: int, high: int) -> int:
    """Bytewise (a + b) mod 256 of two equally long big-endian byte strings as integers."""
    return ((a & low7) + (b & low7)) ^ ((a ^ b) & high)


def _fast_png_decode(data: memoryview, columns: int) -> bytes:
    rowlength = columns + 1
    assert len(data) % rowlength == 0
    low7 = int.from_bytes(b"\x7f" * columns, "big")
    high = int.from_bytes(b"\x80" * columns, "big")
    output = bytearray()
    previous = 0
    for start in range(0, len(data), rowlength):
        filter_byte = data[start]
        raw = int.from_bytes(data[start + 1 : start + rowlength], "big")
        if filter_byte == 0:
            row = 0
        elif filter_byte == 1:
            row = _add_bytes(raw, raw >> 8, low7, high)
        elif filter_byte == 2:
            row = _add_bytes(raw, previous, low7, high)
        else:
            raise NotImplementedError(f"Unsupported PNG filter {filter_byte!r}")
        previous = row
        output += row.to_bytes(columns, "big")
    return bytes(output)


_original_prep = asn1_x509.NameTypeAndValue._ldap_string_prep


@functools.lru_cache(maxsize=4096)
def _cached_prep(string: str) -> str:
    result: str = _original_prep(None, string)
    return result


def _ldap_string_prep(self: object, string: str) -> str:
    return _cached_prep(string)


def install() -> None:
    """Idempotent; all are looked up by attribute at each call."""
    generic.read_hex_string_from_stream = _fast_read_hex_string
    asn1_x509.NameTypeAndValue._ldap_string_prep = _ldap_string_prep
    filters._png_decode = _fast_png_decode


def uninstall() -> None:
    """Restore pyhanko's and asn1crypto's own functions (the bench measures plain pyhanko)."""
    generic.read_hex_string_from_stream = _original
    asn1_x509.NameTypeAndValue._ldap_string_prep = _original_prep
    filters._png_decode = _original_png_decode


def original_reader() -> Any:
    return _original
