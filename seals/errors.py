"""Domain errors of the sealing core; the gateway maps each ``code`` to an HTTP status."""

from __future__ import annotations


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
