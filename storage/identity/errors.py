"""Refused identity operations, shared by every identity repository and the identity service.

Each carries a stable ``code`` (its HTTP status is in gateway/http/errors.py) and a
``detail`` for the client.
"""

from __future__ import annotations


class IdentityError(Exception):
    """A refused identity operation; ``code`` is the stable machine code."""

    code = "identity_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OfficialNotFound(IdentityError):
    code = "not_found"


class KeyNotFound(IdentityError):
    code = "not_found"


class DepartmentUnknown(IdentityError):
    code = "department_unknown"


class InvalidRoles(IdentityError):
    """A malformed identity request (unknown roles, a pointless move): a 400."""

    code = "invalid_request"


class OfficialDisabled(IdentityError):
    code = "official_disabled"


class EnrollmentCodeInvalid(IdentityError):
    code = "enrollment_code_invalid"


class EnrollmentCodeUsed(IdentityError):
    code = "enrollment_code_used"


class EnrollmentCodeExpired(IdentityError):
    code = "enrollment_code_expired"


class EnrollmentCodeLocked(IdentityError):
    code = "enrollment_code_locked"


class KeyAlreadyEnrolled(IdentityError):
    code = "key_already_enrolled"


class RequestNotFound(IdentityError):
    code = "not_found"


class RequestDecided(IdentityError):
    code = "request_decided"


class SamePerson(IdentityError):
    """The second person of a four-eyes act is the first one (or may hold its key)."""

    code = "same_person"


class RefreshTokenInvalid(IdentityError):
    code = "invalid_grant"


class RefreshTokenReused(IdentityError):
    code = "refresh_token_reused"


class Replayed(IdentityError):
    """A single-use value was presented a second time."""

    code = "replayed"


class ReplayedNonce(Replayed):
    code = "replayed_nonce"


class ReplayedAssertion(Replayed):
    code = "replayed_assertion"


class ReplayedDpop(Replayed):
    code = "replayed_dpop"


class ReplayedEnrollmentProof(Replayed):
    code = "replayed_enrollment_proof"
