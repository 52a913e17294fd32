"""PAdES sealing: the first seal certifies the document, later seals are approval signatures.

Each seal is one incremental update with a visible field showing the red seal image. For
B-LT the revocation data goes into the DSS of the same revision as the signature, so the
last seal still covers the whole file as pdfsig and Acrobat report it.

Speed: the CMS container size is fixed from the certificates instead of pyhanko's dry-run
estimate, and the seal image is compressed once per seal and copied into each document.
"""

from __future__ import annotations

import enum
import functools
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from PIL import Image, ImageStat
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import PdfContent, ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext

from seals._aio import run_sync
from seals.errors import CertificationForbids, PdfMalformed, SealingError
from seals.pdfcheck import (
    DEFAULT_MAX_BYTES,
    PdfInfo,
    get_object,
    open_pdf,
)
from seals.signer import SealSigner

# A real seal is 42 mm across, 119 pt.
DEFAULT_SEAL_SIZE = 119.0
DEFAULT_MARGIN = 56.0
_GAP = 12.0
_CMS_OVERHEAD = 1024
_TST_ALLOWANCE = 4096


class Level(enum.StrEnum):
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"


@dataclass(frozen=True)
class FieldPlacement:
    """Where the seal goes: a page index (negative counts from the end) and an optional box.

    Without a box the seal sits in the lower right corner, moved left for each seal already
    on the document so joint documents show the departments side by side.
    """

    page: int = -1
    box: tuple[float, float, float, float] | None = None
    size: float = DEFAULT_SEAL_SIZE
    margin: float = DEFAULT_MARGIN


class SealAppearance:
    """The seal image compressed once; every document gets a copy of the ready streams."""

    def __init__(self, png: bytes) -> None:
        with Image.open(io.BytesIO(png)) as img:
            rgba = img.convert("RGBA")
        self.width, self.height = rgba.size
        rgb = rgba.convert("RGB")
        opaque = rgba.getchannel("A").point(lambda a: 255 if a > 128 else 0)
        stat = ImageStat.Stat(rgb, mask=opaque)
        if stat.count[0] and max(stat.stddev) < 40:
            # A one-colour seal: the alpha channel carries the shape, so a flat colour
            # plane (a few hundred bytes compressed) replaces the full RGB image.
            colour = tuple(round(c) for c in stat.mean)
            rgb = Image.new("RGB", rgba.size, colour)
        self._rgb = zlib.compress(rgb.tobytes(), 6)
        self._alpha = zlib.compress(rgba.getchannel("A").tobytes(), 6)

    def _image_stream(self, data: bytes, colour_space: str) -> generic.StreamObject:
        stream = generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Image"),
                pdf_name("/Width"): _number(self.width),
                pdf_name("/Height"): _number(self.height),
                pdf_name("/ColorSpace"): pdf_name(colour_space),
                pdf_name("/BitsPerComponent"): _number(8),
                pdf_name("/Filter"): pdf_name("/FlateDecode"),
            },
            encoded_data=data,
        )
        return stream

    def add_to(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        smask = writer.add_object(self._image_stream(self._alpha, "/DeviceGray"))
        image = self._image_stream(self._rgb, "/DeviceRGB")
        image[pdf_name("/SMask")] = smask
        ref: generic.IndirectObject = writer.add_object(image)
        return ref

    def stamp_style(self) -> StaticStampStyle:
        return StaticStampStyle(
            border_width=0,
            background=_SealContent(self),
            background_opacity=1.0,
            background_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MID,
                y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins(0, 0, 0, 0),
            ),
        )


class _SealContent(PdfContent):
    def __init__(self, appearance: SealAppearance) -> None:
        super().__init__(
            box=layout.BoxConstraints(width=appearance.width, height=appearance.height)
        )
        self._appearance = appearance

    def render(self) -> bytes:
        ref = self._appearance.add_to(self._ensure_writer)
        self.set_resource(ResourceType.XOBJECT, pdf_name("/Seal"), ref)
        return b"q %d 0 0 %d 0 0 cm /Seal Do Q" % (self._appearance.width, self._appearance.height)


def _number(value: int) -> generic.NumberObject:
    number: generic.NumberObject = generic.NumberObject(value)  # type: ignore[no-untyped-call]
    return number


