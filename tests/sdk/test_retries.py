"""Network errors are retried with backoff: a real TCP proxy in front of the gateway drops the
first connections, or the gateway itself is stopped and restarted on the same port; the SDK
gets through anyway. (HTTP-level failures: test_transient_failures.py.)"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sealhub_sdk import Client, DeviceKey, RetryPolicy, TransportError

from tests.conftest import Gateway, create_official_in_db, start_gateway


class FlakyProxy:
    """Forwards TCP to *upstream*, but closes the first *drop* connections at once."""

    def __init__(self, upstream: tuple[str, int], drop: int) -> None:
        self.upstream = upstream
        self.drop = drop
        self.accepted = 0
        self.open: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drop:
                conn.close()
                continue
            upstream = socket.create_connection(self.upstream)
            self.open += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def arm(self, drop: int) -> None:
        """Cut every open connection, then refuse the next *drop* ones."""
        self.drop, self.accepted = drop, 0
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@contextmanager
def proxied_client(
    gateway: Gateway, drop: int, attempts: int
) -> Iterator[tuple[Client, FlakyProxy]]:
    official, code = create_official_in_db(gateway.database_url, "yl-jyj", ["clerk"])
    port = int(gateway.base_url.rsplit(":", 1)[1])
    proxy = FlakyProxy(("127.0.0.1", port), drop=0)
    client = Client(
        f"https://127.0.0.1:{proxy.port}",
        ca_file=gateway.ca_path,
        key=DeviceKey.generate(),
        official_id=official,
        public_url=gateway.base_url,
        retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05),
    )
    try:
        client.enroll(official, code)
        client.login()
        proxy.arm(drop)
        yield client, proxy
    finally:
        client.close()
        proxy.close()


def test_dropped_connections_are_retried(gateway: Gateway) -> None:
    with proxied_client(gateway, drop=2, attempts=4) as (client, proxy):
        assert client.department("yl").code == "yl"
        assert proxy.accepted == 3


def test_retries_are_bounded(gateway: Gateway) -> None:
    with proxied_client(gateway, drop=10, attempts=3) as (client, proxy):
        with pytest.raises(TransportError) as failed:
            client.me()
        assert failed.value.code == "transport_error"
        assert proxy.accepted == 3


@dataclass(frozen=True)
class CountingPolicy(RetryPolicy):
    """The SDK's policy, recording the waits it chose."""

    waits: list[float] = field(default_factory=list, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        chosen = super().delay(attempt, retry_after)
        self.waits.append(chosen)
        return chosen


def test_a_restarting_gateway_is_waited_for(db_url: str, tmp_path: Path) -> None:
    """Connections refused while the gateway restarts on the same port are retried, for
    reads and for a POST without Idempotency-Key alike (a refused request never left)."""
    data_dir = tmp_path / "gw"
    running = start_gateway(db_url, data_dir)
    port = int(running.base_url.rsplit(":", 1)[1])
    official, code = create_official_in_db(db_url, "yl-jyj", ["clerk"])
    policy = CountingPolicy(attempts=60, base=0.25, cap=0.5)
    restarted: list[Gateway] = []

    def restart_soon() -> threading.Thread:
        def run() -> None:
            time.sleep(0.5)
            restarted.append(start_gateway(db_url, data_dir, port=port))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    client = Client(
        running.base_url,
        ca_file=running.ca_path,
        key=DeviceKey.generate(),
        official_id=official,
        retry=policy,
    )
    try:
        client.enroll(official, code)
        client.login()
        for call in (client.me, client.login):  # a read, then the login POSTs
            (restarted.pop() if restarted else running).stop()
            with pytest.raises(httpx.ConnectError):
                httpx.get(running.base_url, verify=False)  # noqa: S501 (only probing the port)
            thread = restart_soon()
            waits = len(policy.waits)
            call()
            thread.join(60)
            assert len(policy.waits) > waits  # refused at least once, then through
        assert client.me().id == official
    finally:
        client.close()
        for gateway in [running, *restarted]:
            gateway.stop()
