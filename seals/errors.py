"""Domain errors of the sealing core; the gateway maps each ``code`` to an HTTP status."""

from __future__ import annotations

import traceback

from keys.codes import Code, CodedError


class SealError(CodedError):
    """Base of every error the sealing core raises on purpose."""

    code: str = Code.SEAL_ERROR


class PdfInputError(SealError):
    """Uploaded bytes refused before any key is touched."""

    code: str = Code.PDF_INVALID


class PayloadTooLarge(PdfInputError):
    code = Code.PAYLOAD_TOO_LARGE


class NotAPdf(PdfInputError):
    code = Code.NOT_A_PDF


class PdfEncrypted(PdfInputError):
    code = Code.PDF_ENCRYPTED


class PdfMalformed(PdfInputError):
    code: str = Code.PDF_MALFORMED


class UnreadablePdf(PdfMalformed):
    """A parser failed on the document in a way it does not report as damage (an assertion,
    a lookup, a decoder error); ``origin`` says where, for the log."""

    def __init__(self, message: str, origin: str = "") -> None:
        super().__init__(message)
        self.origin = origin

    def __reduce__(self) -> tuple[type[UnreadablePdf], tuple[str, str]]:
        return (type(self), (self.detail, self.origin))

    @classmethod
    def wrapping(cls, exc: BaseException) -> UnreadablePdf:
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if frames:
            where = "/".join(frames[-1].filename.rsplit("/", 2)[-2:]) + f":{frames[-1].lineno}"
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        text = str(exc)[:200]
        return cls(
            f"the PDF structure is damaged ({type(exc).__name__}{': ' + text if text else ''})",
            f"{kind} at {where}",
        )


class PdfTooComplex(PdfMalformed):
    """Parsing needs more memory or CPU time than a worker may use (bombs, loops)."""

    code = Code.PDF_TOO_COMPLEX


class SealingError(SealError):
    """The document was acceptable but the seal could not be applied."""

    code: str = Code.SEALING_FAILED


class CertificationForbids(SealingError):
    """The certifying seal of the document forbids adding another signature."""

    code = Code.CERTIFICATION_FORBIDS_SEAL


class FontNotFound(SealError):
    """No CJK font is installed, so the seal image cannot be drawn."""

    code = Code.SEAL_FONT_MISSING