def _reserve(signer: SealSigner, timestamped: bool) -> int:
    """Bytes for the CMS container: the certificates, the issuer name twice (sid and
    signing-certificate-v2), fixed attributes, and room for a timestamp token."""
    issuer = len(signer.issuer_der)
    size = (
        _CMS_OVERHEAD
        + 2 * issuer
        + len(signer.certificate_der)
        + sum(len(c) for c in signer.chain_der)
    )
    if timestamped:
        size += _TST_ALLOWANCE
    # pyhanko counts the hex digits of /Contents, two per byte.
    return 2 * size


def _field_box(
    info: PdfInfo, page_index: int, placement: FieldPlacement
) -> tuple[float, float, float, float]:
    if placement.box is not None:
        return placement.box
    page = get_object(info.reader, info.page_refs[page_index])
    assert isinstance(page, generic.DictionaryObject)
    media = page.get("/MediaBox") or [0, 0, 595, 842]
    x0, y0, x1, _ = (float(v) for v in media)
    size, margin = placement.size, placement.margin
    slot = info.signature_count
    per_row = max(1, int((x1 - x0 - 2 * margin + _GAP) // (size + _GAP)))
    row, col = divmod(slot, per_row)
    right = x1 - margin - col * (size + _GAP)
    bottom = y0 + margin + row * (size + _GAP)
    return (right - size, bottom, right, bottom + size)


def _placed(info: PdfInfo, placement: FieldPlacement) -> tuple[int, tuple[int, int, int, int]]:
    """The page (0-based) and the field box, in the page's user space, where the next seal
    goes: what sealing uses and what :func:`seal_position` reports."""
    page_index = placement.page % len(info.page_refs)
    box = _field_box(info, page_index, placement)
    return page_index, (round(box[0]), round(box[1]), round(box[2]), round(box[3]))


def _media_box(info: PdfInfo, page_index: int) -> tuple[float, float, float, float]:
    """The page's MediaBox as a viewer sees it (inherited from its page tree if need be)."""
    node: Any = get_object(info.reader, info.page_refs[page_index])
    for _ in range(64):  # a page tree deeper than this is not one a viewer draws
        if not isinstance(node, generic.DictionaryObject):
            break
        if "/MediaBox" in node:
            media = node["/MediaBox"]
            if isinstance(media, generic.ArrayObject) and len(media) == 4:
                x0, y0, x1, y1 = (float(value) for value in media)
                return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
            break
        try:
            node = node["/Parent"]  # indexing resolves references (dict.get would not)
        except KeyError:
            break
    return 0.0, 0.0, 595.0, 842.0


@dataclass(frozen=True)
class SealPosition:
    """Where the next seal of a document goes: its page (0-based), the box relative to the
    page's lower left corner in points, and the page's size in points."""

    page: int
    box: tuple[float, float, float, float]
    page_size: tuple[float, float]


def seal_position(
    pdf: bytes | BinaryIO | PdfInfo,
    placement: FieldPlacement | None = None,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> SealPosition:
    """Where :func:`prepare_seal` would put the seal on *pdf* (parses it: run in a worker)."""
    info = pdf if isinstance(pdf, PdfInfo) else open_pdf(pdf, max_bytes=max_bytes)
    page_index, box = _placed(info, placement or FieldPlacement())
    x0, y0, x1, y1 = _media_box(info, page_index)
    return SealPosition(
        page=page_index,
        box=(box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0),
        page_size=(x1 - x0, y1 - y0),
    )


def _field_name(info: PdfInfo) -> str:
    taken = {name for name, _, _ in fields.enumerate_sig_fields(info.reader)}
    n = info.signature_count + 1
    while f"Seal{n}" in taken:
        n += 1
    return f"Seal{n}"


def validation_context(
    trust_roots: Sequence[bytes], crls: Sequence[bytes], other_certs: Sequence[bytes] = ()
) -> ValidationContext:
    """A context that never fetches: only the given roots, certificates and CRLs count."""
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(r) for r in trust_roots],
        other_certs=[asn1_x509.Certificate.load(c) for c in other_certs],
        crls=[asn1_crl.CertificateList.load(c) for c in crls],
        allow_fetching=False,
        revocation_mode="require",
    )


@dataclass(frozen=True)
class SealOptions:
    """How a document is sealed, the same for every way of sealing one (in this process, in
    a worker, from file to file). Pure values: it crosses to the worker as it is.

    The time-stamper is not one of them: it talks to a TSA, so it stays with the caller
    and is passed beside the options.
    """

    level: Level = Level.B_B
    trust_roots: tuple[bytes, ...] = field(default=(), repr=False)
    crls: tuple[bytes, ...] = field(default=(), repr=False)
    placement: FieldPlacement = field(default_factory=FieldPlacement)
    field_name: str | None = None
    reason: str | None = None
    max_bytes: int | None = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        # Accept "B-LT" and lists from callers; keep the value hashable and picklable.
        object.__setattr__(self, "level", Level(self.level))
        object.__setattr__(self, "trust_roots", tuple(self.trust_roots))
        object.__setattr__(self, "crls", tuple(self.crls))

    def check(self, timestamper: TimeStamper | None) -> TimeStamper | None:
        """The time-stamper this level uses (none for B-B); refuses B-T/B-LT without one."""
        if self.level is Level.B_B:
            return None
        if timestamper is None:
            raise SealingError(f"level {self.level} needs a timestamper")
        return timestamper


DEFAULT_OPTIONS = SealOptions()


@dataclass(frozen=True)
class SealJob:
    """Everything the document side of sealing needs, without the key (crosses processes)."""

    certificate_der: bytes = field(repr=False)
    chain_der: tuple[bytes, ...] = field(repr=False)
    appearance: SealAppearance = field(repr=False)
    options: SealOptions = field(default_factory=SealOptions)
    bytes_reserved: int | None = None

    @classmethod
    def for_signer(
        cls, signer: SealSigner, appearance: SealAppearance, options: SealOptions
    ) -> SealJob:
        return cls(signer.certificate_der, tuple(signer.chain_der), appearance, options)

    def with_room(self, needed: int) -> SealJob:
        """The same job with the container room a too-small first attempt asked for."""
        return replace(self, bytes_reserved=needed + 8192)


@dataclass(frozen=True)
class PreparedSeal:
    """The sealed document minus its CMS: the digest to sign and where the CMS goes.

    ``document`` is empty when the revision was written to an output file instead."""

    document: bytes = field(repr=False)
    document_digest: bytes
    reserved_start: int
    reserved_end: int


class _CertificateOnlySigner(SealSigner):
    """Gives pyhanko the certificates while the document is prepared; it cannot sign."""

    def __init__(self, certificate_der: bytes, chain_der: Sequence[bytes]) -> None:
        super().__init__(_NoKey(), certificate_der, chain_der)


@functools.lru_cache(maxsize=64)
def _certificate_only_signer(
    certificate_der: bytes, chain_der: tuple[bytes, ...]
) -> _CertificateOnlySigner:
    return _CertificateOnlySigner(certificate_der, chain_der)


class _NoKey:
    def sign_sha256_digest(self, digest: bytes) -> bytes:
        raise SealingError("the document side of sealing never holds a key")


def prepare_seal(
    pdf: bytes | BinaryIO | PdfInfo, job: SealJob, output: BinaryIO | None = None
) -> PreparedSeal:
    """Parse, check and lay out the sealed revision; runs where hostile input may run.

    With *output* (a file opened ``w+b``) the revision is written there, not returned."""
    return run_sync(_prepare(pdf, job, output))


async def _prepare(
    pdf: bytes | BinaryIO | PdfInfo, job: SealJob, output: BinaryIO | None = None
) -> PreparedSeal:
    options = job.options
    info = pdf if isinstance(pdf, PdfInfo) else open_pdf(pdf, max_bytes=options.max_bytes)
    level = options.level
    if level is Level.B_LT and not options.trust_roots:
        raise SealingError("level B-LT needs the trust roots to collect validation data")
    page_index, box = _placed(info, options.placement)
    name = options.field_name or _field_name(info)
    certify = info.signature_count == 0
    signer = _certificate_only_signer(job.certificate_der, tuple(job.chain_der))
    lt: dict[str, Any] = {}
    if level is Level.B_LT:
        lt = {
            "embed_validation_info": True,
            "use_pades_lta": False,
            "validation_context": validation_context(
                options.trust_roots, options.crls, job.chain_der
            ),
            "dss_settings": DSSContentSettings(
                placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE,
                include_vri=False,
            ),
        }
    meta = signers.PdfSignatureMetadata(
        field_name=name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=certify,
        # PDF has no DocMDP level "further signatures only": P=2 (fill in forms and sign) is
        # the strictest one that still lets other departments seal, so seals.verify enforces
        # the rest (only signature fields created and signed in one revision, and DSS).
        docmdp_permissions=fields.MDPPerm.FILL_FORMS,
        reason=options.reason,
        **lt,
    )
    field_spec = fields.SigFieldSpec(sig_field_name=name, on_page=page_index, box=box)
    pdf_signer = signers.PdfSigner(
        meta,
        signer,
        stamp_style=job.appearance.stamp_style(),
        new_field_spec=field_spec,
    )
    reserved = job.bytes_reserved or _reserve(signer, level is not Level.B_B)
    writer = IncrementalPdfFileWriter.from_reader(info.reader)
    try:
        session = pdf_signer.init_signing_session(writer)
        validation_info = await session.perform_presign_validation(writer)
        tbs = session.prepare_tbs_document(validation_info, bytes_reserved=reserved)
        buffer = io.BytesIO() if output is None else None
        digest, _ = tbs.digest_tbs_document(output=output if buffer is None else buffer)
    except SigningError as exc:
        text = str(exc).lower()
        # pyhanko words it "Author signature forbids all changes" (DocMDP P=1) or names
        # the certification, the permissions or a field lock.
        if any(word in text for word in ("certif", "permission", "locked", "forbid")):
            raise CertificationForbids(str(exc)) from None
        raise SealingError(str(exc)) from None
    except PdfError as exc:
        raise PdfMalformed(f"the document cannot be extended: {exc}") from None
    return PreparedSeal(
        document=buffer.getvalue() if buffer is not None else b"",
        document_digest=digest.document_digest,
        reserved_start=digest.reserved_region_start,
        reserved_end=digest.reserved_region_end,
    )


class ReservedSpaceTooSmall(SealingError):
    def __init__(self, needed: int) -> None:
        super().__init__(f"the signature container needs {needed} hex digits")
        self.needed = needed


async def async_finish_seal(
    prepared: PreparedSeal, signer: SealSigner, timestamper: TimeStamper | None = None
) -> bytes:
    """Sign the prepared digest and splice the CMS in; no PDF parsing happens here."""
    out = io.BytesIO(prepared.document)
    await async_finish_seal_into(prepared, signer, out, timestamper)
    return out.getvalue()


async def async_finish_seal_into(
    prepared: PreparedSeal,
    signer: SealSigner,
    output: BinaryIO,
    timestamper: TimeStamper | None = None,
) -> None:
    """Sign and write the CMS at the reserved /Contents offset of *output* (seek + write),
    so a sealed document on disk is finished without reading it."""
    container = await signer.async_sign(
        prepared.document_digest, "sha256", use_pades=True, timestamper=timestamper
    )
    der = container.dump()
    room = prepared.reserved_end - prepared.reserved_start - 2
    if 2 * len(der) > room:
        raise ReservedSpaceTooSmall(2 * len(der))
    PreparedByteRangeDigest(
        prepared.document_digest, prepared.reserved_start, prepared.reserved_end
    ).fill_with_cms(output, der)


def finish_seal(
    prepared: PreparedSeal, signer: SealSigner, timestamper: TimeStamper | None = None
) -> bytes:
    return run_sync(async_finish_seal(prepared, signer, timestamper))


def seal_pdf(
    pdf: bytes | PdfInfo,
    signer: SealSigner,
    appearance: SealAppearance,
    options: SealOptions = DEFAULT_OPTIONS,
    *,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """Seal a document in this process: the input plus one incremental update."""
    ts = options.check(timestamper)
    job = SealJob.for_signer(signer, appearance, options)
    # A retry must parse afresh: the first attempt changed the reader's cached objects.
    data = pdf.reader.stream.getvalue() if isinstance(pdf, PdfInfo) else pdf
    first = prepare_seal(pdf, job)
    try:
        return finish_seal(first, signer, ts)
    except ReservedSpaceTooSmall as exc:
        return finish_seal(prepare_seal(data, job.with_room(exc.needed)), signer, ts)
