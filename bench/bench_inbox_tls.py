"""`GET /v1/inbox` over TLS with 200 concurrent clients, against a bare aiohttp handler behind
the same kind of TLS.

Run: ``.venv/bin/python bench/bench_inbox_tls.py [--clients 200] [--seconds 8]`` (starts its
own PostgreSQL and a real gateway over HTTPS). One clerk's inbox holds a page of deliveries;
200 clients on keep-alive connections each ask for it in a loop, every request with its own
DPoP proof. The baseline is an aiohttp process whose one handler answers the same JSON bytes,
behind TLS 1.2+ with a P-256 certificate like the gateway's, driven by the same client code
with the same headers, so the ratio is what authentication, the database and the gateway's
middleware cost. Writes ``bench/results/inbox_tls.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_fanout import _template  # noqa: E402
from tests.conftest import (  # noqa: E402
    Session,
    _create_database,
    free_port,
    login_as,
    start_gateway,
)
from tests.exchange.conftest import meta_for, send  # noqa: E402
from tests.seals.seal_corpus import reportlab_pdf  # noqa: E402

RESULTS = REPO / "bench" / "results" / "inbox_tls.json"
PATH = "/v1/inbox"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1, as the gateway's TLS certificate is."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "bare.pem", directory / "bare.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def serve_bare(port: int, cert: Path, key: Path, body: Path) -> None:
    """The baseline process: one handler answering fixed JSON bytes."""
    answer = body.read_bytes()

    async def inbox(_: web.Request) -> web.Response:
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_get(PATH, inbox)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None)


async def hammer(
    base_url: str, cafile: Path, session: Session, clients: int, seconds: float
) -> tuple[int, int]:
    """(answers 200, other answers) from *clients* looping for *seconds*."""
    context = ssl.create_default_context(cafile=str(cafile))
    connector = aiohttp.TCPConnector(limit=clients, ssl=context)
    ok = failed = 0
    async with aiohttp.ClientSession(base_url, connector=connector) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal ok, failed
            while time.perf_counter() < deadline:
                async with http.get(PATH, headers=session.headers("GET", PATH)) as response:
                    await response.read()
                    if response.status == 200:
                        ok += 1
                    else:
                        failed += 1

        await asyncio.gather(*(client() for _ in range(clients)))
    return ok, failed


def wait_for_port(port: int) -> None:
    import socket

    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the baseline server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--serve-bare", nargs=4, metavar=("PORT", "CERT", "KEY", "BODY"))
    args = parser.parse_args()
    if args.serve_bare:
        port, cert, key, body = args.serve_bare
        serve_bare(int(port), Path(cert), Path(key), Path(body))
        return

    from pgserver.postgres_server import get_server

    root = Path(tempfile.mkdtemp(prefix="shbench-tls-", dir="/tmp"))
    root.chmod(0o755)
    server = get_server(root / "pg", cleanup_mode="stop")
    try:
        server_url = server.get_uri()
        database_url = _create_database(server_url, asyncio.run(_template(server_url)))
        gateway = start_gateway(
            database_url, root / "gw", env={"SEALHUB_LOGIN_RATE_PER_SOURCE": "100000"}
        )
        try:
            keeper = login_as(gateway, "yl-bgs", ["seal_keeper", "clerk"])
            first, second = login_as(gateway, "yl", ["admin"]), login_as(gateway, "yl", ["admin"])
            request = first.post(
                "/v1/departments/yl-bgs/seal-requests", json={"purpose": "公文专用章"}
            )
            second.post(f"/v1/seal-requests/{request.json()['id']}/approve").raise_for_status()
            clerk = login_as(gateway, "yl-jyj", ["clerk"])
            for n in range(5):
                send(keeper, meta_for(["yl-jyj"], f"玉政发〔2026〕{900 + n}号"), reportlab_pdf())
            page = clerk.get(PATH)
            page.raise_for_status()
            body = root / "inbox.json"
            body.write_bytes(page.content)
            cert, key = self_signed(root)
            port = free_port()
            bare = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve-bare",
                    str(port),
                    str(cert),
                    str(key),
                    str(body),
                ]
            )
            try:
                wait_for_port(port)
                bare_ok, bare_failed = asyncio.run(
                    hammer(f"https://127.0.0.1:{port}", cert, clerk, args.clients, args.seconds)
                )
            finally:
                bare.terminate()
                bare.wait()
            ok, failed = asyncio.run(
                hammer(gateway.base_url, gateway.ca_path, clerk, args.clients, args.seconds)
            )
        finally:
            gateway.stop()
    finally:
        server.cleanup()
    result = {
        "clients": args.clients,
        "seconds": args.seconds,
        "inbox_items": len(json.loads(body.read_bytes())["items"]),
        "gateway_rps": ok / args.seconds,
        "gateway_non_200": failed,
        "bare_rps": bare_ok / args.seconds,
        "bare_non_200": bare_failed,
        "ratio": (ok / args.seconds) / (bare_ok / args.seconds),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
