"""Issue 16 over HTTPS: nobody seals as another department or changes a sealed document unnoticed.

A seal keeper appends a change to another department's sealed PDF (the modification corpus)
and asks the gateway to seal it again: refused with ``422 existing_seal_invalid``;
``POST /v1/verify`` names the change in the first seal's ``modifications`` and pdfsig
reports the seal as not covering the whole document. PDFs signed with the platform's other
keys (receipts, TSA) or a seal-CA certificate without the seal policy are no seals.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keys import keystore as keystore_module
from keys import pki
from keys.keystore import FileKeyStore, jwk_thumbprint
from keys.master import load_or_create_master_key
from seals.image import render_seal
from seals.pades import SealAppearance, seal_pdf
from seals.signer import InMemorySealKey, SealSigner
from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import SENDER, issue_seal, meta_for, send
from tests.exchange.test_exchange_flow import inbox_item, receipt_jws
from tests.seals import modification_corpus
from tests.seals.conftest import parse_pdfsig
from tests.seals.test_seal_modifications import EXPECTED_KIND

OTHER = "yl-jtj"


def verify(session: Session, pdf: bytes) -> dict[str, Any]:
    response = session.post("/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _number() -> str:
    return f"玉政办发〔2026〕{uuid.uuid4().int % 10**8}号"


def sealed_by(session: Session, pdf: bytes, recipient: str) -> bytes:
    sent = send(session, meta_for([recipient], _number()), pdf)
    assert sent.status_code == 201, sent.text
    content = session.get(f"/v1/documents/{sent.json()['id']}/content")
    assert content.status_code == 200
    return content.content


@pytest.fixture(scope="module")
def other_keeper(
    gateway: Gateway, admins: tuple[Session, Session], sender_seal: dict[str, object]
) -> Iterator[Session]:
    """The seal keeper of another department, who has a seal of its own."""
    issue_seal(admins, OTHER)
    session = login_as(gateway, OTHER, ["seal_keeper", "clerk"], name="交通局用印员")
    yield session
    session.close()


def test_painted_over_document_is_not_sealed_again(
    seal_keeper: Session,
    other_keeper: Session,
    sample_pdf: bytes,
    pdfsig: Callable[[bytes], str],
) -> None:
    """The attack of the issue: an unsigned signature widget paints new text over another
    department's sealed body, then the gateway is asked to seal the result."""
    sealed = sealed_by(seal_keeper, sample_pdf, OTHER)
    painted = modification_corpus.unsigned_signature_widget(sealed)

    report = verify(other_keeper, painted)
    assert report["valid"] is False
    first = report["seals"][0]
    assert first["intact"] and first["trusted"] and first["department"] == SENDER
    assert first["modifications_allowed"] is False
    assert first["modifications"] == "other"
    assert "only allowed after an approval signature" in first["modification_details"][0]

    [seal1] = [s for s in parse_pdfsig(pdfsig(painted)) if s.field == "Seal1"]
    assert seal1.valid and seal1.trusted and not seal1.total

    refused = send(other_keeper, meta_for([SENDER], _number()), painted)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "existing_seal_invalid"
    assert "Seal1" in problem["detail"]


@pytest.mark.parametrize("kind", sorted(modification_corpus.MODIFICATIONS))
def test_modification_corpus_over_https(
    kind: str,
    seal_keeper: Session,
    other_keeper: Session,
    pdfsig: Callable[[bytes], str],
) -> None:
    sealed = sealed_by(seal_keeper, modification_corpus.base_for(kind), OTHER)
    assert verify(other_keeper, sealed)["valid"] is True
    changed = modification_corpus.MODIFICATIONS[kind](sealed)

    report = verify(other_keeper, changed)
    assert report["valid"] is False
    [seal] = report["seals"]
    assert seal["intact"] and seal["trusted"] and seal["seal_certificate"]
    assert seal["modifications"] == EXPECTED_KIND[kind]
    assert seal["modification_details"][0].startswith("revision 2:")

    [seal1] = [s for s in parse_pdfsig(pdfsig(changed)) if s.field == "Seal1"]
    assert seal1.valid and seal1.trusted and not seal1.total

    refused = send(other_keeper, meta_for([SENDER], _number()), changed)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "existing_seal_invalid"


