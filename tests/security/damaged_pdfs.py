"""A deterministic corpus of damaged PDFs, made at test time from PDFs the tests build.

Real-world damage (the public corpora that broke sealing on main) comes down to a few
kinds: files cut short, bytes changed in the cross-reference data, the trailer, object
streams or content streams, cross-reference chains that loop, object streams whose header
lies, form and annotation arrays of the wrong shape, encryption dictionaries nobody can
use, nesting deeper than any parser's stack, and lengths far beyond the file. Every kind
is generated here from seeded randomness, so a failing case has a stable name and the
same bytes on every run.
"""

from __future__ import annotations

import functools
import io
import random
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

TRUNCATION_POINTS = 20
FLIPS_PER_REGION = 8


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes


# --- helpers that build and edit PDFs byte by byte ----------------------------------------


def raw_pdf(objects: Mapping[int, bytes], trailer: bytes = b"/Root 1 0 R") -> bytes:
    """A classic-xref PDF from raw object bodies; ``trailer`` is the dictionary's inside."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        if number in offsets:
            out += b"%010d 00000 n \n" % offsets[number]
        else:
            out += b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, xref)
    return bytes(out)


def stream(body: bytes, extra: bytes = b"", *, length: bytes | None = None) -> bytes:
    declared = length if length is not None else b"%d" % len(body)
    return b"<< /Length %s %s >>\nstream\n" % (declared, extra) + body + b"\nendstream"


PAGE_CONTENT = b"BT /F1 24 Tf 72 720 Td (damaged corpus) Tj ET"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def one_page(
    *, catalog_extra: bytes = b"", page_extra: bytes = b"", extra: Mapping[int, bytes] = {}
) -> dict[int, bytes]:
    """Objects 1-5 of a valid one-page document; callers damage or extend them."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog_extra,
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> %s >>" % page_extra,
        4: stream(PAGE_CONTENT),
        5: FONT,
    }
    objects.update(extra)
    return objects


def last_startxref(data: bytes) -> int:
    found = data.rfind(b"startxref")
    match = re.match(rb"startxref\s+(\d+)", data[found:])
    return int(match.group(1)) if match else 0


def _trailer_size(data: bytes) -> int:
    sizes = [int(m.group(1)) for m in re.finditer(rb"/Size\s+(\d+)", data)]
    return max(sizes) if sizes else 1


@functools.lru_cache(maxsize=16)
def root_number(data: bytes) -> int:
    """The catalog's object number in a healthy base document (found with pyhanko once)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    number: int = reader.trailer.raw_get("/Root").reference.idnum
    return number


def append_update(
    data: bytes,
    objects: Mapping[int, bytes],
    *,
    trailer_extra: bytes = b"",
    prev: int | None = None,
    root: int | None = None,
) -> bytes:
    """An incremental update (classic xref section) replacing or adding ``objects``."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for number in sorted(offsets):
        out += b"%d 1\n%010d 00000 n \n" % (number, offsets[number])
    size = max([_trailer_size(data), *(n + 1 for n in objects)])
    previous = last_startxref(data) if prev is None else prev
    root_ref = root if root is not None else root_number(data)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root_ref,
        previous,
        trailer_extra,
        xref,
    )
    return bytes(out)


def flip(data: bytes, start: int, end: int, rng: random.Random, count: int) -> bytes:
    """``count`` bytes in [start, end) changed, each XORed with a non-zero value."""
    out = bytearray(data)
    for _ in range(count):
        position = rng.randrange(start, max(start + 1, end))
        out[position] ^= rng.randrange(1, 256)
    return bytes(out)


