"""Access refusals raised by the identity service and the authorization helpers."""

from __future__ import annotations


class Forbidden(Exception):
    code = "forbidden"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(Exception):
    code = "not_found"

    def __init__(self, detail: str = "no such resource") -> None:
        super().__init__(detail)
        self.detail = detail
