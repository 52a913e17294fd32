"""S3 retry policy against real HTTP failures: a fault-injecting proxy in front of moto."""

from __future__ import annotations

import dataclasses
import http.client
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from keys.master import MasterKey
from storage.objects import S3StoreConfig, StorageUnavailable, open_store
from tests.conftest import free_port as _free_port
from tests.s3server import MotoServer

from ._support import MIB, Pattern, read_all, stream_of

_ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected</Message><Resource>/</Resource><RequestId>x</RequestId></Error>"
)


class FaultProxy(ThreadingHTTPServer):
    """Forwards to moto, except for the faults queued in ``faults`` (one per request)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", _free_port()), _Handler)
        self.upstream = upstream
        self.faults: list[str | None] = []
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def next_fault(self) -> str | None:
        with self.lock:
            self.requests += 1
            return self.faults.pop(0) if self.faults else None


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = self.server.next_fault()
        if fault in {"503", "403"}:
            code = "SlowDown" if fault == "503" else "AccessDenied"
            payload = _ERROR_XML.format(code=code).encode()
            self.send_response(int(fault))
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if fault == "reset":
            self.close_connection = True
            return
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=30)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "cut":  # promise the whole body, send half, hang up
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    server = FaultProxy(moto_server.endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        moto_server.reset()


def _config(endpoint: str, **changes: Any) -> S3StoreConfig:
    base = S3StoreConfig(
        endpoint=endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=f"faults-{uuid.uuid4().hex[:12]}",
        secure=False,
        part_size=5 * MIB,
        read_chunk_size=64 * 1024,
        max_attempts=4,
        retry_base_delay=0.01,
    )
    return dataclasses.replace(base, **changes)


async def test_slowdown_and_resets_are_retried(proxy: FaultProxy) -> None:
    store = await open_store(_config(proxy.endpoint), MasterKey.generate())
    try:
        proxy.faults = ["503", "reset", "503"]
        pattern = Pattern(12 * MIB)  # multipart: create, parts, complete all go through
        result = await store.put(pattern.stream(), max_bytes=pattern.size)
        assert proxy.faults == []
        proxy.faults = ["503", "503", "503"]
        assert (await store.stat(result.key)).size == pattern.size
    finally:
        await store.aclose()


async def test_read_resumes_after_a_cut_connection(proxy: FaultProxy) -> None:
    store = await open_store(_config(proxy.endpoint), MasterKey.generate())
    try:
        data = Pattern(3 * MIB).chunks().__next__() + b"tail"
        result = await store.put(stream_of(data), max_bytes=len(data))
        before = proxy.requests
        proxy.faults = [None, "cut"]  # header read passes, the body read breaks half-way
        assert await read_all(store, result.key) == data
        assert proxy.requests - before == 3  # header, cut body, resumed remainder
    finally:
        await store.aclose()


async def test_client_errors_are_not_retried(proxy: FaultProxy) -> None:
    store = await open_store(_config(proxy.endpoint), MasterKey.generate())
    try:
        before = proxy.requests
        proxy.faults = ["403", "403", "403"]
        with pytest.raises(StorageUnavailable, match="AccessDenied"):
            await store.stat("0" * 32)
        assert proxy.requests - before == 1
    finally:
        await store.aclose()


async def test_gives_up_after_max_attempts(proxy: FaultProxy) -> None:
    store = await open_store(_config(proxy.endpoint), MasterKey.generate())
    try:
        before = proxy.requests
        proxy.faults = ["503"] * 10
        with pytest.raises(StorageUnavailable, match="SlowDown"):
            await store.put(_chunks(b"x"), max_bytes=10)
        assert proxy.requests - before == 4
    finally:
        await store.aclose()


async def test_unreachable_endpoint() -> None:
    config = _config(f"127.0.0.1:{_free_port()}", max_attempts=2)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        await open_store(config, MasterKey.generate())


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