def test_soundly_sealed_document_takes_a_further_seal(
    seal_keeper: Session,
    other_keeper: Session,
    sample_pdf: bytes,
    pdfsig: Callable[[bytes], str],
) -> None:
    """Joint documents keep working: a further seal on a sound document is accepted."""
    sealed = sealed_by(seal_keeper, sample_pdf, OTHER)
    joint = sealed_by(other_keeper, sealed, SENDER)
    report = verify(seal_keeper, joint)
    assert report["valid"] is True, report["problems"]
    assert [s["department"] for s in report["seals"]] == [SENDER, OTHER]
    assert [s["modifications"] for s in report["seals"]] == ["further_seals", "none"]
    signatures = parse_pdfsig(pdfsig(joint))
    assert [s.valid and s.trusted for s in signatures] == [True, True]
    assert [s.total for s in signatures] == [False, True]


def test_document_whose_seal_was_revoked_is_not_sealed_again(
    gateway: Gateway,
    admins: tuple[Session, Session],
    other_keeper: Session,
    sample_pdf: bytes,
) -> None:
    """Revoked after its timestamp, the seal still verifies (it was good when applied), but
    nobody may build on it: the upload is refused before our seal goes on."""
    seal = issue_seal(admins, "yl-jyj")
    with login_as(gateway, "yl-jyj", ["seal_keeper"], name="教育局用印员") as keeper:
        sealed = sealed_by(keeper, sample_pdf, OTHER)
    first, second = admins
    asked = first.post(
        f"/v1/seals/{seal['id']}/revoke",
        json={"reason": "印章密钥疑似泄露", "reason_code": "key_compromise"},
    )
    assert asked.status_code == 201, asked.text
    assert second.post(f"/v1/seal-requests/{asked.json()['id']}/approve").status_code == 200
    report = verify(other_keeper, sealed)
    assert report["seals"][0]["revoked"] is True
    refused = send(other_keeper, meta_for(["yl-jyj"], _number()), sealed)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "existing_seal_invalid"
    assert "revoked" in refused.json()["detail"]


# --- Only seal certificates are seals ------------------------------------------------------


def _keystore(gateway: Gateway) -> FileKeyStore:
    master = load_or_create_master_key(gateway.data_dir / "secrets" / "master.key")
    return FileKeyStore(gateway.data_dir / "keystore", master)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _platform_cert(gateway: Gateway, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(
        (gateway.data_dir / "pki" / "certs" / f"{name}.pem").read_bytes()
    )


def _signed_with(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, chain: list[x509.Certificate]
) -> bytes:
    signer = SealSigner(InMemorySealKey(key), _der(cert), [_der(c) for c in chain])
    document = modification_corpus.seal_corpus.reportlab_pdf()
    return seal_pdf(document, signer, SealAppearance(render_seal("玉林市人民政府办公室")))


def _not_a_seal(report: dict[str, Any], reason: str) -> None:
    assert report["valid"] is False
    [seal] = report["seals"]
    assert seal["intact"] and seal["trusted"]  # the signature and chain are fine ...
    assert seal["seal_certificate"] is False  # ... but it is no seal
    assert any(reason in p for p in seal["problems"]), seal["problems"]


def _receipt_certificate(gateway: Gateway, seal_keeper: Session) -> tuple[str, x509.Certificate]:
    """A real 签收 makes the gateway issue its receipt certificate; it comes back in x5c."""
    sent = send(seal_keeper, meta_for([OTHER], _number()), modification_corpus.form_pdf())
    assert sent.status_code == 201, sent.text
    document = sent.json()
    with login_as(gateway, OTHER, ["clerk"], name="交通局收文员") as clerk:
        item = inbox_item(clerk, document["id"])
        assert clerk.get(f"/v1/documents/{document['id']}/content").status_code == 200
        signed = clerk.post(
            f"/v1/deliveries/{item['id']}/receipt",
            json={"signature": receipt_jws(clerk, item["id"], document["sha256"])},
        )
        assert signed.status_code in (200, 201), signed.text
        countersigned = signed.json()["countersigned"]
    header = json.loads(base64.urlsafe_b64decode(countersigned.split(".")[0] + "=="))
    return header["kid"], x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))


