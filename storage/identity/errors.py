"""Refused identity operations, shared by every identity repository and the identity service.

Each carries a stable ``code`` (a ``keys.codes.Code``, which knows its HTTP status) and a
``detail`` for the client.
"""

from __future__ import annotations

from keys.codes import Code, CodedError


class IdentityError(CodedError):
    """A refused identity operation; ``code`` is the stable machine code."""

    code: str = Code.IDENTITY_ERROR


class OfficialNotFound(IdentityError):
    code = Code.NOT_FOUND


class KeyNotFound(IdentityError):
    code = Code.NOT_FOUND


class DepartmentUnknown(IdentityError):
    code = Code.DEPARTMENT_UNKNOWN


class InvalidRoles(IdentityError):
    """A malformed identity request (unknown roles, a pointless move): a 400."""

    code = Code.INVALID_REQUEST


class OfficialDisabled(IdentityError):
    code = Code.OFFICIAL_DISABLED


class EnrollmentCodeInvalid(IdentityError):
    code = Code.ENROLLMENT_CODE_INVALID


class EnrollmentCodeUsed(IdentityError):
    code = Code.ENROLLMENT_CODE_USED


class EnrollmentCodeExpired(IdentityError):
    code = Code.ENROLLMENT_CODE_EXPIRED


class EnrollmentCodeLocked(IdentityError):
    code = Code.ENROLLMENT_CODE_LOCKED


class KeyAlreadyEnrolled(IdentityError):
    code = Code.KEY_ALREADY_ENROLLED


class RequestNotFound(IdentityError):
    code = Code.NOT_FOUND


class RequestDecided(IdentityError):
    code = Code.REQUEST_DECIDED


class SamePerson(IdentityError):
    """The second person of a four-eyes act is the first one (or may hold its key)."""

    code = Code.SAME_PERSON


class RefreshTokenInvalid(IdentityError):
    code = Code.INVALID_GRANT


class RefreshTokenReused(IdentityError):
    code = Code.REFRESH_TOKEN_REUSED


class Replayed(IdentityError):
    """A single-use value was presented a second time."""

    code: str = Code.REPLAYED


class ReplayedNonce(Replayed):
    code = Code.REPLAYED_NONCE


class ReplayedAssertion(Replayed):
    code = Code.REPLAYED_ASSERTION


class ReplayedDpop(Replayed):
    code = Code.REPLAYED_DPOP


class ReplayedEnrollmentProof(Replayed):
    code = Code.REPLAYED_ENROLLMENT_PROOF