def _regions(data: bytes) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges of the xref, trailer, object streams and content streams of a file."""
    found: dict[str, list[tuple[int, int]]] = {
        "xref": [],
        "trailer": [],
        "objstm": [],
        "content": [],
        "signature": [],
    }
    for match in re.finditer(rb"\nxref\s*\n", data):
        end = data.find(b"trailer", match.end())
        found["xref"].append((match.start() + 1, end if end > 0 else len(data)))
    for match in re.finditer(rb"trailer\s*<<", data):
        end = data.find(b"%%EOF", match.end())
        found["trailer"].append((match.start(), end if end > 0 else len(data)))
    for match in re.finditer(rb"startxref\s+\d+", data):
        found["trailer"].append((match.start(), match.end()))
    for match in re.finditer(rb"\d+ \d+ obj\s*<<(.{0,400}?)>>\s*stream\r?\n", data, re.S):
        head = match.group(1)
        end = data.find(b"endstream", match.end())
        if end < 0:
            continue
        if b"/ObjStm" in head:
            found["objstm"].append((match.end(), end))
        elif b"/XRef" in head:
            found["xref"].append((match.end(), end))
        elif b"/Subtype" not in head and b"/Type" not in head and b"/Length1" not in head:
            found["content"].append((match.end(), end))
    for match in re.finditer(rb"/ByteRange\s*\[[^\]]*\]", data):
        found["signature"].append((match.start(), match.end()))
    for match in re.finditer(rb"/Contents\s*<([0-9a-fA-F]{64,})", data):
        found["signature"].append((match.start(1), match.start(1) + 4096))
    return {name: ranges for name, ranges in found.items() if ranges}


# --- the kinds of damage --------------------------------------------------------------------


def truncations(name: str, data: bytes) -> Iterator[Case]:
    for point in range(1, TRUNCATION_POINTS + 1):
        cut = len(data) * point // (TRUNCATION_POINTS + 1)
        yield Case(f"{name}/truncated-{point:02d}of{TRUNCATION_POINTS + 1}", data[:cut])


def byte_flips(name: str, data: bytes, rng: random.Random) -> Iterator[Case]:
    for region, ranges in sorted(_regions(data).items()):
        for index in range(FLIPS_PER_REGION):
            start, end = ranges[rng.randrange(len(ranges))] if region != "xref" else ranges[-1]
            if region == "signature" and index % 2:
                start, end = ranges[0]
            count = 1 if index < 3 else rng.randrange(2, 24)
            yield Case(f"{name}/flip-{region}-{index}", flip(data, start, end, rng, count))


def xref_loops(name: str, data: bytes) -> Iterator[Case]:
    # With no objects, an update's xref section starts where the old file ends.
    own = len(data if data.endswith(b"\n") else data + b"\n")
    yield Case(f"{name}/xref-prev-is-itself", append_update(data, {}, prev=own))
    placeholder = 10**9  # ten digits, replaced in place so no offset moves
    first = append_update(data, {}, prev=placeholder)
    second = append_update(first, {}, prev=last_startxref(first), root=root_number(data))
    cycle = second.replace(b"/Prev %d " % placeholder, b"/Prev %010d " % last_startxref(second), 1)
    yield Case(f"{name}/xref-prev-two-cycle", cycle)
    yield Case(f"{name}/startxref-zero", _set_startxref(data, 0))
    yield Case(f"{name}/startxref-past-eof", _set_startxref(data, len(data) * 3))
    yield Case(f"{name}/startxref-mid-object", _set_startxref(data, len(data) // 3))
    yield Case(f"{name}/xref-prev-negative", append_update(data, {}, prev=-5))
    yield Case(f"{name}/xref-prev-huge", append_update(data, {}, prev=10**15))


def _set_startxref(data: bytes, value: int) -> bytes:
    at = data.rfind(b"startxref")
    tail = re.sub(rb"startxref\s+\d+", b"startxref\n%d" % value, data[at:], count=1)
    return data[:at] + tail


def _objstm_pdf(
    inner: Mapping[int, bytes],
    *,
    n: bytes | None = None,
    first: bytes | None = None,
    table: bytes | None = None,
    extends: bytes = b"",
    container_self: bool = False,
    index_shift: int = 0,
    filter_garbage: bool = False,
) -> bytes:
    """A PDF 1.5 file whose objects live in one object stream, with a lie or two told."""
    numbers = sorted(inner)
    bodies = b""
    pairs = []
    for number in numbers:
        pairs.append(b"%d %d" % (number, len(bodies)))
        bodies += inner[number] + b"\n"
    header = table if table is not None else b" ".join(pairs) + b"\n"
    payload = header + bodies
    objstm_number = max(numbers) + 1
    xref_number = objstm_number + 1
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    objstm_offset = len(out)
    if filter_garbage:
        encoded, filt = zlib.compress(payload)[:-7] + b"garbage", b"/Filter /FlateDecode"
    else:
        encoded, filt = zlib.compress(payload), b"/Filter /FlateDecode"
    out += b"%d 0 obj\n" % objstm_number + stream(
        encoded,
        b"/Type /ObjStm /N %s /First %s %s %s"
        % (n or b"%d" % len(numbers), first or b"%d" % len(header), filt, extends),
    )
    out += b"\nendobj\n"
    xref_offset = len(out)
    rows = [b"\x00" + (0).to_bytes(4, "big") + (65535).to_bytes(2, "big")]
    by_number = dict.fromkeys(range(1, xref_number + 1), b"")
    for index, number in enumerate(numbers):
        container = objstm_number if not container_self else number
        by_number[number] = (
            b"\x02" + container.to_bytes(4, "big") + (index + index_shift).to_bytes(2, "big")
        )
    by_number[objstm_number] = b"\x01" + objstm_offset.to_bytes(4, "big") + b"\x00\x00"
    by_number[xref_number] = b"\x01" + xref_offset.to_bytes(4, "big") + b"\x00\x00"
    for number in range(1, xref_number + 1):
        rows.append(by_number[number] or b"\x00" + bytes(4) + b"\xff\xff")
    xref_data = b"".join(rows)
    out += b"%d 0 obj\n" % xref_number + stream(
        xref_data, b"/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R" % (xref_number + 1)
    )
    out += b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_offset
    return bytes(out)


def _objstm_inner() -> dict[int, bytes]:
    inner = one_page()
    del inner[4]  # streams may not live in object streams; keep the content outside
    inner[3] = inner[3].replace(b"/Contents 4 0 R", b"")
    return inner


def object_streams() -> Iterator[Case]:
    inner = _objstm_inner()
    yield Case("raw-objstm/healthy", _objstm_pdf(inner))
    yield Case("raw-objstm/n-huge", _objstm_pdf(inner, n=b"999999999"))
    yield Case("raw-objstm/n-negative", _objstm_pdf(inner, n=b"-3"))
    yield Case("raw-objstm/n-not-a-number", _objstm_pdf(inner, n=b"(four)"))
    yield Case("raw-objstm/first-zero", _objstm_pdf(inner, first=b"0"))
    yield Case("raw-objstm/first-past-end", _objstm_pdf(inner, first=b"100000"))
    yield Case("raw-objstm/first-negative", _objstm_pdf(inner, first=b"-40"))
    yield Case("raw-objstm/table-garbage", _objstm_pdf(inner, table=b"x y z q 1 2 << >>\n"))
    yield Case("raw-objstm/table-offsets-huge", _objstm_pdf(inner, table=b"1 0 2 99999 3 -5 5 7\n"))
    yield Case("raw-objstm/table-short", _objstm_pdf(inner, table=b"1 0\n"))
    yield Case("raw-objstm/extends-itself", _objstm_pdf(inner, extends=b"/Extends 6 0 R"))
    yield Case("raw-objstm/object-in-itself", _objstm_pdf(inner, container_self=True))
    yield Case("raw-objstm/index-out-of-range", _objstm_pdf(inner, index_shift=40))
    yield Case("raw-objstm/flate-garbage", _objstm_pdf(inner, filter_garbage=True))
    inner_with_stream = dict(inner)
    inner_with_stream[4] = stream(PAGE_CONTENT)
    yield Case("raw-objstm/contains-a-stream", _objstm_pdf(inner_with_stream))
    inner_with_objstm_ref = dict(inner)
    inner_with_objstm_ref[1] = b"<< /Type /Catalog /Pages 6 0 R >>"
    yield Case("raw-objstm/catalog-points-at-objstm", _objstm_pdf(inner_with_objstm_ref))


def forms_and_annotations() -> Iterator[Case]:
    """Malformed /AcroForm /Fields and page /Annots, in small raw files."""
    sig_value = (
        b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached"
        b" /ByteRange %s /Contents <%s> >>"
    )
    shapes: dict[str, tuple[bytes, bytes, dict[int, bytes]]] = {
        "fields-integer": (b"/AcroForm << /Fields 5 >>", b"", {}),
        "fields-string": (b"/AcroForm << /Fields (fields) >>", b"", {}),
        "fields-dangling-ref": (b"/AcroForm << /Fields [99 0 R] >>", b"", {}),
        "fields-contain-catalog": (b"/AcroForm << /Fields [1 0 R] >>", b"", {}),
        "fields-contain-null-and-number": (b"/AcroForm << /Fields [null 7 (x) /N] >>", b"", {}),
        "acroform-not-dict": (b"/AcroForm [1 2 3]", b"", {}),
        "acroform-dangling": (b"/AcroForm 77 0 R", b"", {}),
        "field-kids-loop": (
            b"/AcroForm << /Fields [6 0 R] >>",
            b"",
            {6: b"<< /T (a) /Kids [7 0 R] >>", 7: b"<< /T (b) /Parent 6 0 R /Kids [6 0 R] >>"},
        ),
        "field-parent-loop": (
            b"/AcroForm << /Fields [6 0 R] >>",
            b"/Annots [6 0 R]",
            {6: b"<< /T (a) /FT /Sig /Parent 6 0 R /Subtype /Widget /Rect [0 0 1 1] >>"},
        ),
        "field-kids-deep": (
            b"/AcroForm << /Fields [6 0 R] >>",
            b"",
            {
                6 + i: b"<< /T (f%d) /Kids [%d 0 R] >>" % (i, 7 + i)
                if i < 399
                else b"<< /T (leaf) /FT /Tx >>"
                for i in range(400)
            },
        ),
        "sig-field-value-integer": (
            b"/AcroForm << /Fields [6 0 R] /SigFlags 3 >>",
            b"/Annots [6 0 R]",
            {6: b"<< /T (Sig1) /FT /Sig /V 42 /Subtype /Widget /Rect [0 0 1 1] /P 3 0 R >>"},
        ),
        "sig-field-value-dangling": (
            b"/AcroForm << /Fields [6 0 R] /SigFlags 3 >>",
            b"/Annots [6 0 R]",
            {6: b"<< /T (Sig1) /FT /Sig /V 88 0 R /Subtype /Widget /Rect [0 0 1 1] >>"},
        ),
        "sig-byterange-garbage": (
            b"/AcroForm << /Fields [6 0 R] /SigFlags 3 >>",
            b"/Annots [6 0 R]",
            {
                6: b"<< /T (Sig1) /FT /Sig /V 7 0 R /Subtype /Widget /Rect [0 0 1 1] >>",
                7: sig_value % (b"[0 -1 99999999999 (x)]", b"3082" * 8),
            },
        ),
        "sig-byterange-short": (
            b"/AcroForm << /Fields [6 0 R] /SigFlags 3 >>",
            b"/Annots [6 0 R]",
            {
                6: b"<< /T (Sig1) /FT /Sig /V 7 0 R /Subtype /Widget /Rect [0 0 1 1] >>",
                7: sig_value % (b"[0 10]", b"00" * 16),
            },
        ),
        "sig-contents-not-cms": (
            b"/AcroForm << /Fields [6 0 R] /SigFlags 3 >>",
            b"/Annots [6 0 R]",
            {
                6: b"<< /T (Sig1) /FT /Sig /V 7 0 R /Subtype /Widget /Rect [0 0 1 1] >>",
                7: sig_value % (b"[0 10 20 30]", b"30820fff0201" + b"ab" * 60),
            },
        ),
        "annots-integer": (b"", b"/Annots 12", {}),
        "annots-dangling": (b"", b"/Annots [55 0 R 56 0 R]", {}),
        "annots-contain-page": (b"", b"/Annots [3 0 R]", {}),
        "annots-mixed-junk": (b"", b"/Annots [null 1 (a) [] << >> /Widget]", {}),
        "annots-appearance-not-stream": (
            b"",
            b"/Annots [6 0 R]",
            {6: b"<< /Type /Annot /Subtype /Widget /Rect [0 0 9 9] /AP << /N 5 >> >>"},
        ),
        "annots-rect-junk": (
            b"",
            b"/Annots [6 0 R]",
            {6: b"<< /Type /Annot /Subtype /Widget /Rect [(a) /b null] /P 6 0 R >>"},
        ),
    }
    for name, (catalog_extra, page_extra, extra) in shapes.items():
        yield Case(
            f"forms/{name}",
            raw_pdf(one_page(catalog_extra=catalog_extra, page_extra=page_extra, extra=extra)),
        )


ENCRYPTION_DICTIONARIES: dict[str, bytes] = {
    "integer": b"/Encrypt 5",
    "string": b"/Encrypt (secret)",
    "empty-dict": b"/Encrypt << >>",
    "dangling-ref": b"/Encrypt 98 0 R",
    "standard-no-keys": b"/Encrypt << /Filter /Standard >>",
    "standard-v99": b"/Encrypt << /Filter /Standard /V 99 /R 99 /O (x) /U (y) /P -1 >>",
    "standard-v5-short-keys": b"/Encrypt << /Filter /Standard /V 5 /R 6 /Length 256"
    b" /O (o) /U (u) /OE (e) /UE (e) /Perms (p) /P -4 >>",
    "standard-v4-no-cf": b"/Encrypt << /Filter /Standard /V 4 /R 4 /Length 128"
    b" /StmF /StdCF /StrF /StdCF /O (o) /U (u) /P -4 >>",
    "standard-unknown-cfm": b"/Encrypt << /Filter /Standard /V 4 /R 4 /Length 128"
    b" /CF << /StdCF << /CFM /Rot13 /Length 16 >> >> /StmF /StdCF /StrF /StdCF"
    b" /O <00> /U <00> /P -4 >>",
    "standard-negative-length": b"/Encrypt << /Filter /Standard /V 2 /R 3 /Length -8"
    b" /O (o) /U (u) /P -4 >>",
    "unknown-filter": b"/Encrypt << /Filter /NoSuchHandler /V 1 >>",
    "pubsec-garbage-recipients": b"/Encrypt << /Filter /Adobe.PubSec /SubFilter"
    b" /adbe.pkcs7.s5 /V 4 /R 4 /Recipients [<3082ffff01> (x)] >>",
    "pubsec-no-recipients": b"/Encrypt << /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s4 >>",
}


def bad_encryption(name: str, data: bytes | None) -> Iterator[Case]:
    """Trailers whose /Encrypt no handler can use: in a raw file and as an update of ``data``."""
    for kind, entry in ENCRYPTION_DICTIONARIES.items():
        yield Case(
            f"encrypt/raw-{kind}", raw_pdf(one_page(), b"/Root 1 0 R /ID [<00><00>] " + entry)
        )
        if data is not None:
            yield Case(f"{name}/encrypt-{kind}", append_update(data, {}, trailer_extra=entry))


def deep_nesting() -> Iterator[Case]:
    for depth in (1_000, 100_000):
        arrays = b"[" * depth + b"]" * depth
        dicts = b"<< /A " * depth + b">> " * depth
        yield Case(
            f"nesting/array-{depth}-in-catalog", raw_pdf(one_page(catalog_extra=b"/X " + arrays))
        )
        yield Case(
            f"nesting/dict-{depth}-in-catalog", raw_pdf(one_page(catalog_extra=b"/X " + dicts))
        )
        yield Case(
            f"nesting/array-{depth}-in-resources",
            raw_pdf(one_page(page_extra=b"/Extra " + arrays)),
        )
        yield Case(
            f"nesting/array-{depth}-in-info",
            raw_pdf(one_page(extra={9: arrays}), b"/Root 1 0 R /Info 9 0 R"),
        )
        yield Case(
            f"nesting/unclosed-{depth}", raw_pdf(one_page(catalog_extra=b"/X " + b"[" * depth))
        )
    chain = {6 + i: b"%d 0 R" % (7 + i) for i in range(3000)}
    chain[3006] = b"(end)"
    yield Case(
        "nesting/reference-chain-3000", raw_pdf(one_page(catalog_extra=b"/X 6 0 R", extra=chain))
    )
    tree: dict[int, bytes] = {}
    depth = 300
    for level in range(depth):
        number = 10 + level
        parent = b"2 0 R" if level == 0 else b"%d 0 R" % (number - 1)
        tree[number] = b"<< /Type /Pages /Parent %s /Kids [%d 0 R] /Count 1 >>" % (
            parent,
            number + 1,
        )
    tree[10 + depth] = (
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>" % (9 + depth)
    )
    objects = one_page(extra=tree)
    objects[2] = b"<< /Type /Pages /Kids [10 0 R] /Count 1 >>"
    yield Case("nesting/page-tree-300-deep", raw_pdf(objects))
    objects = one_page()
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count 20000 >>" % (b"3 0 R " * 20000)
    yield Case("nesting/page-repeated-20000", raw_pdf(objects))


def huge_lengths() -> Iterator[Case]:
    lengths = {
        "length-huge": b"99999999999",
        "length-2gib": b"2147483648",
        "length-negative": b"-1",
        "length-real": b"1e30",
        "length-string": b"(long)",
        "length-dangling-ref": b"66 0 R",
        "length-ref-huge": b"6 0 R",
        "length-ref-loop": b"7 0 R",
    }
    for name, declared in lengths.items():
        objects = one_page(extra={6: b"99999999999999", 7: b"7 0 R"})
        objects[4] = stream(PAGE_CONTENT, length=declared)
        yield Case(f"lengths/{name}", raw_pdf(objects))
    objects = one_page()
    objects[4] = b"<< >>\nstream\n" + PAGE_CONTENT + b"\nendstream"
    yield Case("lengths/length-missing", raw_pdf(objects))
    objects = one_page()
    objects[4] = stream(PAGE_CONTENT)[:-10]
    yield Case("lengths/endstream-missing", raw_pdf(objects))
    yield Case(
        "lengths/trailer-size-huge",
        raw_pdf(one_page()).replace(b"/Size 6 ", b"/Size 999999999 ", 1),
    )
    good = raw_pdf(one_page())
    yield Case(
        "lengths/xref-count-huge",
        good.replace(b"xref\n0 6\n", b"xref\n0 999999999\n", 1),
    )
    yield Case("lengths/xref-offsets-huge", re.sub(rb"\d{10} 00000 n", b"9999999999 00000 n", good))
    objects = one_page()
    objects[2] = b"<< /Type /Pages /Kids [3 0 R] /Count 99999999999999999999 >>"
    yield Case("lengths/page-count-huge", raw_pdf(objects))
    objects = one_page()
    objects[4] = stream(
        zlib.compress(b"\x00" * 64),
        b"/Filter /FlateDecode /DecodeParms << /Predictor 15 /Columns 999999999 /Colors 4 >>",
    )
    yield Case("lengths/predictor-columns-huge", raw_pdf(objects))
    image = stream(
        zlib.compress(b"\xff" * 64),
        b"/Type /XObject /Subtype /Image /Width 100000 /Height 100000 /ColorSpace /DeviceRGB"
        b" /BitsPerComponent 8 /Filter /FlateDecode",
    )
    objects = one_page(extra={6: image})
    objects[3] = objects[3].replace(
        b"/Font << /F1 5 0 R >>", b"/Font << /F1 5 0 R >> /XObject << /Im 6 0 R >>"
    )
    yield Case("lengths/image-dimensions-huge", raw_pdf(objects))
    objects = one_page()
    objects[4] = stream(
        b"x" * 16,
        b"/Filter [/FlateDecode /ASCIIHexDecode /LZWDecode /RunLengthDecode /ASCII85Decode"
        b" /DCTDecode /JBIG2Decode /Crypt /NoSuchFilter]",
    )
    yield Case("lengths/filter-chain-junk", raw_pdf(objects))


def predicted_streams(streams: int = 4, decoded_mib: int = 60, columns: int = 64) -> bytes:
    """Pages whose content streams are PNG-predicted (filter Up): under a megabyte of file
    that pyhanko alone took over 10 s of CPU to undo, before the decode budget ran out."""
    row = b"\x02" + bytes(columns)
    payload = zlib.compress(row * (decoded_mib * 1024 * 1024 // columns), 9)
    kids = b" ".join(b"%d 0 R" % (10 + i) for i in range(streams))
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, streams),
    }
    for i in range(streams):
        objects[10 + i] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % (20 + i)
        )
        objects[20 + i] = stream(
            payload, b"/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns %d >>" % columns
        )
    return raw_pdf(objects)


def cpu_heavy() -> Iterator[Case]:
    yield Case("cpu/predicted-streams-4x60mib", predicted_streams())
    yield Case("cpu/predicted-stream-1x48mib", predicted_streams(1, 48))


def corpus(bases: Mapping[str, bytes], *, seed: int = 17) -> list[Case]:
    """Every case, in a stable order; ``bases`` are healthy documents to damage.

    Truncations and byte flips apply to every base; the structural kinds use small raw
    files, and xref loops and encryption dictionaries are also appended to the first base.
    """
    rng = random.Random(seed)
    cases: list[Case] = []
    first = next(iter(bases))
    for name, data in bases.items():
        cases.append(Case(f"{name}/healthy", data))
        cases.extend(truncations(name, data))
        cases.extend(byte_flips(name, data, rng))
        cases.extend(xref_loops(name, data))
    cases.extend(object_streams())
    cases.extend(forms_and_annotations())
    cases.extend(bad_encryption(first, bases[first]))
    cases.extend(deep_nesting())
    cases.extend(huge_lengths())
    cases.extend(cpu_heavy())
    names = [case.name for case in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"case names must be unique: {dupes}"
    return cases
