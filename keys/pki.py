"""Certificates of the platform PKI, built as pure functions (no I/O, the clock is a parameter).

Hierarchy: one root CA (path length 1) certifies only the issuing CAs (path length 0: the seal CA
and the TLS CA) and the TSA certificate. Everything is ECDSA P-256 with SHA-256 so every PDF
reader, browser and ``openssl`` accepts it. Each certificate below the root names the CRL of the
CA that issued it (``{public_url}/v1/pki/crl/{ca-name}``), so a verifier knows where to look.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys.codes import Code, CodedError
from keys.tsa import SEALHUB_OID_ARC

ORGANIZATION = "sealhub"
ROOT_CA_NAME = "root"
SEAL_CA_NAME = "seal-ca"
TLS_CA_NAME = "tls-ca"

ROOT_VALIDITY_DAYS = 20 * 365
ISSUING_CA_VALIDITY_DAYS = 10 * 365
TSA_VALIDITY_DAYS = 10 * 365
TLS_SERVER_VALIDITY_DAYS = 365
SEAL_VALIDITY_DAYS = 3 * 365

# What a certificate is for, under sealhub's UUID arc (see keys.tsa). Verification counts a
# certificate as a seal only with the seal policy; the receipt key's certificate names its
# own purpose so no validator mistakes it for a document signer.
SEAL_POLICY_OID = SEALHUB_OID_ARC + ".2.1"  # sealhub department seal certificate policy, v1
RECEIPT_SIGNING_EKU = x509.ObjectIdentifier(SEALHUB_OID_ARC + ".3.1")  # receipt countersigning

# Certificates start a little in the past so a peer whose clock lags still accepts them.
BACKDATE = timedelta(minutes=5)
_SERIAL_BITS = 128


class PkiError(CodedError):
    """A certificate cannot be built from the given inputs."""

    code = Code.PKI_ERROR


def crl_url(public_url: str, ca_name: str) -> str:
    """Where the CRL of *ca_name* is served; certificates embed it."""
    return f"{public_url.rstrip('/')}/v1/pki/crl/{ca_name}"


def new_serial_number() -> int:
    """A random positive 128-bit serial: unpredictable (collision attacks) and at most 20 octets."""
    while True:
        serial = secrets.randbits(_SERIAL_BITS)
        if serial:
            return serial


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, *, organization: str = ORGANIZATION) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _check_common_name(common_name: str) -> None:
    if not common_name or len(common_name) > 64:
        raise PkiError("a common name must have 1 to 64 characters")


def _validity(
    now: datetime, days: int, issuer_cert: x509.Certificate | None
) -> tuple[datetime, datetime]:
    """Never let a child outlive its issuer: the chain would stop validating before the child."""
    if now.tzinfo is None:
        raise PkiError("now must be timezone-aware")
    if days <= 0:
        raise PkiError("validity must be at least one day")
    not_before = now - BACKDATE
    not_after = now + timedelta(days=days)
    if issuer_cert is not None:
        if now >= issuer_cert.not_valid_after_utc:
            raise PkiError("the issuing certificate has expired")
        not_after = min(not_after, issuer_cert.not_valid_after_utc)
    return not_before, not_after


def _crl_distribution_points(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_identifier(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _builder(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_cert: x509.Certificate,
    *,
    crl: str | None,
    now: datetime,
    days: int,
) -> x509.CertificateBuilder:
    """The parts every certificate below the root shares."""
    not_before, not_after = _validity(now, days, issuer_cert)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(new_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_identifier(issuer_cert), critical=False)
    )
    if crl is not None:
        builder = builder.add_extension(_crl_distribution_points(crl), critical=False)
    return builder


def _require_ca(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    """Refuse to sign with a key that does not match the issuing certificate or is not a CA."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise PkiError("the issuing certificate is not a CA") from None
    if not constraints.ca:
        raise PkiError("the issuing certificate is not a CA")
    if cert.public_key() != key.public_key():
        raise PkiError("the issuing key does not match the issuing certificate")


