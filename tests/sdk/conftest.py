"""Fixtures for the SDK tests: a throw-away platform PKI made with the server's own keys.pki
and keys.tsa (the SDK never imports them; the tests use them as the reference producer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keys import pki, tsa


@dataclass(frozen=True)
class SdkPlatform:
    """A root CA, an issuing CA, a TSA and a receipt-countersigning certificate."""

    root_key: ec.EllipticCurvePrivateKey = field(repr=False)
    root: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    ca: x509.Certificate
    authority: tsa.TimeStampAuthority
    receipt_key: ec.EllipticCurvePrivateKey = field(repr=False)
    receipt_cert: x509.Certificate

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(Encoding.PEM)


def make_platform(name: str = "sealhub SDK test root") -> SdkPlatform:
    now = datetime.now(UTC) - timedelta(minutes=5)
    root_key, root = pki.new_root_ca(name, now=now)
    ca_key, ca = pki.issue_ca(root_key, root, "sealhub SDK test seal CA", crl_url=None, now=now)
    tsa_key = pki.new_private_key()
    tsa_cert = pki.issue_tsa_certificate(
        root_key, root, tsa_key.public_key(), crl_url=None, now=now
    )
    receipt_key = pki.new_private_key()
    receipt_cert = pki.issue_gateway_signing_certificate(
        ca_key, ca, receipt_key.public_key(), common_name="sealhub receipts", crl_url=None, now=now
    )
    return SdkPlatform(
        root_key,
        root,
        ca_key,
        ca,
        tsa.TimeStampAuthority(tsa_cert, tsa_key),
        receipt_key,
        receipt_cert,
    )


@pytest.fixture(scope="session")
def platform() -> SdkPlatform:
    return make_platform()


@pytest.fixture(scope="session")
def other_platform() -> SdkPlatform:
    return make_platform("another root")


def simple_pdf(pages: int = 1, title: str = "Notice on safety inspections") -> bytes:
    """A small real PDF (reportlab, standard font) to send through the gateway."""
    import io

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(title)
    for page in range(pages):
        pdf.setFont("Helvetica", 14)
        pdf.drawString(72, A4[1] - 100, f"{title} - page {page + 1}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()
