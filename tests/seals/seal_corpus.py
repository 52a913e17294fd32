"""Input PDFs made on the fly: different producers and structures, and damaged variants."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from seals.image import find_cjk_font

_FONT = "WQY"


def _register_font() -> None:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(_FONT, str(find_cjk_font()), subfontIndex=0))


def reportlab_pdf(pages: int = 1, title: str = "关于开展安全生产检查的通知") -> bytes:
    """A Chinese official document as reportlab writes it (embedded TTF subset)."""
    _register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(title)
    for page in range(pages):
        c.setFont(_FONT, 18)
        c.drawCentredString(A4[0] / 2, A4[1] - 100, title)
        c.setFont(_FONT, 12)
        for line in range(20):
            c.drawString(
                72,
                A4[1] - 150 - line * 20,
                f"第{page + 1}页 第{line + 1}行:各区县人民政府,市政府各部门。",
            )
        c.showPage()
    c.save()
    return buf.getvalue()


def scanned_pdf() -> bytes:
    """An image-only page, like a scanner produces."""
    img = Image.new("RGB", (850, 1100), "white")
    draw = ImageDraw.Draw(img)
    for y in range(100, 1000, 40):
        draw.line((80, y, 770, y), fill=(40, 40, 40), width=3)
    png = io.BytesIO()
    img.save(png, format="JPEG", quality=70)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.drawImage(ImageReader(io.BytesIO(png.getvalue())), 0, 0, width=A4[0], height=A4[1])
    c.showPage()
    c.save()
    return buf.getvalue()


def _qpdf(data: bytes, tmp: Path, *args: str) -> bytes:
    src = tmp / "qpdf-in.pdf"
    dst = tmp / "qpdf-out.pdf"
    src.write_bytes(data)
    proc = subprocess.run(["qpdf", *args, str(src), str(dst)], capture_output=True, check=False)
    if proc.returncode not in (0, 3):  # 3: warnings
        raise RuntimeError(proc.stderr.decode())
    return dst.read_bytes()


def linearized_pdf(tmp: Path) -> bytes:
    return _qpdf(reportlab_pdf(2), tmp, "--linearize")


def xref_stream_pdf(tmp: Path) -> bytes:
    return _qpdf(reportlab_pdf(1), tmp, "--object-streams=generate")


def encrypted_pdf(tmp: Path) -> bytes:
    return _qpdf(reportlab_pdf(1), tmp, "--encrypt", "", "owner-pw", "256", "--")


def incremental_pdf() -> bytes:
    """A document that already has one incremental update (new /Info, no signature)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    base = reportlab_pdf(1)
    writer = IncrementalPdfFileWriter(io.BytesIO(base))
    writer.set_info(None)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Rotate"] = page.get("/Rotate", 0)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


GONGWEN_PARAGRAPHS = (
    "各区县人民政府,市政府各部门:",
    "为切实做好安全生产工作,有效防范和遏制重特大事故发生,经市政府同意,"
    "决定在全市范围内开展安全生产大检查。现将有关事项通知如下。",
    "一、检查范围。全市各类生产经营单位,重点是危险化学品、建筑施工、道路交通等行业领域。",
    "二、工作要求。各单位要高度重视,落实主体责任,于本月底前将检查情况报送市应急管理局。",
)


def gongwen_fodt(title: str = "关于开展安全生产检查的通知") -> str:
    """A short 公文 as a flat ODF text document: centred title, body in WenQuanYi Zen Hei."""
    body = "\n".join(f"   <text:p>{escape(p)}</text:p>" for p in GONGWEN_PARAGRAPHS)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
 <office:font-face-decls>
  <style:font-face style:name="WenQuanYi Zen Hei" svg:font-family="'WenQuanYi Zen Hei'"/>
 </office:font-face-decls>
 <office:styles>
  <style:default-style style:family="paragraph">
   <style:paragraph-properties fo:line-height="150%"/>
   <style:text-properties style:font-name="WenQuanYi Zen Hei"
    style:font-name-asian="WenQuanYi Zen Hei" fo:font-size="14pt" style:font-size-asian="14pt"
    fo:language="zh" fo:country="CN" style:language-asian="zh" style:country-asian="CN"/>
  </style:default-style>
 </office:styles>
 <office:automatic-styles>
  <style:style style:name="Title" style:family="paragraph">
   <style:paragraph-properties fo:text-align="center" fo:margin-bottom="18pt"/>
   <style:text-properties fo:font-size="22pt" style:font-size-asian="22pt"/>
  </style:style>
 </office:automatic-styles>
 <office:body>
  <office:text>
   <text:p text:style-name="Title">{escape(title)}</text:p>
{body}
  </office:text>
 </office:body>
