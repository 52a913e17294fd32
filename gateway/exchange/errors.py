"""The exchange's refusals, each with a stable problem code (statuses: keys/codes.py)."""

from __future__ import annotations

import uuid

from keys.codes import Code, CodedError


class ExchangeError(CodedError):
    code: str = Code.INVALID_REQUEST


class ResendRequiresApproval(ExchangeError):
    code = Code.RESEND_REQUIRES_APPROVAL


class InvalidMeta(ExchangeError):
    code = Code.INVALID_REQUEST


class ClassifiedNotAllowed(ExchangeError):
    code = Code.CLASSIFIED_NOT_ALLOWED


class SealRequiresApproval(ExchangeError):
    code = Code.SEAL_REQUIRES_APPROVAL


class DraftingNotAllowed(ExchangeError):
    code = Code.FORBIDDEN


class DocumentLocked(ExchangeError):
    """Signed off (or sealed): the draft and its approvals can no longer change."""

    code = Code.DOCUMENT_LOCKED


class WrongDocumentState(ExchangeError):
    code = Code.CONFLICT


class SealRevokedMeanwhile(ExchangeError):
    """The seal was revoked (on any gateway process) while this document was being sealed."""

    code = Code.SEAL_REVOKED

    def __init__(self, seal_id: uuid.UUID) -> None:
        super().__init__("the seal was revoked while the document was being sealed; not sent")
        self.seal_id = seal_id


class InvalidRequest(ExchangeError):
    code = Code.INVALID_REQUEST


class NotFound(ExchangeError):
    """Nothing to give: no receipt yet, or a document not sealed yet."""

    code = Code.NOT_FOUND
    default_detail = "no such resource"


class Hidden(NotFound):
    """Not the caller's to see (another department's, or no such id at all). The handlers
    answer it as the 404 that hides whether the resource exists, counted as
    ``access.denied`` with *reason* and *details* (gateway.identity.auth.hidden)."""

    def __init__(self, reason: str, **details: str) -> None:
        super().__init__()
        self.reason = reason
        self.details = details


class RoleMissing(ExchangeError):
    """The caller is in the right department but lacks every role the act needs (an audited
    403, like a route's ``roles`` in the auth middleware)."""

    code = Code.FORBIDDEN


class RangeNotSatisfiable(ExchangeError):
    code = Code.RANGE_NOT_SATISFIABLE


class SessionEnded(ExchangeError):
    """The caller's key was revoked, or the official disabled or moved, while waiting."""

    code = Code.INVALID_TOKEN