def _require_p256(public_key: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise PkiError("only ECDSA P-256 keys are certified")
    return public_key


def new_root_ca(
    common_name: str,
    *,
    now: datetime,
    validity_days: int = ROOT_VALIDITY_DAYS,
    organization: str = ORGANIZATION,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Self-signed root; path length 1 because it certifies issuing CAs and nothing deeper."""
    _check_common_name(common_name)
    key = new_private_key()
    name = _name(common_name, organization=organization)
    not_before, not_after = _validity(now, validity_days, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(new_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_ca(
    parent_key: ec.EllipticCurvePrivateKey,
    parent_cert: x509.Certificate,
    common_name: str,
    *,
    crl_url: str | None,
    now: datetime,
    validity_days: int = ISSUING_CA_VALIDITY_DAYS,
    organization: str = ORGANIZATION,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """An issuing CA (path length 0): it certifies end entities only."""
    _check_common_name(common_name)
    _require_ca(parent_cert, parent_key)
    parent_constraints = parent_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    if parent_constraints.value.path_length == 0:
        raise PkiError("the parent CA may not certify further CAs (path length 0)")
    key = new_private_key()
    cert = (
        _builder(
            _name(common_name, organization=organization),
            key.public_key(),
            parent_cert,
            crl=crl_url,
            now=now,
            days=validity_days,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(parent_key, hashes.SHA256())
    )
    return key, cert


def _general_name(hostname: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    if not hostname or any(ch.isspace() for ch in hostname) or "/" in hostname:
        raise PkiError(f"not a host name: {hostname!r}")
    return x509.DNSName(hostname.lower())


def issue_tls_server(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hostnames: list[str],
    *,
    crl_url: str | None,
    now: datetime,
    validity_days: int = TLS_SERVER_VALIDITY_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A TLS server certificate; IP literals become IP SANs, the rest DNS SANs."""
    if not hostnames:
        raise PkiError("a TLS certificate needs at least one host name")
    _require_ca(ca_cert, ca_key)
    names = list(dict.fromkeys(_general_name(h) for h in hostnames))
    key = new_private_key()
    cert = (
        _builder(
            _name(hostnames[0][:64]),
            key.public_key(),
            ca_cert,
            crl=crl_url,
            now=now,
            days=validity_days,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def seal_subject(
    *, department_name_zh: str, department_code: str, seal_id: str, seal_name: str | None = None
) -> x509.Name:
    """O = the department (UTF8String), OU = its code, CN = the seal, serialNumber = seal id."""
    common_name = department_name_zh + (seal_name or "")
    for value, what in ((department_name_zh, "department name"), (common_name, "seal name")):
        if not value or len(value) > 64:
            raise PkiError(f"the {what} must have 1 to 64 characters")
    if not department_code or len(department_code) > 64:
        raise PkiError("the department code must have 1 to 64 characters")
    if not seal_id or len(seal_id) > 64:
        raise PkiError("the seal id must have 1 to 64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, department_name_zh),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, department_code),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, seal_id),
        ]
    )


def issue_seal_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    *,
    department_name_zh: str,
    department_code: str,
    seal_id: str,
    crl_url: str | None,
    now: datetime,
    validity_days: int = SEAL_VALIDITY_DAYS,
    seal_name: str | None = None,
) -> x509.Certificate:
    """A department seal: digitalSignature + nonRepudiation, which PAdES validators require,
    and the seal certificate policy, which is what makes it a seal for our verification.

    No extended key usage: several PDF validators refuse unknown purposes, none refuse absence.
    """
    _require_ca(ca_cert, ca_key)
    subject = seal_subject(
        department_name_zh=department_name_zh,
        department_code=department_code,
        seal_id=seal_id,
        seal_name=seal_name,
    )
    return (
        _builder(
            subject,
            _require_p256(public_key),
            ca_cert,
            crl=crl_url,
            now=now,
            days=validity_days,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(SEAL_POLICY_OID), None)]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def issue_tsa_certificate(
    root_key: ec.EllipticCurvePrivateKey,
    root_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    *,
    crl_url: str | None,
    now: datetime,
    validity_days: int = TSA_VALIDITY_DAYS,
    common_name: str = "sealhub Time-Stamping Authority",
) -> x509.Certificate:
    """RFC 3161 section 2.3: the only extended key usage is id-kp-timeStamping, critical."""
    _check_common_name(common_name)
    _require_ca(root_cert, root_key)
    return (
        _builder(
            _name(common_name),
            _require_p256(public_key),
            root_cert,
            crl=crl_url,
            now=now,
            days=validity_days,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )


def issue_gateway_signing_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    *,
    common_name: str,
    crl_url: str | None,
    now: datetime,
    validity_days: int = TSA_VALIDITY_DAYS,
) -> x509.Certificate:
    """A certificate for a gateway signing key (the receipt countersignature's ``x5c``).

    Its only key purpose is receipt countersigning (critical), and it has no seal policy:
    a document signed with it is never a seal, in our verification or in pdfsig's.
    """
    _check_common_name(common_name)
    _require_ca(ca_cert, ca_key)
    return (
        _builder(
            _name(common_name),
            _require_p256(public_key),
            ca_cert,
            crl=crl_url,
            now=now,
            days=validity_days,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([RECEIPT_SIGNING_EKU]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )


def has_purpose(cert: x509.Certificate, purpose: x509.ObjectIdentifier) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return purpose in usage


def subject_alternative_names(cert: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses a TLS certificate covers, as strings."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names: set[str] = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names


def normalize_hostnames(hostnames: list[str]) -> set[str]:
    """The SAN strings :func:`issue_tls_server` would produce for *hostnames*."""
    return {str(_general_name(name).value) for name in hostnames}


def crl_distribution_url(cert: x509.Certificate) -> str | None:
    """The first CRL URL a certificate names, if any."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    for point in points:
        for name in point.full_name or []:
            if isinstance(name, x509.UniformResourceIdentifier):
                return name.value
    return None
