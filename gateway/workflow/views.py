"""How the workflow's answers look over HTTP (the draft's headers; JSON bodies are the
service's stored answers, so a retried request gets exactly the first one)."""

from __future__ import annotations

from aiohttp import web

from gateway.workflow.service import DraftDownload


def draft_headers(download: DraftDownload) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{download.sha256}"',
        "Sealhub-Draft-Version": str(download.version),
    }
    if download.byte_range is not None:
        start, end = download.byte_range
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{download.size}"
    return headers


async def stream_draft(request: web.Request, download: DraftDownload) -> web.StreamResponse:
    """The draft as application/pdf, 206 for a range, streamed as the store yields it."""
    response = web.StreamResponse(
        status=206 if download.byte_range is not None else 200, headers=draft_headers(download)
    )
    response.content_type = "application/pdf"
    response.content_length = download.length
    await response.prepare(request)
    async for chunk in download.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
