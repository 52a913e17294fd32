"""The PROXY v2 header parser (pure): what HAProxy sends is read, anything else refused."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.http.proxy_protocol import (
    SIGNATURE,
    ProxiedAddress,
    ProxyHeaderError,
    build_header,
    is_trusted,
    parse_header,
)


def test_ipv4_and_ipv6_sources_round_trip() -> None:
    assert parse_header(build_header(("203.0.113.7", 5000), ("10.0.0.1", 8443))) == (
        ProxiedAddress("203.0.113.7", 5000)
    )
    assert parse_header(build_header(("2001:db8::7", 6000), ("2001:db8::1", 8443))) == (
        ProxiedAddress("2001:db8::7", 6000)
    )


def test_tlvs_after_the_addresses_are_ignored() -> None:
    header = bytearray(build_header(("198.51.100.1", 1), ("10.0.0.1", 2)))
    tlv = b"\x04\x00\x02ok"  # PP2_TYPE_NOOP
    header[14:16] = (12 + len(tlv)).to_bytes(2, "big")
    assert parse_header(bytes(header) + tlv) == ProxiedAddress("198.51.100.1", 1)


def test_local_keeps_the_peer_address() -> None:
    assert parse_header(SIGNATURE + b"\x20\x00\x00\x00") is None


@pytest.mark.parametrize(
    "header",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 5,  # a TLS ClientHello
        SIGNATURE + b"\x10\x11\x00\x0c" + b"\x00" * 12,  # version 1
        SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,  # command 2
        SIGNATURE + b"\x21\x12\x00\x0c" + b"\x00" * 12,  # UDP
        SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,  # too short for IPv4
        SIGNATURE + b"\x21\x11\x08\x00",  # 2048 bytes announced
    ],
    ids=["tls", "v1", "command", "udp", "short", "long"],
)
def test_other_bytes_are_refused(header: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_header(header)


def test_trust_by_network_including_mapped_ipv4() -> None:
    trusted = (ipaddress.ip_network("172.30.0.10/32"), ipaddress.ip_network("fd00::/8"))
    assert is_trusted("172.30.0.10", trusted)
    assert is_trusted("::ffff:172.30.0.10", trusted)
    assert is_trusted("fd00::5", trusted)
    assert not is_trusted("172.30.0.11", trusted)
    assert not is_trusted("not-an-address", trusted)
