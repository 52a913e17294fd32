"""CRLs from keys.crl, parsed by openssl and used by openssl verify -crl_check."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys import crl, pki

from .conftest import OpenSsl


def _ca(now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, x509.Certificate]:
    root_key, root = pki.new_root_ca("CRL Test Root", now=now)
    ca_key, ca = pki.issue_ca(root_key, root, "CRL Test Seal CA", crl_url=None, now=now)
    return ca_key, ca, root


def test_openssl_lists_revoked_serial_with_reason(tmp_path: Path, openssl: OpenSsl) -> None:
    now = datetime.now(UTC)
    ca_key, ca, _ = _ca(now)
    revoked_serial = pki.new_serial_number()
    other_serial = pki.new_serial_number()
    der = crl.build_crl(
        ca_key,
        ca,
        [
            crl.RevokedCertificate(
                revoked_serial, now - timedelta(hours=1), crl.parse_reason("key_compromise")
            ),
            crl.RevokedCertificate(other_serial, now - timedelta(hours=2)),
        ],
        crl_number=crl.next_crl_number(now),
        now=now,
    )
    path = tmp_path / "seal-ca.crl"
    path.write_bytes(der)
    result = openssl("crl", "-inform", "DER", "-in", path, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert re.search(rf"Serial Number: 0*{revoked_serial:X}\n", text)
    assert "Key Compromise" in text
    assert text.count("Serial Number:") == 2
    assert "CRL Test Seal CA" in text
    assert "X509v3 CRL Number" in text
    assert "Next Update" in text


def test_openssl_verify_refuses_a_revoked_seal(tmp_path: Path, openssl: OpenSsl) -> None:
    now = datetime.now(UTC)
    ca_key, ca, root = _ca(now)
    good = pki.issue_seal_certificate(
        ca_key,
        ca,
        pki.new_private_key().public_key(),
        department_name_zh="玉林市教育局",
        department_code="450900-030",
        seal_id="good",
        crl_url=None,
        now=now,
    )
    bad = pki.issue_seal_certificate(
        ca_key,
        ca,
        pki.new_private_key().public_key(),
        department_name_zh="玉林市教育局",
        department_code="450900-030",
        seal_id="bad",
        crl_url=None,
        now=now,
    )
    der = crl.build_crl(
        ca_key,
        ca,
        [crl.RevokedCertificate(bad.serial_number, now, x509.ReasonFlags.superseded)],
        crl_number=1,
        now=now,
    )
    crl_pem = tmp_path / "crl.pem"
    crl_pem.write_bytes(crl.load_crl(der).public_bytes(serialization.Encoding.PEM))
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, cert, expect_ok in (("good.pem", good, True), ("bad.pem", bad, False)):
        leaf = tmp_path / name
        leaf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        result = openssl(
            "verify",
            "-crl_check",
            "-CRLfile",
            crl_pem,
            "-CAfile",
            ca_pem,
            "-untrusted",
            chain,
            leaf,
        )
        assert (result.returncode == 0) is expect_ok, result.stdout + result.stderr
        if not expect_ok:
            assert "certificate revoked" in result.stdout + result.stderr


def test_crl_fields_numbers_and_refresh(now: datetime) -> None:
    ca_key, ca, _ = _ca(now)
    der = crl.build_crl(ca_key, ca, [], crl_number=41, now=now)
    parsed = crl.load_crl(der)
    assert crl.crl_number_of(parsed) == 41
    assert parsed.last_update_utc == now
    assert parsed.next_update_utc == now + timedelta(days=7)
    assert parsed.is_signature_valid(ca_key.public_key())
    assert parsed.issuer == ca.subject
    assert not crl.needs_refresh(parsed, now + timedelta(days=4))
    assert crl.needs_refresh(parsed, now + timedelta(days=5, seconds=1))
    first = crl.next_crl_number(now)
    assert crl.next_crl_number(now, previous=first) == first + 1
    assert crl.next_crl_number(now - timedelta(hours=1), previous=first) == first + 1
    assert crl.next_crl_number(now + timedelta(seconds=1), previous=first) > first


def test_invalid_inputs_are_refused(now: datetime) -> None:
    ca_key, ca, root = _ca(now)
    with pytest.raises(crl.CrlError):
        crl.parse_reason("because")
    with pytest.raises(crl.CrlError):
        crl.build_crl(ca_key, ca, [], crl_number=0, now=now)
    with pytest.raises(crl.CrlError):
        crl.build_crl(ca_key, root, [], crl_number=1, now=now)  # key of another CA
    with pytest.raises(crl.CrlError):
        crl.build_crl(
            ca_key,
            ca,
            [crl.RevokedCertificate(5, now, x509.ReasonFlags.remove_from_crl)],
            crl_number=1,
            now=now,
        )
    with pytest.raises(crl.CrlError):
        crl.load_crl(b"not a crl")


def test_duplicate_serials_appear_once_and_unspecified_has_no_reason(now: datetime) -> None:
    ca_key, ca, _ = _ca(now)
    entries = [crl.RevokedCertificate(7, now), crl.RevokedCertificate(7, now)]
    parsed = crl.load_crl(crl.build_crl(ca_key, ca, entries, crl_number=2, now=now))
    assert len(list(parsed)) == 1
    entry = parsed.get_revoked_certificate_by_serial_number(7)
    assert entry is not None
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.CRLReason)