</office:document>
"""


SOFFICE_TIMEOUT = 180.0
PDF_A_2B_FILTER = 'pdf:writer_pdf_Export:{"SelectPdfVersion":{"type":"long","value":"2"}}'


def soffice_convert(source: Path, out_dir: Path, profile: Path, target: str = "pdf") -> bytes:
    """Convert ``source`` with headless LibreOffice and return the PDF.

    ``profile`` is a private user installation so concurrent runs do not meet each other's
    lock files. On timeout the whole process group goes (the ``soffice`` script starts
    ``oosplash`` which starts ``soffice.bin``; killing only the first would leave the rest).
    """
    soffice = shutil.which("soffice")
    if soffice is None:
        raise RuntimeError("soffice not found: ./dev.sh test installs libreoffice-writer-nogui")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        soffice,
        f"-env:UserInstallation={profile.resolve().as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        target,
        "--outdir",
        str(out_dir),
        str(source),
    ]
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=SOFFICE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"soffice took over {SOFFICE_TIMEOUT}s on {source.name}") from None
    pdf = out_dir / f"{source.stem}.pdf"
    if proc.returncode != 0 or not pdf.is_file():
        raise RuntimeError(f"soffice failed ({proc.returncode}): {output.decode(errors='replace')}")
    return pdf.read_bytes()


def libreoffice_pdf(tmp: Path, profile: Path) -> bytes:
    """The 公文 as LibreOffice Writer exports it (plain PDF 1.6, embedded TrueType subset)."""
    source = tmp / "gongwen.fodt"
    source.write_text(gongwen_fodt(), encoding="utf-8")
    return soffice_convert(source, tmp / "pdf", profile)


def pdfa_2b_pdf(tmp: Path, profile: Path) -> bytes:
    """The same 公文 exported as PDF/A-2b (XMP pdfaid, output intent)."""
    source = tmp / "gongwen-pdfa.fodt"
    source.write_text(gongwen_fodt("关于印发档案管理办法的通知"), encoding="utf-8")
    return soffice_convert(source, tmp / "pdfa", profile, PDF_A_2B_FILTER)


def pdfa_claim(data: bytes) -> tuple[str, str] | None:
    """(part, conformance) from the catalog's XMP metadata, or None if it claims no PDF/A."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    root = PdfFileReader(io.BytesIO(data), strict=False).root
    if "/Metadata" not in root:
        return None
    xmp = root["/Metadata"].data.decode("utf-8")
    found: dict[str, str] = {}
    for key in ("part", "conformance"):
        # Either an attribute (pdfaid:part="2") or an element (<pdfaid:part>2</pdfaid:part>).
        match = re.search(rf'pdfaid:{key}(?:="([^"]*)"|>([^<]*)<)', xmp)
        if match:
            found[key] = (match.group(1) or match.group(2) or "").strip()
    if "part" not in found:
        return None
    return found["part"], found.get("conformance", "")


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def wrong_xref(data: bytes) -> bytes:
    """Every xref offset shifted so no entry points at its object."""

    def shift(match: re.Match[bytes]) -> bytes:
        return b"%010d %s" % (int(match.group(1)) + 7, match.group(2))

    return re.sub(rb"(\d{10}) (\d{5} n)", shift, data)


def _raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A classic-xref PDF from raw object bodies, numbered from 1."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


def reference_loop_pdf() -> bytes:
    """The page tree's only kid is the tree itself."""
    return _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
        ]
    )


def _zeros_zlib(mib: int) -> bytes:
    """A valid zlib stream of ``mib`` MiB of zeros, built without compressing them all.

    After a full flush a deflate block does not depend on earlier data, so one compressed
    MiB can be repeated; the Adler-32 of n zero bytes is simply (n mod 65521) << 16 | 1.
    """
    chunk = b"\x00" * (1024 * 1024)
    comp = zlib.compressobj(9)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)[:-4]
    total = mib * len(chunk)
    adler = ((total % 65521) << 16) | 1
    return first + repeat * (mib - 1) + tail + adler.to_bytes(4, "big")


def decompression_bomb_pdf(decoded_mib: int = 4096) -> bytes:
    """A page whose content stream is a few MB of zlib that inflates to ``decoded_mib`` MiB."""
    payload = _zeros_zlib(decoded_mib)
    return _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(payload)
            + payload
            + b"\nendstream",
        ]
    )


NOT_A_PDF = b"PK\x03\x04 this is a zip file, not a PDF\n" * 10
