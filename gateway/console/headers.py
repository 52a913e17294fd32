"""The browser security headers of every answer, set in one place (``on_response_prepare``,
so streamed answers, refusals and errors get them too).

The console's page and files get the full set: a CSP without ``unsafe-inline`` or
``unsafe-eval`` that also demands Trusted Types (the console's one policy is named
``sealhub-console``), no framing, no referrer, no sharing of the browsing context. Every API
answer gets ``nosniff`` and ``no-referrer``, and ``Cache-Control: no-store`` unless its
handler chose otherwise: that covers streamed document ``content`` and ``draft``
downloads, which the middleware's default never reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:;"
    " font-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none';"
    " require-trusted-types-for 'script'; trusted-types sealhub-console"
)
EVERY_ANSWER: Mapping[str, str] = MappingProxyType(
    {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
)
CONSOLE_ANSWER: Mapping[str, str] = MappingProxyType(
    {
        **EVERY_ANSWER,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cross-Origin-Opener-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
)
NO_STORE = "no-store"


def is_console_path(path: str) -> bool:
    return path == "/" or path.startswith("/console/")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers above, by where the request went."""
    chosen = CONSOLE_ANSWER if is_console_path(request.path) else EVERY_ANSWER
    response.headers.update(chosen)
    response.headers.setdefault("Cache-Control", NO_STORE)
