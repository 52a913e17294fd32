"""The RFC 3161 authority: openssl makes the queries and verifies the replies; pyhanko's own
HTTP client obtains and validates tokens."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from asn1crypto import algos, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from keys import pki
from keys.platform import PlatformPki
from keys.tsa import (
    TSA_POLICY_OID,
    InProcessTimeStamper,
    MonotonicSerials,
    TimeStampAuthority,
    TimeStampResponse,
    TsaError,
    TsaResponseError,
    random_serial,
    respond,
    token_from_response,
)

from .conftest import OpenSsl


@pytest.fixture
def authority(platform: PlatformPki) -> TimeStampAuthority:
    return TimeStampAuthority(cert=platform.tsa.cert, key=platform.tsa.key)


def _query(openssl: OpenSsl, tmp_path: Path, digest: str, *extra: str) -> Path:
    data = tmp_path / "document.pdf"
    data.write_bytes(b"%PDF-1.7 sealed document " * 50)
    query = tmp_path / f"q-{digest}.tsq"
    result = openssl("ts", "-query", "-data", data, f"-{digest}", *extra, "-out", query)
    assert result.returncode == 0, result.stderr
    return query


def _reply_text(openssl: OpenSsl, reply: Path) -> str:
    result = openssl("ts", "-reply", "-in", reply, "-text")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_openssl_verifies_our_reply(
    tmp_path: Path,
    openssl: OpenSsl,
    platform: PlatformPki,
    authority: TimeStampAuthority,
    digest: str,
) -> None:
    query = _query(openssl, tmp_path, digest, "-cert")
    reply = tmp_path / "reply.tsr"
    serial = 4242
    reply.write_bytes(
        respond(authority, query.read_bytes(), serial_number=serial, now=datetime.now(UTC))
    )
    result = openssl(
        "ts",
        "-verify",
        "-in",
        reply,
        "-queryfile",
        query,
        "-CAfile",
        platform.ca_pem_path,
        "-untrusted",
        platform.cert_path("tsa"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stdout
    text = _reply_text(openssl, reply)
    assert "Status: Granted." in text
    assert f"Policy OID: {TSA_POLICY_OID}" in text
    assert "Serial number: 0x1092" in text
    assert "Accuracy: 0x01 seconds" in text
    assert "Nonce: 0x" in text  # openssl ts -query sends a nonce by default


def test_a_reply_for_other_data_fails_verification(
    tmp_path: Path, openssl: OpenSsl, platform: PlatformPki, authority: TimeStampAuthority
) -> None:
    query = _query(openssl, tmp_path, "sha256", "-cert")
    other = tmp_path / "other.bin"
    other.write_bytes(b"something else")
    other_query = tmp_path / "other.tsq"
    openssl("ts", "-query", "-data", other, "-sha256", "-cert", "-out", other_query)
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(
        respond(authority, other_query.read_bytes(), serial_number=1, now=datetime.now(UTC))
    )
    result = openssl(
        "ts",
        "-verify",
        "-in",
        reply,
        "-queryfile",
        query,
        "-CAfile",
        platform.ca_pem_path,
        "-untrusted",
        platform.cert_path("tsa"),
    )
    assert result.returncode != 0
    assert "Verification: FAILED" in result.stdout


def test_cert_req_controls_embedded_certificates(
    tmp_path: Path, openssl: OpenSsl, authority: TimeStampAuthority
) -> None:
    now = datetime.now(UTC)
    with_cert = _query(openssl, tmp_path, "sha256", "-cert")
    without = tmp_path / "nocert.tsq"
    openssl("ts", "-query", "-data", tmp_path / "document.pdf", "-sha256", "-out", without)
    token = token_from_response(
        respond(authority, with_cert.read_bytes(), serial_number=1, now=now)
    )
    certs = token["content"]["certificates"]
    assert [c.chosen.subject.native["common_name"] for c in certs] == [
        "sealhub Time-Stamping Authority"
    ]
    token = token_from_response(respond(authority, without.read_bytes(), serial_number=2, now=now))
    assert not token["content"]["certificates"].native


def test_bad_algorithm_and_garbage_are_rejected_with_fail_info(
    tmp_path: Path, openssl: OpenSsl, authority: TimeStampAuthority
) -> None:
    now = datetime.now(UTC)
    sha1_query = _query(openssl, tmp_path, "sha1", "-cert")
    reply = tmp_path / "sha1.tsr"
    reply.write_bytes(respond(authority, sha1_query.read_bytes(), serial_number=1, now=now))
    text = _reply_text(openssl, reply)
    assert "Status: Rejected." in text
    assert "unrecognized or unsupported algorithm identifier" in text
    with pytest.raises(TsaResponseError, match="bad_alg"):
        token_from_response(reply.read_bytes())
    with pytest.raises(TsaResponseError, match="bad_data_format"):
        token_from_response(respond(authority, b"\x30\x03junk", serial_number=2, now=now))


def _request(**overrides: Any) -> tsp.TimeStampReq:
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "hashed_message": hashlib.sha256(b"x").digest(),
        },
        "nonce": 0x1234567890ABCDEF,
        "cert_req": True,
    }
    fields.update(overrides)
    return tsp.TimeStampReq(fields)


def _fail_info(reply: bytes) -> set[str]:
    parsed = TimeStampResponse.load(reply)
    assert parsed["status"]["status"].native == "rejection"
    return set(parsed["status"]["fail_info"].native)


def test_nonce_echo_policy_and_imprint_checks(authority: TimeStampAuthority) -> None:
    now = datetime(2026, 11, 26, 10, 0, 0, 250000, tzinfo=UTC)
    now = max(now, authority.cert.not_valid_before_utc + timedelta(seconds=1))
    token = token_from_response(respond(authority, _request().dump(), serial_number=77, now=now))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["nonce"].native == 0x1234567890ABCDEF
    assert info["serial_number"].native == 77
    assert info["gen_time"].native == now
    assert info["policy"].native == TSA_POLICY_OID
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(b"x").digest()
    attrs = {a["type"].native: a for a in token["content"]["signer_infos"][0]["signed_attrs"]}
    assert "signing_certificate_v2" in attrs
    ess = attrs["signing_certificate_v2"]["values"][0]["certs"][0]
    tsa_der = authority.cert.public_bytes(serialization.Encoding.DER)
    assert ess["cert_hash"].native == hashlib.sha256(tsa_der).digest()
    assert ess["issuer_serial"]["serial_number"].native == authority.cert.serial_number

    wrong_length = _request(
        message_imprint={"hash_algorithm": {"algorithm": "sha384"}, "hashed_message": b"1" * 32}
    )
    assert _fail_info(respond(authority, wrong_length.dump(), serial_number=1, now=now)) == {
        "bad_data_format"
    }
    other_policy = _request(req_policy="1.2.3.4")
    assert _fail_info(respond(authority, other_policy.dump(), serial_number=1, now=now)) == {
        "unaccepted_policy"
    }
    ours = _request(req_policy=TSA_POLICY_OID)
    assert token_from_response(respond(authority, ours.dump(), serial_number=1, now=now))
    md5 = _request(
        message_imprint={"hash_algorithm": {"algorithm": "md5"}, "hashed_message": b"1" * 16}
    )
    assert _fail_info(respond(authority, md5.dump(), serial_number=1, now=now)) == {"bad_alg"}
    expired = authority.cert.not_valid_after_utc + timedelta(days=1)
    assert _fail_info(respond(authority, _request().dump(), serial_number=1, now=expired)) == {
        "time_not_available"
    }
    with pytest.raises(TsaError):
        respond(authority, _request().dump(), serial_number=0, now=now)


def test_authority_refuses_a_certificate_without_timestamping(platform: PlatformPki) -> None:
    with pytest.raises(TsaError, match="timeStamping"):
        TimeStampAuthority(cert=platform.tls_server.cert, key=platform.tls_server.key)
    with pytest.raises(TsaError, match="does not match"):
        TimeStampAuthority(cert=platform.tsa.cert, key=platform.seal_ca.key)
    assert "PRIVATE" not in repr(TimeStampAuthority(cert=platform.tsa.cert, key=platform.tsa.key))


def test_monotonic_serials_never_repeat_even_if_the_clock_goes_back() -> None:
    times = iter([datetime(2026, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)] * 3)
    serials = MonotonicSerials(clock=lambda: next(times))
    values = [serials() for _ in range(6)]
    assert values == sorted(values)
    assert len(set(values)) == 6


def _validation_context(platform: PlatformPki) -> ValidationContext:
    root = asn1_x509.Certificate.load(platform.root_cert.public_bytes(serialization.Encoding.DER))
    return ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")


async def _validate(platform: PlatformPki, token: Any, digest: bytes) -> dict[str, Any]:
    status: dict[str, Any] = await validate_tst_signed_data(
        token["content"], _validation_context(platform), lambda _algo: digest
    )
    return status


async def test_pyhanko_http_client_obtains_and_validates_a_token(
    platform: PlatformPki, authority: TimeStampAuthority
) -> None:
    serials = MonotonicSerials()
    seen: list[int] = []

    async def tsa_endpoint(request: web.Request) -> web.Response:
        assert request.content_type == "application/timestamp-query"
        reply = respond(
            authority, await request.read(), serial_number=serials(), now=datetime.now(UTC)
        )
        seen.append(len(reply))
        return web.Response(body=reply, content_type="application/timestamp-reply")

    app = web.Application()
    app.router.add_post("/v1/pki/tsa", tsa_endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        stamper = HTTPTimeStamper(f"http://127.0.0.1:{port}/v1/pki/tsa")
        digest = hashlib.sha256(b"sealed pdf bytes").digest()
        token = await stamper.async_timestamp(digest, "sha256")
        status = await _validate(platform, token, digest)
        assert status["intact"] is True
        assert status["valid"] is True
        assert status["trust_problem_indic"] is None
        assert seen  # the token really came over HTTP
        wrong = await _validate(platform, token, hashlib.sha256(b"other").digest())
        assert wrong["intact"] is False
        # asn1crypto 1.5 cannot parse a reply without a token (it makes the token mandatory),
        # so pyhanko surfaces our well-formed rejection as a ValueError; either way: no token.
        with pytest.raises((TimestampRequestError, ValueError)):
            await stamper.async_timestamp(hashlib.sha1(b"x").digest(), "sha1")  # noqa: S324
    finally:
        await runner.cleanup()


async def test_in_process_timestamper_for_pyhanko(
    platform: PlatformPki, authority: TimeStampAuthority
) -> None:
    stamper = InProcessTimeStamper(authority, MonotonicSerials())
    digest = hashlib.sha512(b"in process").digest()
    first = await stamper.async_timestamp(digest, "sha512")
    second = await stamper.async_timestamp(digest, "sha512")
    status = await _validate(platform, first, digest)
    assert status["valid"] is True
    assert status["trust_problem_indic"] is None

    def serial(token: Any) -> int:
        value: int = (
            token["content"]["encap_content_info"]["content"].parsed["serial_number"].native
        )
        return value

    assert serial(second) > serial(first)
    # An untrusted root makes the same token untrusted.
    _, other_root = pki.new_root_ca("Other", now=datetime.now(UTC))
    context = ValidationContext(
        trust_roots=[
            asn1_x509.Certificate.load(other_root.public_bytes(serialization.Encoding.DER))
        ],
        allow_fetching=False,
    )
    untrusted = await validate_tst_signed_data(first["content"], context, lambda _a: digest)
    assert untrusted["trust_problem_indic"] is not None


def _openssl_verifies_token(
    openssl: OpenSsl, platform: PlatformPki, token: Path, data: Path
) -> bool:
    result = openssl(
        "ts", "-verify", "-token_in", "-in", token, "-data", data, "-CAfile", platform.ca_pem_path
    )
    return result.returncode == 0 and "Verification: OK" in result.stdout


def test_the_platform_timestamper_stamps_our_own_data_for_openssl(
    tmp_path: Path, openssl: OpenSsl, platform: PlatformPki
) -> None:
    """What receipts and audit checkpoints put in their records: a bare token over the data,
    with certificates up to the root, that ``openssl ts -verify -data`` accepts."""
    data = tmp_path / "receipt.jws"
    data.write_bytes(b"eyJhbGciOiJFUzI1NiJ9.receipt.signature")
    token = tmp_path / "token.der"
    token.write_bytes(
        platform.timestamper.token(
            data.read_bytes(), serial_number=random_serial(), now=datetime.now(UTC)
        )
    )
    assert _openssl_verifies_token(openssl, platform, token, data)
    data.write_bytes(b"another receipt")
    assert not _openssl_verifies_token(openssl, platform, token, data)


def test_the_platform_timestamper_refuses_outside_the_tsa_validity(platform: PlatformPki) -> None:
    late = platform.tsa.cert.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(TsaResponseError, match="time_not_available"):
        platform.timestamper.token(b"checkpoint", serial_number=1, now=late)


def test_random_serials_stay_above_every_sequence_number() -> None:
    serials = {random_serial() for _ in range(100)}
    assert len(serials) == 100
    assert all(2**126 <= value < 2**127 for value in serials)


async def test_a_seal_timestamper_uses_the_serials_taken_for_it(platform: PlatformPki) -> None:
    stamper = platform.timestamper.for_pades([901, 902])
    digest = hashlib.sha256(b"seal").digest()
    tokens = [await stamper.async_timestamp(digest, "sha256") for _ in range(2)]
    serials = [
        t["content"]["encap_content_info"]["content"].parsed["serial_number"].native for t in tokens
    ]
    assert serials == [901, 902]
    assert (await _validate(platform, tokens[0], digest))["valid"] is True
    with pytest.raises(TsaError, match="no serial number left"):
        await stamper.async_timestamp(digest, "sha256")
