"""Domain errors of the sealing core; the gateway maps each ``code`` to an HTTP status."""

from __future__ import annotations

import traceback


class SealError(Exception):
    """Base of every error the sealing core raises on purpose."""

    code = "seal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PdfInputError(SealError):
    """Uploaded bytes refused before any key is touched."""

    code = "pdf_invalid"


class PayloadTooLarge(PdfInputError):
    code = "payload_too_large"


class NotAPdf(PdfInputError):
    code = "not_a_pdf"


class PdfEncrypted(PdfInputError):
    code = "pdf_encrypted"


class PdfMalformed(PdfInputError):
    code = "pdf_malformed"


class UnreadablePdf(PdfMalformed):
    """A parser failed on the document in a way it does not report as damage (an assertion,
    a lookup, a decoder error); ``origin`` says where, for the log."""

    def __init__(self, message: str, origin: str = "") -> None:
        super().__init__(message)
        self.origin = origin

    def __reduce__(self) -> tuple[type[UnreadablePdf], tuple[str, str]]:
        return (type(self), (self.message, self.origin))

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

    code = "pdf_too_complex"


class SealingError(SealError):
    """The document was acceptable but the seal could not be applied."""

    code = "sealing_failed"


class CertificationForbids(SealingError):
    """The certifying seal of the document forbids adding another signature."""

    code = "certification_forbids_seal"


class FontNotFound(SealError):
    """No CJK font is installed, so the seal image cannot be drawn."""

    code = "seal_font_missing"
