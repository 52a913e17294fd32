"""Issue 16 item 6: per-source limits slow down instead of locking out, and behind a
trusted proxy the client's own address counts.

The gateway here trusts 127.0.0.2 as a proxy; the tests' own proxy connects from that address
and writes a PROXY v2 header naming a client of its choice, as HAProxy's ``send-proxy-v2``
does. Direct connections come from 127.0.0.1 (an untrusted peer).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway.http.proxy_protocol import SIGNATURE, build_header
from tests.auth.conftest import JWT_BEARER, audit_events
from tests.conftest import Gateway, start_gateway

PROXY_ADDRESS = "127.0.0.2"
PER_SOURCE = 3


class PeerProxy:
    """A TCP proxy on 127.0.0.1 that connects to the gateway from PROXY_ADDRESS and starts
    every connection with a PROXY v2 header naming ``client`` (None: no header at all)."""

    def __init__(self, gateway_port: int) -> None:
        self.gateway_port = gateway_port
        self.client: tuple[str, int] | None = ("203.0.113.7", 50000)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(
                ("127.0.0.1", self.gateway_port), source_address=(PROXY_ADDRESS, 0)
            )
            if self.client is not None:
                upstream.sendall(build_header(self.client, ("127.0.0.1", self.gateway_port)))
            for source, target in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        env={
            "SEALHUB_TRUSTED_PROXIES": f"{PROXY_ADDRESS}/32",
            "SEALHUB_LOGIN_RATE_PER_SOURCE": str(PER_SOURCE),
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def proxy(gateway: Gateway) -> Iterator[PeerProxy]:
    port = int(gateway.base_url.rsplit(":", 1)[1])
    running = PeerProxy(port)
    try:
        yield running
    finally:
        running.close()


def via(proxy: PeerProxy, gateway: Gateway) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    return httpx.Client(base_url=f"https://127.0.0.1:{proxy.port}", verify=context, timeout=30)


def timed_challenge(http: httpx.Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = http.post("/v1/auth/challenge", json={"subject": str(uuid.uuid4())})
    return response, time.monotonic() - started


def wait_for_next_minute_if_late() -> None:
    """Counters are per clock minute: start a burst early in one so it is not split."""
    second = time.time() % 60
    if second > 45:
        time.sleep(61 - second)


# --- per-source pacing ----------------------------------------------------------------------


def test_per_source_limit_slows_down_instead_of_locking_out(gateway: Gateway) -> None:
    """Past its per-source limit an address is made to wait, but it is still served."""
    wait_for_next_minute_if_late()
    with gateway.client() as http:
        within = [timed_challenge(http) for _ in range(PER_SOURCE)]
        over = [timed_challenge(http) for _ in range(2)]
    for response, _ in within + over:
        assert response.status_code == 200, response.text
    assert max(seconds for _, seconds in within) < 1.0
    # 60 s / 3 attempts for each one over, capped at 2 s.
    assert all(seconds >= 1.8 for _, seconds in over), over


# --- PROXY protocol v2 ----------------------------------------------------------------------


def test_behind_the_proxy_the_client_address_is_audited_and_paced(
    gateway: Gateway, proxy: PeerProxy
) -> None:
    wait_for_next_minute_if_late()
    flooder, bystander = ("203.0.113.7", 50001), ("203.0.113.8", 50002)
    with via(proxy, gateway) as http:
        proxy.client = flooder
        bad = http.post(
            "/v1/auth/token",
            data={"grant_type": JWT_BEARER, "assertion": "a.b.c"},
            headers={"DPoP": "x.y.z"},
        )
        assert bad.status_code == 401, bad.text
        flood = [timed_challenge(http) for _ in range(PER_SOURCE + 1)]
    assert flood[-1][0].status_code == 200 and flood[-1][1] >= 1.0, flood
    with via(proxy, gateway) as http:
        proxy.client = bystander
        response, seconds = timed_challenge(http)
    # The bystander shares the proxy's address, not the flooder's: it is not slowed down.
    assert response.status_code == 200 and seconds < 1.0, seconds
    sources = {event["source"] for event in audit_events(gateway, "login.failed")}
    assert flooder[0] in sources, sources
    assert PROXY_ADDRESS not in sources


def test_a_trusted_proxy_that_sends_no_header_is_refused(
    gateway: Gateway, proxy: PeerProxy
) -> None:
    proxy.client = None
    with via(proxy, gateway) as http, pytest.raises(httpx.TransportError):
        http.get("/healthz")


def test_an_untrusted_peer_cannot_claim_an_address_with_a_header(gateway: Gateway) -> None:
    port = int(gateway.base_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(build_header(("10.0.0.1", 1234), ("127.0.0.1", port)))
        # The header sits where TLS expects the ClientHello: the handshake fails.
        with pytest.raises(OSError):  # ssl.SSLError or a reset
            context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_local_header_from_the_proxy_is_served_as_the_proxy(gateway: Gateway) -> None:
    """HAProxy's health checks send LOCAL: the proxy speaks for itself."""
    port = int(gateway.base_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    local = SIGNATURE + bytes([0x20, 0x00]) + (0).to_bytes(2, "big")
    with socket.create_connection(
        ("127.0.0.1", port), timeout=10, source_address=(PROXY_ADDRESS, 0)
    ) as raw:
        raw.sendall(local)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_direct_clients_are_still_served_with_proxies_configured(gateway: Gateway) -> None:
    with gateway.client() as http:
        assert http.get("/healthz").status_code == 200


def test_metrics_are_not_open_to_clients_behind_a_local_proxy(
    gateway: Gateway, proxy: PeerProxy
) -> None:
    """The proxy sits on a loopback address (which may read /metrics by default); the
    client it speaks for does not."""
    proxy.client = ("203.0.113.9", 50009)
    with via(proxy, gateway) as http:
        assert http.get("/metrics").status_code == 403
    with gateway.client() as http:
        assert http.get("/metrics").status_code == 200
