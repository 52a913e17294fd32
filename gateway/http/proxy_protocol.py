"""PROXY protocol version 2 (HAProxy's binary header) in front of TLS, from trusted proxies only.

Behind a TCP proxy every client shares the proxy's address, so per-source pacing and the
audit's ``source`` would speak of the proxy, not of the client. A proxy configured with
``send-proxy-v2`` writes one binary header with the client's address before the client's
first byte (the TLS ClientHello). The gateway reads that header only from a peer listed in
``SEALHUB_TRUSTED_PROXIES``; from any other peer it reads nothing, so a header sent by a
client is where TLS expects a ClientHello and the handshake fails. A trusted proxy that
sends no valid header is refused too: the connection is closed.

The header is read from the raw socket with exact-length reads, so not one byte of the TLS
stream behind it is consumed before TLS starts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("sealhub.proxy")

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
FIXED_PART = 16  # signature, version/command, family/protocol, length
# Addresses are 12 (IPv4) or 36 (IPv6) bytes; TLVs may follow. Anything longer is not a proxy.
MAX_ADDRESS_BLOCK = 1024

_LOCAL = 0x0
_PROXY = 0x1
_UNSPEC = 0x0
_INET = 0x1
_INET6 = 0x2
_STREAM = 0x1

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyHeaderError(Exception):
    """The bytes before TLS are not a PROXY v2 header we accept."""


@dataclass(frozen=True)
class ProxiedAddress:
    """The client's address as the proxy saw it; None from a LOCAL (health check) header."""

    host: str
    port: int


def parse_fixed_part(fixed: bytes) -> tuple[int, int, int]:
    """(command, family/protocol byte, length of what follows) from the first 16 bytes."""
    if len(fixed) != FIXED_PART or fixed[:12] != SIGNATURE:
        raise ProxyHeaderError("no PROXY v2 signature")
    version, command = fixed[12] >> 4, fixed[12] & 0x0F
    if version != 2 or command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError("not PROXY protocol version 2 LOCAL or PROXY")
    length = int.from_bytes(fixed[14:16], "big")
    if length > MAX_ADDRESS_BLOCK:
        raise ProxyHeaderError("PROXY v2 address block too long")
    return command, fixed[13], length


def parse_addresses(command: int, family_protocol: int, block: bytes) -> ProxiedAddress | None:
    """The source address from the address block; None when the proxy speaks for itself
    (LOCAL, or an unspecified family), so the peer's own address stands."""
    if command == _LOCAL:
        return None
    family, protocol = family_protocol >> 4, family_protocol & 0x0F
    if family == _UNSPEC:
        return None
    if protocol != _STREAM:
        raise ProxyHeaderError("PROXY v2 header is not for a stream connection")
    if family == _INET and len(block) >= 12:
        host = str(ipaddress.IPv4Address(block[0:4]))
        return ProxiedAddress(host, int.from_bytes(block[8:10], "big"))
    if family == _INET6 and len(block) >= 36:
        address = ipaddress.IPv6Address(block[0:16])
        shown = address.ipv4_mapped or address
        return ProxiedAddress(str(shown), int.from_bytes(block[32:34], "big"))
    raise ProxyHeaderError("PROXY v2 header has no usable source address")


def parse_header(header: bytes) -> ProxiedAddress | None:
    """A whole header (fixed part and address block), for tests and tools."""
    command, family_protocol, length = parse_fixed_part(header[:FIXED_PART])
    block = header[FIXED_PART:]
    if len(block) != length:
        raise ProxyHeaderError("PROXY v2 header length does not match")
    return parse_addresses(command, family_protocol, block)


def build_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY v2 ``PROXY`` header over TCP, as HAProxy's ``send-proxy-v2`` writes it."""
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("source and destination must be the same IP version")
    family = _INET if src.version == 4 else _INET6
    block = (
        src.packed + dst.packed + source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big")
    )
    return (
        SIGNATURE
        + bytes([0x20 | _PROXY, (family << 4) | _STREAM])
        + len(block).to_bytes(2, "big")
        + block
    )


def is_trusted(peer_host: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(peer_host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)


async def _read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Exactly *size* bytes, never more: what follows belongs to TLS."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = await loop.sock_recv(sock, size - len(chunks))
        if not chunk:
            raise ProxyHeaderError("the proxy closed the connection inside the header")
        chunks += chunk
    return bytes(chunks)


async def read_header(
    loop: asyncio.AbstractEventLoop, sock: socket.socket
) -> ProxiedAddress | None:
    """Read one PROXY v2 header from *sock* (non-blocking) and nothing beyond it."""
    command, family_protocol, length = parse_fixed_part(await _read_exactly(loop, sock, FIXED_PART))
    block = await _read_exactly(loop, sock, length) if length else b""
    return parse_addresses(command, family_protocol, block)


ClientAddress = tuple[str, int] | None
ProtocolFactory = Callable[[ClientAddress], asyncio.Protocol]


class ProxyAwareListener:
    """The gateway's TLS listener when proxies are trusted: accepts TCP itself, reads the PROXY
    header from trusted peers, then hands the socket to asyncio's TLS (connect_accepted_socket),
    whose protocol learns the client's address. Other peers go to TLS as they are."""

    def __init__(
        self,
        sock: socket.socket,
        factory: ProtocolFactory,
        *,
        ssl_context: ssl.SSLContext,
        trusted: Sequence[Network],
        handshake_timeout: float,
    ) -> None:
        self._sock = sock
        self._factory = factory
        self._ssl = ssl_context
        self._trusted = tuple(trusted)
        self._timeout = handshake_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        host: str,
        port: int,
        factory: ProtocolFactory,
        *,
        ssl_context: ssl.SSLContext,
        trusted: Sequence[Network],
        handshake_timeout: float,
        backlog: int,
    ) -> ProxyAwareListener:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        dualstack = family == socket.AF_INET6 and socket.has_dualstack_ipv6()
        sock = socket.create_server(
            (host, port), family=family, backlog=backlog, dualstack_ipv6=dualstack
        )
        sock.setblocking(False)
        listener = cls(
            sock,
            factory,
            ssl_context=ssl_context,
            trusted=trusted,
            handshake_timeout=handshake_timeout,
        )
        listener._accepting = asyncio.get_running_loop().create_task(listener._accept_loop())
        return listener

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, peer = await loop.sock_accept(self._sock)
            except OSError as exc:  # out of descriptors and the like: wait, do not spin
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._connection(connection, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connection(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        connection.setblocking(False)
        client: ClientAddress = None
        try:
            if is_trusted(str(peer[0]), self._trusted):
                async with asyncio.timeout(self._timeout):
                    proxied = await read_header(loop, connection)
                if proxied is not None:
                    client = (proxied.host, proxied.port)
            await loop.connect_accepted_socket(
                lambda: self._factory(client),
                connection,
                ssl=self._ssl,
                ssl_handshake_timeout=self._timeout,
            )
        except (ProxyHeaderError, TimeoutError, OSError) as exc:
            log.info(
                "closed a connection from %s before TLS: %s", peer[0], exc or type(exc).__name__
            )
            connection.close()

    def close(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._sock.close()
