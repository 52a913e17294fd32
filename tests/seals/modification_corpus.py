"""Changes a seal keeper could append to a sealed PDF in an incremental update.

Each function takes sealed bytes and returns them plus one unsigned revision. None of these is
a further seal or validation data, so every one must make the document invalid: in
``seals.verify``, over ``POST /v1/verify``, and in pdfsig (whose only verdict on a later
revision is that the seal no longer covers the whole file). ``base_for`` names the document
each change needs (a form field to fill, an image to swap, a second page to drop).
"""

from __future__ import annotations

import io
from collections.abc import Callable

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from . import seal_corpus

Modification = Callable[[bytes], bytes]

_OVERPRINT = (
    b"q 1 1 1 rg 60 560 480 200 re f Q "
    b"BT /Helv 28 Tf 0 0 0 rg 72 700 Td (AMOUNT: 9,999,999 YUAN) Tj ET"
)


def form_pdf() -> bytes:
    """A one-page document with a filled-in text field (what 'form values' changes)."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.drawString(72, 760, "Budget approval")
    c.acroForm.textfield(name="amount", value="100", x=72, y=700, width=200, height=24)
    c.showPage()
    c.save()
    return buf.getvalue()


def _num(value: int | float) -> generic.PdfObject:
    if isinstance(value, int):
        return generic.NumberObject(value)  # type: ignore[no-untyped-call]
    return generic.FloatObject(value)  # type: ignore[no-untyped-call]


def _rect(*values: float) -> generic.ArrayObject:
    return generic.ArrayObject([_num(v) for v in values])


def _helvetica() -> generic.DictionaryObject:
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )


def _overprint_form(writer: IncrementalPdfFileWriter) -> generic.IndirectObject:
    """An appearance stream that whites out part of the body and writes new text."""
    stream = generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Form"),
            pdf_name("/BBox"): _rect(0, 0, 595, 842),
            pdf_name("/Resources"): generic.DictionaryObject(
                {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/Helv"): _helvetica()})}
            ),
        },
        stream_data=_OVERPRINT,
    )
    ref: generic.IndirectObject = writer.add_object(stream)
    return ref


def _writer(sealed: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(io.BytesIO(sealed))


def _out(writer: IncrementalPdfFileWriter) -> bytes:
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _first_page(
    writer: IncrementalPdfFileWriter,
) -> tuple[generic.IndirectObject, generic.DictionaryObject]:
    ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = ref.get_object()
    assert isinstance(page, generic.DictionaryObject)
    return ref, page


def _add_annotation(
    writer: IncrementalPdfFileWriter, page: generic.DictionaryObject, annot: generic.IndirectObject
) -> None:
    if "/Annots" in page:
        annots = page["/Annots"]
        annots.append(annot)
        writer.update_container(annots)
    else:
        page[pdf_name("/Annots")] = generic.ArrayObject([annot])
        writer.update_container(page)


def _add_field(
    writer: IncrementalPdfFileWriter,
    field_type: str,
    name: str,
    extra: dict[str, generic.PdfObject] | None = None,
) -> bytes:
    """A merged field/widget over the page body, its appearance painting over the text."""
    page_ref, page = _first_page(writer)
    widget = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/Widget"),
            pdf_name("/FT"): pdf_name(field_type),
            pdf_name("/T"): pdf_string(name),
            pdf_name("/F"): _num(4),
            pdf_name("/Rect"): _rect(0, 0, 595, 842),
            pdf_name("/P"): page_ref,
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): _overprint_form(writer)}),
            **(extra or {}),
        }
    )
    widget_ref = writer.add_object(widget)
    _add_annotation(writer, page, widget_ref)
    form = writer.root["/AcroForm"]
    form["/Fields"].append(widget_ref)
    writer.update_container(form["/Fields"])
    return _out(writer)


def unsigned_signature_widget(sealed: bytes) -> bytes:
    """The attack of issue 16: an empty signature field whose appearance paints new text."""
    return _add_field(_writer(sealed), "/Sig", "Overlay")


def text_widget_with_appearance(sealed: bytes) -> bytes:
    return _add_field(
        _writer(sealed), "/Tx", "note", {pdf_name("/V"): pdf_string("AMOUNT: 9,999,999 YUAN")}
    )


def seal_appearance_replaced(sealed: bytes) -> bytes:
    """The seal's own widget keeps its signature but gets an appearance that overprints."""
    writer = _writer(sealed)
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/FT") == "/Sig" and "/V" in field:
            field[pdf_name("/Rect")] = _rect(0, 0, 595, 842)
            field[pdf_name("/AP")] = generic.DictionaryObject(
                {pdf_name("/N"): _overprint_form(writer)}
            )
            writer.update_container(field)
            return _out(writer)
    raise AssertionError("the document carries no signed field")


def annotation(sealed: bytes) -> bytes:
    """A FreeText annotation over the body (visible in every viewer)."""
    writer = _writer(sealed)
    page_ref, page = _first_page(writer)
    annot = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/FreeText"),
            pdf_name("/Rect"): _rect(60, 560, 540, 760),
            pdf_name("/Contents"): pdf_string("AMOUNT: 9,999,999 YUAN"),
            pdf_name("/DA"): pdf_string("/Helv 28 Tf 0 g"),
            pdf_name("/P"): page_ref,
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): _overprint_form(writer)}),
        }
    )
    _add_annotation(writer, page, writer.add_object(annot))
    return _out(writer)


