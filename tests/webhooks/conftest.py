"""Webhook receivers for tests: real HTTPS servers on 127.0.0.1 with a certificate from a
test CA, and a gateway that trusts that CA through ``SEALHUB_WEBHOOK_CA_FILE``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import Gateway, start_gateway
from tests.exchange.conftest import (  # noqa: F401 (fixtures re-exported for this package)
    admins,
    sample_pdf,
    seal_keeper,
    sender_seal,
)

RECEIVER_NAME = "hooks.test"


@dataclass(frozen=True)
class ReceiverCa:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> ReceiverCa:
    """A CA the gateway does not know by default, and a receiver certificate from it."""
    folder = tmp_path_factory.mktemp("webhook-ca")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("webhook test CA"))
        .issuer_name(_name("webhook test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(RECEIVER_NAME))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(RECEIVER_NAME),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = ReceiverCa(folder / "ca.pem", folder / "receiver.pem", folder / "receiver.key")
    paths.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    server_name: str | None

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """An HTTPS endpoint; ``status`` and ``location`` decide how it answers."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    status: int = 204
    location: str | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"https://{host}:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


def _serve(test_ca: ReceiverCa) -> Receiver:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(test_ca.cert_pem), str(test_ca.key_pem))
    names: dict[int, str | None] = {}

    def remember_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        names[id(sock)] = name

    context.sni_callback = remember_sni
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.requests.append(
                Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    names.get(id(self.connection)),
                )
            )
            self.send_response(receiver.status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    class TlsServer(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[Any, Any]:
            sock, address = self.socket.accept()
            return context.wrap_socket(sock, server_side=True), address

    server = TlsServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture
def receiver_factory(test_ca: ReceiverCa) -> Iterator[Callable[[], Receiver]]:
    started: list[Receiver] = []

    def make() -> Receiver:
        receiver = _serve(test_ca)
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture(scope="module")
def gateway(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory, test_ca: ReceiverCa
) -> Iterator[Gateway]:
    """The demo gateway, trusting the test CA for webhook receivers."""
    running = start_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        env={
            "SEALHUB_WEBHOOK_CA_FILE": str(test_ca.ca_pem),
            # An attempt's lease is three times this plus the backoff: short, so tests of
            # results that never land wait seconds, not the default's 30.
            "SEALHUB_WEBHOOK_TIMEOUT_SECONDS": "1",
        },
    )
    try:
        yield running
    finally:
        running.stop()
