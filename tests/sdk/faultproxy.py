"""A real HTTPS proxy in front of a real gateway that injects transient failures.

It terminates TLS with its own certificate (issued by the SDK tests' platform CA), reads each
HTTP/1.1 request, records it, and then either answers with a scripted error (503, 429 with
``Retry-After``, ...), cuts the connection (before or after passing the request on to the
gateway, optionally with a TCP reset), or forwards it to the gateway and relays the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from keys import pki
from tests.sdk.conftest import SdkPlatform

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Fault:
    """What to do with the next *times* requests matching ``method path``."""

    method: str
    path: str
    times: int
    action: str  # "status" | "drop_before" | "drop_after"
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: dict[str, str]
    at: float


class FaultProxy:
    """``FaultProxy(platform, upstream_url, upstream_ca, tmp)``; ``.url`` is its origin."""

    def __init__(
        self, platform: SdkPlatform, upstream_url: str, upstream_ca: Path, tmp: Path
    ) -> None:
        self.upstream_url = upstream_url
        self.upstream_ca = upstream_ca
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self.ca_file = tmp / "proxy-ca.pem"
        self.ca_file.write_bytes(platform.root_pem)
        key, cert = pki.issue_tls_server(
            platform.ca_key,
            platform.ca,
            ["127.0.0.1"],
            crl_url=None,
            now=datetime.now(UTC) - timedelta(minutes=5),
        )
        chain = tmp / "proxy-chain.pem"
        chain.write_bytes(cert.public_bytes(Encoding.PEM) + platform.ca.public_bytes(Encoding.PEM))
        key_file = tmp / "proxy-key.pem"
        key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(chain, key_file)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"

    async def _start(self) -> asyncio.Server:
        self._upstream = httpx.AsyncClient(
            base_url=self.upstream_url,
            verify=ssl.create_default_context(cafile=str(self.upstream_ca)),
            timeout=60,
        )
        return await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._upstream.aclose()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- scripting --------------------------------------------------------------------------

    def answer(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next *times* matching requests with *status* (problem+json)."""
        with self._lock:
            self.faults.append(Fault(method, path, times, "status", status, dict(headers or {})))

    def cut(
        self,
        method: str,
        path: str,
        *,
        times: int = 1,
        after_forwarding: bool = False,
        reset: bool = False,
    ) -> None:
        """Close the connection of the next *times* matching requests without an answer:
        before the gateway saw them, or after it handled them (the answer is lost)."""
        action = "drop_after" if after_forwarding else "drop_before"
        with self._lock:
            self.faults.append(Fault(method, path, times, action, reset=reset))

    def requests(self, method: str, path: str) -> list[Seen]:
        """The requests seen for ``method path`` (path without the query)."""
        with self._lock:
            return [s for s in self.seen if s.method == method and s.path == path]

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    # --- serving ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await self._body(reader, headers)
                path = target.split("?", 1)[0]
                with self._lock:
                    self.seen.append(Seen(method, path, headers, time.monotonic()))
                fault = self._take(method, path)
                if fault is not None and fault.action == "status":
                    await self._write(writer, *self._problem(fault))
                    continue
                if fault is not None and fault.action == "drop_before":
                    self._cut(writer, fault.reset)
                    return
                forwarded = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
                answer = await self._upstream.request(
                    method, target, headers=forwarded, content=body
                )
                if fault is not None and fault.action == "drop_after":
                    self._cut(writer, fault.reset)
                    return
                relayed = [
                    (k, v)
                    for k, v in answer.headers.multi_items()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
                ]
                await self._write(writer, answer.status_code, relayed, answer.content)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            data = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    return bytes(data)
                data += chunk[:-2]
        length = int(headers.get("content-length") or 0)
        return await reader.readexactly(length) if length else b""

    def _problem(self, fault: Fault) -> tuple[int, list[tuple[str, str]], bytes]:
        code = {429: "rate_limited", 503: "unavailable"}.get(fault.status, "bad_gateway")
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "proxy fault",
                "status": fault.status,
                "detail": f"injected {fault.status}",
                "code": code,
            }
        ).encode()
        headers = [
            ("Content-Type", "application/problem+json"),
            ("X-Request-Id", f"proxy-{len(self.seen)}"),
            *fault.headers.items(),
        ]
        return fault.status, headers, body

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        out = [f"HTTP/1.1 {status} X"]
        out += [f"{k}: {v}" for k, v in headers]
        out.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    @staticmethod
    def _cut(writer: asyncio.StreamWriter, reset: bool) -> None:
        if reset:  # SO_LINGER 0: the close sends a TCP RST instead of a FIN
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
