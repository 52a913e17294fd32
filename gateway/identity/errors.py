"""Access refusals raised by the identity service and the authorization helpers."""

from __future__ import annotations

from keys.codes import Code, CodedError


class Forbidden(CodedError):
    code = Code.FORBIDDEN


class NotFound(CodedError):
    code = Code.NOT_FOUND
    default_detail = "no such resource"
