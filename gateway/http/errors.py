"""The one place where errors become HTTP: RFC 9457 problem+json with a stable ``code``.

The codes and their statuses are the :class:`keys.codes.Code` registry; errors raised on
purpose derive from :class:`keys.codes.CodedError` and carry their code, detail and
headers, which :func:`problem_for` renders. Exceptions of packages not yet on that base
still count when their class has a registered ``code`` string. Anything else is a bug:
logged with its traceback under the request id, answered as a bare 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

from aiohttp import web

from keys.codes import Code, CodedError

PROBLEM_TYPE_BASE = "https://sealhub.invalid/problems/"

# code -> HTTP status, from the registry (a plain string finds its code: Code is a StrEnum).
STATUS_BY_CODE: Mapping[str, int] = MappingProxyType({code: code.status for code in Code})


class ApiError(CodedError):
    """An error decided at the HTTP edge (bad parameters, unknown route, ...), with the
    response headers it needs (``WWW-Authenticate``, ``Retry-After``, ...) and members
    added to the problem body (a failed check's ``reason``). *code* must be registered."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = Code.of(code)
        super().__init__(detail, headers=headers, extra=extra)
        self._status = status

    @property
    def status(self) -> int:
        return self._status or Code.of(self.code).status


def status_for(exc: BaseException) -> tuple[int, Code] | None:
    """(status, code) for a known domain error, else None (a bug)."""
    if isinstance(exc, CodedError):
        return exc.status, Code.of(exc.code)
    code = getattr(type(exc), "code", None)
    if isinstance(code, str) and code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code], Code.of(code)
    return None


def problem_for(exc: BaseException) -> web.Response | None:
    """The answer to a known error: its status and code, its detail (without server
    paths), its extra members and headers. None: *exc* is a bug."""
    mapped = status_for(exc)
    if mapped is None:
        return None
    status, code = mapped
    if isinstance(exc, CodedError):
        response = problem_response(status, code, detail_of(exc), extra=exc.extra)
        response.headers.update(exc.headers)
        return response
    return problem_response(status, code, detail_of(exc))


# An absolute filesystem path: a slash-led run of at least two components, not inside a URL
# or an API path (/v1/..., /.well-known/...). Library messages (OSError, pyhanko, asyncpg)
# may carry one; it tells a client where the server keeps its data, so none is ever sent.
_SERVER_PATH = re.compile(r"(?<![\w.:/-])/(?!v1/|\.well-known/)(?:[\w.+@~-]+/)+[\w.+@~-]*")


def without_server_paths(text: str) -> str:
    """*text* with every filesystem path replaced by ``<path>``."""
    return _SERVER_PATH.sub("<path>", text)


def problem_response(
    status: int, code: str, detail: str, *, extra: Mapping[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": without_server_paths(detail),
        "code": code,
    }
    if extra:
        body.update(extra)
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type="application/problem+json",
        charset="utf-8",
    )


def detail_of(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str) and detail:
        return detail
    return str(exc) or type(exc).__name__