def test_pdf_signed_with_the_receipt_key_is_not_a_seal(
    gateway: Gateway, seal_keeper: Session
) -> None:
    kid, cert = _receipt_certificate(gateway, seal_keeper)
    assert pki.has_purpose(cert, pki.RECEIPT_SIGNING_EKU)
    key = _keystore(gateway).get_private(keystore_module.RECEIPT, kid)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    doc = _signed_with(key, cert, [_platform_cert(gateway, "seal-ca")])
    _not_a_seal(verify(seal_keeper, doc), "its key is for another purpose")


def _old_style_certificate(
    gateway: Gateway, public_key: ec.EllipticCurvePublicKey
) -> x509.Certificate:
    """What receipt certificates of older versions were: seal CA, nonRepudiation, no
    extended key usage, no policy."""
    seal_ca_cert = _platform_cert(gateway, "seal-ca")
    seal_ca_key = _keystore(gateway).get_private(
        "pki:seal-ca", jwk_thumbprint(seal_ca_cert.public_key())
    )
    assert isinstance(seal_ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, pki.ORGANIZATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, "sealhub receipt countersignature"),
                ]
            )
        )
        .issuer_name(seal_ca_cert.subject)
        .public_key(public_key)
        .serial_number(pki.new_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(seal_ca_key.public_key()),
            critical=False,
        )
        .sign(seal_ca_key, hashes.SHA256())
    )


def test_seal_ca_certificate_without_the_seal_policy_is_not_a_seal(
    gateway: Gateway, seal_keeper: Session
) -> None:
    """Issued by the platform's seal CA like a seal, but not under the seal policy and not
    in the seals table (an old receipt certificate, say): no seal."""
    key = ec.generate_private_key(ec.SECP256R1())
    old_style = _old_style_certificate(gateway, key.public_key())
    doc = _signed_with(key, old_style, [_platform_cert(gateway, "seal-ca")])
    _not_a_seal(verify(seal_keeper, doc), "no seal certificate policy")


def test_receipt_certificate_from_an_older_version_is_replaced(
    gateway: Gateway, seal_keeper: Session
) -> None:
    """Upgrade: a stored receipt certificate without the receipt purpose is reissued for the
    same key at the next countersignature, and a PDF signed under the old one is no seal."""
    kid, current = _receipt_certificate(gateway, seal_keeper)
    public = current.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    old = _old_style_certificate(gateway, public)
    path = gateway.data_dir / "pki" / f"receipt-{kid}.pem"
    path.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    key = _keystore(gateway).get_private(keystore_module.RECEIPT, kid)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    doc = _signed_with(key, old, [_platform_cert(gateway, "seal-ca")])
    _not_a_seal(verify(seal_keeper, doc), "no seal certificate policy")

    kid_again, renewed = _receipt_certificate(gateway, seal_keeper)
    assert kid_again == kid and renewed.public_key() == public
    assert renewed.serial_number != old.serial_number
    assert pki.has_purpose(renewed, pki.RECEIPT_SIGNING_EKU)
    assert x509.load_pem_x509_certificate(path.read_bytes()) == renewed


def test_pdf_signed_with_the_tsa_key_is_not_a_seal(gateway: Gateway, seal_keeper: Session) -> None:
    cert = _platform_cert(gateway, "tsa")
    key = _keystore(gateway).get_private("tsa", jwk_thumbprint(cert.public_key()))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    report = verify(seal_keeper, _signed_with(key, cert, []))
    assert report["valid"] is False
    [seal] = report["seals"]
    assert seal["seal_certificate"] is False
    assert any("not issued by the seal CA" in p or "another purpose" in p for p in seal["problems"])
