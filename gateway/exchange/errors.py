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


class InvalidRequest(ExchangeError):
    code = "invalid_request"


class NotFound(ExchangeError):
    """Nothing to give: no receipt yet, or a document not sealed yet."""

    code = "not_found"

    def __init__(self, detail: str = "no such resource") -> None:
        super().__init__(detail)


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
    403, like gateway.identity.auth.require_roles)."""

    code = "forbidden"


class RangeNotSatisfiable(ExchangeError):
    code = "range_not_satisfiable"


class SessionEnded(ExchangeError):
    """The caller's key was revoked, or the official disabled or moved, while waiting."""

    code = "invalid_token"