def form_value(sealed: bytes) -> bytes:
    """The sealed form's amount changed from 100 to 9999999 (value and appearance)."""
    writer = _writer(sealed)
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == "amount":
            field[pdf_name("/V")] = pdf_string("9999999")
            field[pdf_name("/AP")] = generic.DictionaryObject(
                {pdf_name("/N"): _overprint_form(writer)}
            )
            writer.update_container(field)
            return _out(writer)
    raise AssertionError("the base document has no 'amount' field")


def _page_stream(writer: IncrementalPdfFileWriter, data: bytes) -> generic.IndirectObject:
    ref: generic.IndirectObject = writer.add_object(generic.StreamObject(stream_data=data))
    return ref


def page_added(sealed: bytes) -> bytes:
    writer = _writer(sealed)
    pages = writer.root["/Pages"]
    page = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Page"),
            pdf_name("/Parent"): writer.root.raw_get("/Pages"),
            pdf_name("/MediaBox"): _rect(0, 0, 595, 842),
            pdf_name("/Resources"): generic.DictionaryObject(
                {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/Helv"): _helvetica()})}
            ),
            pdf_name("/Contents"): _page_stream(
                writer, b"BT /Helv 28 Tf 72 700 Td (ANNEX: ALL FEES WAIVED) Tj ET"
            ),
        }
    )
    pages["/Kids"].append(writer.add_object(page))
    pages[pdf_name("/Count")] = _num(int(pages["/Count"]) + 1)
    writer.update_container(pages["/Kids"])
    writer.update_container(pages)
    return _out(writer)


def page_removed(sealed: bytes) -> bytes:
    writer = _writer(sealed)
    pages = writer.root["/Pages"]
    kids = pages["/Kids"]
    assert len(kids) >= 2, "page_removed needs a document with two pages"
    del kids[0]
    pages[pdf_name("/Count")] = _num(int(pages["/Count"]) - 1)
    writer.update_container(kids)
    writer.update_container(pages)
    return _out(writer)


def contents_replaced(sealed: bytes) -> bytes:
    """The shadow attack: the page's /Contents points at a new stream (its own font /F1)."""
    writer = _writer(sealed)
    _, page = _first_page(writer)
    page[pdf_name("/Contents")] = _page_stream(
        writer, b"BT /F1 28 Tf 72 700 Td (AMOUNT: 9,999,999 YUAN) Tj ET"
    )
    writer.update_container(page)
    return _out(writer)


def font_replaced(sealed: bytes) -> bytes:
    """A page font's dictionary rewritten: the same codes now draw other glyphs."""
    writer = _writer(sealed)
    _, page = _first_page(writer)
    fonts = page["/Resources"]["/Font"]
    name = sorted(fonts.keys())[0]
    font = fonts[name]
    font[pdf_name("/BaseFont")] = pdf_name("/Courier")
    font[pdf_name("/Subtype")] = pdf_name("/Type1")
    for key in ("/FontDescriptor", "/Widths", "/FirstChar", "/LastChar", "/ToUnicode"):
        if key in font:
            del font[key]
    writer.update_container(font)
    return _out(writer)


def xobject_replaced(sealed: bytes) -> bytes:
    """The page image (a scanned page) swapped for another picture."""
    writer = _writer(sealed)
    _, page = _first_page(writer)
    xobjects = page["/Resources"]["/XObject"]
    name = sorted(xobjects.keys())[0]
    replacement = generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Image"),
            pdf_name("/Width"): _num(1),
            pdf_name("/Height"): _num(1),
            pdf_name("/ColorSpace"): pdf_name("/DeviceGray"),
            pdf_name("/BitsPerComponent"): _num(8),
        },
        stream_data=b"\xff",
    )
    xobjects[name] = writer.add_object(replacement)
    writer.update_container(xobjects)
    return _out(writer)


def info_metadata(sealed: bytes) -> bytes:
    """The document information dictionary's title changed (nothing else)."""
    writer = _writer(sealed)
    info = writer.trailer["/Info"]
    info[pdf_name("/Title")] = pdf_string("关于免除全部费用的通知")
    writer.update_container(info)
    return _out(writer)


def xmp_metadata(sealed: bytes) -> bytes:
    """A new XMP packet in the catalog, claiming another title."""
    writer = _writer(sealed)
    # pyhanko would replace the packet with its own on writing; an attacker's tool would not.
    writer._update_meta = lambda: None  # type: ignore[method-assign]
    xmp = (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">关于免除全部费用的通知</rdf:li>'
        "</rdf:Alt></dc:title></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()
    stream = generic.StreamObject(
        {pdf_name("/Type"): pdf_name("/Metadata"), pdf_name("/Subtype"): pdf_name("/XML")},
        stream_data=xmp,
    )
    writer.root[pdf_name("/Metadata")] = writer.add_object(stream)
    writer.update_root()
    return _out(writer)


MODIFICATIONS: dict[str, Modification] = {
    "unsigned_signature_widget": unsigned_signature_widget,
    "text_widget_with_appearance": text_widget_with_appearance,
    "seal_appearance_replaced": seal_appearance_replaced,
    "annotation": annotation,
    "form_value": form_value,
    "page_added": page_added,
    "page_removed": page_removed,
    "contents_replaced": contents_replaced,
    "font_replaced": font_replaced,
    "xobject_replaced": xobject_replaced,
    "info_metadata": info_metadata,
    "xmp_metadata": xmp_metadata,
}


def base_for(kind: str) -> bytes:
    """The unsealed document a modification applies to."""
    if kind == "form_value":
        return form_pdf()
    if kind == "xobject_replaced":
        return seal_corpus.scanned_pdf()
    return seal_corpus.reportlab_pdf(pages=2)
