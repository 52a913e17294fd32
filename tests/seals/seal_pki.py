"""A throw-away PKI for the seal tests and the bench: root -> seal CA -> seal certs, a TSA."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from keys.pki import SEAL_POLICY_OID
from seals.signer import InMemorySealKey, SealSigner
from seals.verify import SealIssuer

CITY = "某市人民政府"


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, CITY),
    ]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def asn1(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))


def _issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool,
    path_len: int | None = None,
    key_usage: dict[str, bool],
    eku: list[x509.ObjectIdentifier] | None = None,
    policy: str | None = None,
    not_before: dt.datetime | None = None,
    rsa_key: bool = False,
) -> Issued:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if rsa_key:
        # pyhanko's in-process DummyTimeStamper signs with RSA only.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = not_before or (_now() - dt.timedelta(days=1))
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    ku = {
        "digital_signature": False,
        "content_commitment": False,
        "key_encipherment": False,
        "data_encipherment": False,
        "key_agreement": False,
        "key_cert_sign": False,
        "crl_sign": False,
        "encipher_only": False,
        "decipher_only": False,
    }
    ku.update(key_usage)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
        .add_extension(x509.KeyUsage(**ku), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if issuer is not None:
        # Without a distribution point pyhanko never consults a CRL for the certificate.
        dp_name = "root" if issuer.cert.subject == issuer.cert.issuer else "seal"
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[
                            x509.UniformResourceIdentifier(
                                f"http://sealhub.invalid/v1/pki/crl/{dp_name}"
                            )
                        ],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    if policy is not None:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy), None)]),
            critical=False,
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


@dataclass
class SealTestPki:
    """Root, seal CA, TSA, and the seals issued so far with their revocations."""

    root: Issued
    seal_ca: Issued
    tsa: Issued
    revoked: dict[int, dt.datetime] = field(default_factory=dict)

    @classmethod
    def create(cls, root_cn: str = "Sealhub Test Root") -> SealTestPki:
        root = _issue(
            _name(root_cn), None, ca=True, key_usage={"key_cert_sign": True, "crl_sign": True}
        )
        seal_ca = _issue(
            _name("Sealhub Seal CA"),
            root,
            ca=True,
            path_len=0,
            key_usage={"key_cert_sign": True, "crl_sign": True, "digital_signature": True},
        )
        tsa = _issue(
            _name("Sealhub TSA"),
            root,
            ca=False,
            key_usage={"digital_signature": True},
            eku=[ExtendedKeyUsageOID.TIME_STAMPING],
            rsa_key=True,
        )
        return cls(root, seal_ca, tsa)

    def issue_seal(
        self,
        department: str,
        purpose: str = "公文专用章",
        *,
        policy: str | None = SEAL_POLICY_OID,
        eku: list[x509.ObjectIdentifier] | None = None,
    ) -> Issued:
        """A seal certificate; ``policy=None`` or an ``eku`` make look-alikes that are not seals."""
        return _issue(
            _name(f"{department}{purpose}", ou=department),
            self.seal_ca,
            ca=False,
            key_usage={"digital_signature": True, "content_commitment": True},
            eku=eku,
            policy=policy,
        )

    @property
    def seal_issuer(self) -> SealIssuer:
        return SealIssuer(
            (self.seal_ca.cert.public_bytes(serialization.Encoding.DER),), SEAL_POLICY_OID
        )

    def signer(self, seal: Issued) -> SealSigner:
        return SealSigner(
            InMemorySealKey(seal.key),
            seal.cert.public_bytes(serialization.Encoding.DER),
            [self.seal_ca.cert.public_bytes(serialization.Encoding.DER)],
        )

    def revoke(self, seal: Issued, when: dt.datetime | None = None) -> None:
        self.revoked[seal.cert.serial_number] = when or _now()

    def _crl(self, ca: Issued, serials: dict[int, dt.datetime]) -> bytes:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=1))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                critical=False,
            )
        )
        for serial, when in serials.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def crls(self) -> list[bytes]:
        """DER CRLs of the seal CA and of the root (covering the seal CA and the TSA)."""
        return [self._crl(self.seal_ca, self.revoked), self._crl(self.root, {})]

    def root_der(self) -> bytes:
        return self.root.cert.public_bytes(serialization.Encoding.DER)

    def timestamper(self) -> DummyTimeStamper:
        tsa_key = asn1_keys.PrivateKeyInfo.load(
            self.tsa.key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return DummyTimeStamper(tsa_cert=self.tsa.asn1, tsa_key=tsa_key)

    def write_root(self, path: Path) -> Path:
        path.write_bytes(self.root.pem)
        return path
