"""Certificates built by keys.pki: structure checked in Python, chains checked by openssl."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys import pki

PUBLIC_URL = "https://gateway.test:8443"


def _ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def _hierarchy(now: datetime) -> dict[str, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]:
    root = pki.new_root_ca("Test Root", now=now)
    root_crl = pki.crl_url(PUBLIC_URL, pki.ROOT_CA_NAME)
    seal_ca = pki.issue_ca(*root, "Test Seal CA", crl_url=root_crl, now=now)
    tls_ca = pki.issue_ca(*root, "Test TLS CA", crl_url=root_crl, now=now)
    return {"root": root, "seal": seal_ca, "tls": tls_ca}


def _write(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def test_root_and_issuing_ca_constraints(now: datetime) -> None:
    h = _hierarchy(now)
    root = h["root"][1]
    seal_ca = h["seal"][1]
    root_bc = _ext(root, x509.BasicConstraints)
    assert root_bc.critical
    assert root_bc.value == x509.BasicConstraints(ca=True, path_length=1)
    ca_bc = _ext(seal_ca, x509.BasicConstraints).value
    assert ca_bc == x509.BasicConstraints(ca=True, path_length=0)
    for cert in (root, seal_ca):
        usage = _ext(cert, x509.KeyUsage).value
        assert isinstance(usage, x509.KeyUsage)
        assert usage.key_cert_sign
        assert usage.crl_sign
        assert not usage.digital_signature
    aki = _ext(seal_ca, x509.AuthorityKeyIdentifier).value
    ski = _ext(root, x509.SubjectKeyIdentifier).value
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.digest
    assert pki.crl_distribution_url(seal_ca) == f"{PUBLIC_URL}/v1/pki/crl/root"
    assert pki.crl_distribution_url(root) is None
    assert root.not_valid_after_utc - now >= timedelta(days=19 * 365)


def test_serial_numbers_are_random_positive_and_fit_128_bits(now: datetime) -> None:
    serials = {pki.new_serial_number() for _ in range(200)}
    assert len(serials) == 200
    assert all(0 < s < 2**128 for s in serials)
    assert max(serials).bit_length() > 120  # random, not a counter


def test_child_never_outlives_its_issuer(now: datetime) -> None:
    root_key, root = pki.new_root_ca("Short Root", now=now, validity_days=30)
    _, ca = pki.issue_ca(root_key, root, "Child", crl_url=None, now=now, validity_days=3650)
    assert ca.not_valid_after_utc == root.not_valid_after_utc


def test_signing_with_a_foreign_key_or_a_leaf_is_refused(now: datetime) -> None:
    h = _hierarchy(now)
    with pytest.raises(pki.PkiError):
        pki.issue_ca(h["seal"][0], h["root"][1], "Mismatch", crl_url=None, now=now)
    leaf_key, leaf = pki.issue_tls_server(*h["tls"], ["localhost"], crl_url=None, now=now)
    with pytest.raises(pki.PkiError):
        pki.issue_tls_server(leaf_key, leaf, ["x.test"], crl_url=None, now=now)
    with pytest.raises(pki.PkiError, match="path length 0"):
        pki.issue_ca(*h["seal"], "Too deep", crl_url=None, now=now)
    with pytest.raises(pki.PkiError):
        pki.new_root_ca("naive clock", now=now.replace(tzinfo=None))


def test_tls_server_certificate_names_and_usage(now: datetime) -> None:
    h = _hierarchy(now)
    _, cert = pki.issue_tls_server(
        *h["tls"],
        ["Gateway.Example.gov.cn", "127.0.0.1", "::1", "localhost"],
        crl_url=pki.crl_url(PUBLIC_URL, pki.TLS_CA_NAME),
        now=now,
    )
    assert pki.subject_alternative_names(cert) == {
        "gateway.example.gov.cn",
        "127.0.0.1",
        "::1",
        "localhost",
    }
    eku = _ext(cert, x509.ExtendedKeyUsage).value
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _ext(cert, x509.BasicConstraints).value == x509.BasicConstraints(
        ca=False, path_length=None
    )
    assert pki.crl_distribution_url(cert) == f"{PUBLIC_URL}/v1/pki/crl/tls-ca"
    assert timedelta(days=364) < cert.not_valid_after_utc - now <= timedelta(days=366)
    with pytest.raises(pki.PkiError):
        pki.issue_tls_server(*h["tls"], ["bad host"], crl_url=None, now=now)


def test_seal_certificate_subject_is_chinese_utf8(now: datetime) -> None:
    h = _hierarchy(now)
    seal_key = pki.new_private_key()
    cert = pki.issue_seal_certificate(
        *h["seal"],
        seal_key.public_key(),
        department_name_zh="玉林市人民政府办公室",
        department_code="450900-001",
        seal_id="8c5e2f0a-seal",
        seal_name="公文专用章",
        crl_url=pki.crl_url(PUBLIC_URL, pki.SEAL_CA_NAME),
        now=now,
        validity_days=730,
    )
    subject = cert.subject
    assert (
        subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "玉林市人民政府办公室"
    )
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "玉林市人民政府办公室公文专用章"
    )
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "450900-001"
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "8c5e2f0a-seal"
    # UTF8String (tag 0x0c) holding the name, as GB/T seal profiles expect.
    encoded = "玉林市人民政府办公室".encode()
    assert bytes([0x0C, len(encoded)]) + encoded in subject.public_bytes()
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert isinstance(usage.value, x509.KeyUsage)
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert cert.public_key() == seal_key.public_key()
    assert pki.crl_distribution_url(cert) == f"{PUBLIC_URL}/v1/pki/crl/seal-ca"
    policies = _ext(cert, x509.CertificatePolicies).value
    assert isinstance(policies, x509.CertificatePolicies)
    assert [p.policy_identifier.dotted_string for p in policies] == [pki.SEAL_POLICY_OID]
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.ExtendedKeyUsage)


def test_receipt_certificate_has_its_own_purpose_and_no_seal_policy(now: datetime) -> None:
    h = _hierarchy(now)
    cert = pki.issue_gateway_signing_certificate(
        *h["seal"],
        pki.new_private_key().public_key(),
        common_name="sealhub receipt countersignature",
        crl_url=None,
        now=now,
    )
    usage = _ext(cert, x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [pki.RECEIPT_SIGNING_EKU]
    assert pki.has_purpose(cert, pki.RECEIPT_SIGNING_EKU)
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.CertificatePolicies)
    with pytest.raises(pki.PkiError):
        pki.issue_seal_certificate(
            *h["seal"],
            ec.generate_private_key(ec.SECP384R1()).public_key(),
            department_name_zh="x",
            department_code="x",
            seal_id="x",
            crl_url=None,
            now=now,
        )


def test_tsa_certificate_has_only_critical_timestamping_eku(now: datetime) -> None:
    h = _hierarchy(now)
    cert = pki.issue_tsa_certificate(
        *h["root"], pki.new_private_key().public_key(), crl_url=None, now=now
    )
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    usage = _ext(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage)
    assert usage.digital_signature
    assert usage.content_commitment


def test_openssl_accepts_every_chain(
    tmp_path: Path, openssl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    now = datetime.now(UTC)
    h = _hierarchy(now)
    tsa_cert = pki.issue_tsa_certificate(
        *h["root"], pki.new_private_key().public_key(), crl_url=None, now=now
    )
    _, server = pki.issue_tls_server(*h["tls"], ["localhost"], crl_url=None, now=now)
    seal = pki.issue_seal_certificate(
        *h["seal"],
        pki.new_private_key().public_key(),
        department_name_zh="玉林市财政局",
        department_code="450900-017",
        seal_id="seal-1",
        crl_url=None,
        now=now,
    )
    ca = _write(tmp_path / "ca.pem", h["root"][1])
    chain = _write(tmp_path / "chain.pem", h["seal"][1], h["tls"][1], tsa_cert)
    cases = [
        ("server.pem", server, "sslserver"),
        ("seal.pem", seal, "any"),
        ("tsa.pem", tsa_cert, "timestampsign"),
    ]
    for filename, cert, purpose in cases:
        leaf = _write(tmp_path / filename, cert)
        result = openssl("verify", "-purpose", purpose, "-CAfile", ca, "-untrusted", chain, leaf)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{leaf}: OK"
    # The same chain under a foreign root is refused.
    other_root = _write(tmp_path / "other.pem", pki.new_root_ca("Other", now=now)[1])
    result = openssl("verify", "-CAfile", other_root, "-untrusted", chain, tmp_path / "server.pem")
    assert result.returncode != 0
