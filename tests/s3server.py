"""A real S3-protocol server for tests: moto's, as a separate process (its memory is not ours).

MinIO cannot be installed on these machines; moto speaks the S3 wire protocol that the
minio SDK uses. One server per test session; tests use fresh buckets or reset it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("moto server exited during startup")
            try:
                with urllib.request.urlopen(f"http://{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError("moto server did not answer in time")

    def reset(self) -> None:
        request = urllib.request.Request(f"http://{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - fixed http URL
            pass

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
