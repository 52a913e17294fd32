"""The exchange's refusals, each with a stable problem code (statuses: gateway/http/errors.py)."""

from __future__ import annotations

import uuid


class ExchangeError(Exception):
    code = "invalid_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ResendRequiresApproval(ExchangeError):
    code = "resend_requires_approval"


class InvalidMeta(ExchangeError):
    code = "invalid_request"


class ClassifiedNotAllowed(ExchangeError):
    code = "classified_not_allowed"


class SealRequiresApproval(ExchangeError):
    code = "seal_requires_approval"


class DraftingNotAllowed(ExchangeError):
    code = "forbidden"


class DocumentLocked(ExchangeError):
    """Signed off (or sealed): the draft and its approvals can no longer change."""

    code = "document_locked"


class WrongDocumentState(ExchangeError):
    code = "conflict"


class SealRevokedMeanwhile(ExchangeError):
    """The seal was revoked (on any gateway process) while this document was being sealed."""

    code = "seal_revoked"

    def __init__(self, seal_id: uuid.UUID) -> None:
        super().__init__("the seal was revoked while the document was being sealed; not sent")
        self.seal_id = seal_id
