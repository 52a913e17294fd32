"""Classify uploaded bytes before any key is used: too large, not a PDF, encrypted, malformed.

The checks parse with pyhanko (the parser the sealing and verification use afterwards) under
tight decode limits, walk the page tree with loop detection and decode every page's content
so a broken or hostile file is refused here rather than half-way through sealing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from seals import _speedups
from seals.errors import NotAPdf, PayloadTooLarge, PdfEncrypted, PdfMalformed, PdfTooComplex

_speedups.install()

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# The PDF spec lets the header start anywhere in the first 1024 bytes.
_HEADER_WINDOW = 1024
_MAX_PAGES = 10_000
_MAX_TREE_DEPTH = 64
_MiB = 1024 * 1024

UNTRUSTED_LIMITS = DecodeLimits(
    per_stream=StreamDecodeLimits(max_ratio=1100, ratio_floor=_MiB, max_output_size=64 * _MiB),
    document_budget=DocumentDecodeBudget(base_allowance=128 * _MiB, max_ratio=50),
)


@dataclass(frozen=True)
class PdfInfo:
    """What the checks learnt; the reader is reused by the caller to avoid parsing twice."""

    reader: PdfFileReader
    size: int
    page_refs: tuple[generic.Reference, ...]
    signature_count: int


def check_size(data: bytes | int, max_bytes: int | None = DEFAULT_MAX_BYTES) -> None:
    size = data if isinstance(data, int) else len(data)
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLarge(f"the document is {size} bytes, the limit is {max_bytes}")


def check_header(data: bytes) -> None:
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise NotAPdf("the upload does not start with a %PDF- header")


def open_pdf(data: bytes | BinaryIO, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> PdfInfo:
    """Parse and structurally check a document, raising only PdfInputError subclasses.

    *data* may be an open seekable file: pyhanko then reads objects from it on demand, so
    a large document never has to be in memory (the caller keeps the file open)."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    size = stream.seek(0, io.SEEK_END)
    check_size(size, max_bytes)
    stream.seek(0)
    check_header(stream.read(_HEADER_WINDOW))
    stream.seek(0)
    try:
        reader = PdfFileReader(stream, strict=True, decode_limits=UNTRUSTED_LIMITS)
        if reader.encrypted:
            raise PdfEncrypted("encrypted PDF documents cannot be sealed or verified")
        pages = _walk_pages(reader)
        for page in pages:
            _decode_contents(reader, _resolve(reader, page))
        sig_count = len(reader.embedded_signatures)
    except (PdfEncrypted, PdfMalformed):
        raise
    except PdfDecodeLimitError as exc:
        raise PdfTooComplex(f"a stream decodes to too much data: {exc}") from None
    except RecursionError:
        raise PdfTooComplex("the object graph nests too deeply") from None
    except MemoryError:
        raise PdfTooComplex("parsing needs too much memory") from None
    except (PdfError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        # pyhanko reports structural damage through a mix of its own and builtin errors.
        raise PdfMalformed(f"the PDF structure is damaged: {type(exc).__name__}: {exc}") from None
    except NotImplementedError as exc:
        raise PdfMalformed(f"unsupported PDF feature: {exc}") from None
    return PdfInfo(reader, size, tuple(pages), sig_count)


def _walk_pages(reader: PdfFileReader) -> list[generic.Reference]:
    """Collect page references depth-first, refusing loops instead of recursing forever."""
    root = reader.root
    pages_ref = root.raw_get("/Pages")
    if not isinstance(pages_ref, generic.IndirectObject):
        raise PdfMalformed("the catalog's /Pages is not an indirect reference")
    found: list[generic.Reference] = []
    seen: set[generic.Reference] = set()
    stack: list[tuple[generic.Reference, int]] = [(pages_ref.reference, 0)]
    while stack:
        ref, depth = stack.pop()
        if ref in seen:
            raise PdfMalformed("the page tree contains a reference loop")
        if depth > _MAX_TREE_DEPTH:
            raise PdfMalformed("the page tree is nested too deeply")
        seen.add(ref)
        node = _resolve(reader, ref)
        if not isinstance(node, generic.DictionaryObject):
            raise PdfMalformed(f"page tree node {ref.idnum} is not a dictionary")
        node_type = node.get("/Type")
        kids = node.raw_get("/Kids") if "/Kids" in node else None
        if node_type == "/Page" or (kids is None and "/Contents" in node):
            found.append(ref)
            if len(found) > _MAX_PAGES:
                raise PdfTooComplex("the document has too many pages")
            continue
        kids_obj = _resolve(reader, kids) if kids is not None else None
        if not isinstance(kids_obj, generic.ArrayObject):
            raise PdfMalformed(f"page tree node {ref.idnum} has no /Kids array")
        for kid in reversed(kids_obj):
            if not isinstance(kid, generic.IndirectObject):
                raise PdfMalformed("page tree /Kids entries must be references")
            stack.append((kid.reference, depth + 1))
    if not found:
        raise PdfMalformed("the document has no pages")
    return found


def _resolve(
    reader: PdfFileReader, obj: generic.PdfObject | generic.Reference
) -> generic.PdfObject:
    """Follow references one hop at a time so a chain that loops is an error, not a hang."""
    seen: set[generic.Reference] = set()
    while isinstance(obj, generic.IndirectObject | generic.Reference):
        ref = obj.reference if isinstance(obj, generic.IndirectObject) else obj
        if ref in seen or len(seen) > _MAX_TREE_DEPTH:
            raise PdfMalformed(f"object {ref.idnum} is part of a reference loop")
        seen.add(ref)
        obj = get_object(reader, ref)
    return obj


def get_object(reader: PdfFileReader, ref: generic.Reference) -> generic.PdfObject:
    """Typed wrapper: pyhanko's get_object carries no annotations."""
    obj: generic.PdfObject = reader.get_object(ref)  # type: ignore[no-untyped-call]
    return obj


def _decode_contents(reader: PdfFileReader, page: generic.PdfObject) -> None:
    if not isinstance(page, generic.DictionaryObject):
        raise PdfMalformed("a page is not a dictionary")
    contents = page.raw_get("/Contents") if "/Contents" in page else None
    contents = _resolve(reader, contents) if contents is not None else None
    streams = contents if isinstance(contents, generic.ArrayObject) else [contents]
    for item in streams:
        stream = _resolve(reader, item) if item is not None else None
        if stream is None or isinstance(stream, generic.NullObject):
            continue
        if not isinstance(stream, generic.StreamObject):
            raise PdfMalformed("page content is not a stream")
        _ = stream.data


@dataclass(frozen=True)
class PdfSummary:
    """What a worker process reports back about an upload (the reader stays behind)."""

    size: int
    pages: int
    signatures: int


def check_pdf(data: bytes | BinaryIO, max_bytes: int | None = DEFAULT_MAX_BYTES) -> PdfSummary:
    info = open_pdf(data, max_bytes=max_bytes)
    return PdfSummary(info.size, len(info.page_refs), info.signature_count)
