"""Certificate revocation lists, built as pure functions (DER out, the clock is a parameter).

The revoked entries come from the caller (the seals table, the TLS certificate list); this module
only signs them. CRL numbers must grow with every CRL a CA issues (RFC 5280 section 5.2.3); with
several gateway processes and no shared counter, :func:`next_crl_number` derives the number from
the clock and never goes below the previous one plus one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys.codes import Code, CodedError

DEFAULT_NEXT_UPDATE = timedelta(days=7)
# Republish when less than this remains before nextUpdate, so relying parties never see a
# stale CRL while a new one is being produced.
DEFAULT_REFRESH_MARGIN = timedelta(days=2)
_MAX_CRL_NUMBER = 2**159  # 20 octets, RFC 5280 section 5.2.3

# API names for revocation reasons (snake_case, as used in JSON) and their RFC 5280 codes.
REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "ca_compromise": x509.ReasonFlags.ca_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "certificate_hold": x509.ReasonFlags.certificate_hold,
    "privilege_withdrawn": x509.ReasonFlags.privilege_withdrawn,
}
_ALLOWED_REASONS = frozenset(REASONS.values())


class CrlError(CodedError):
    """A CRL cannot be built or read from the given inputs."""

    code = Code.CRL_ERROR


def parse_reason(name: str) -> x509.ReasonFlags:
    """The RFC 5280 reason for an API reason name (``key_compromise``, ...)."""
    try:
        return REASONS[name]
    except KeyError:
        raise CrlError(f"unknown revocation reason {name!r}") from None


@dataclass(frozen=True)
class RevokedCertificate:
    """One revocation: the serial, when it took effect, and why."""

    serial_number: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified
    invalid_since: datetime | None = None  # key compromise: when the key became unsafe


def next_crl_number(now: datetime, previous: int | None = None) -> int:
    """Milliseconds since the epoch, or previous + 1 when the clock has not moved past it."""
    candidate = int(now.timestamp() * 1000)
    if previous is not None and candidate <= previous:
        candidate = previous + 1
    return candidate


def _entry(item: RevokedCertificate) -> x509.RevokedCertificate:
    if item.serial_number <= 0:
        raise CrlError("serial numbers are positive")
    if item.revoked_at.tzinfo is None:
        raise CrlError("revocation times must be timezone-aware")
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(item.serial_number)
        .revocation_date(item.revoked_at)
    )
    # RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent rather than present.
    if item.reason is not x509.ReasonFlags.unspecified:
        if item.reason not in _ALLOWED_REASONS:
            raise CrlError(f"reason {item.reason.value} cannot be used here")
        builder = builder.add_extension(x509.CRLReason(item.reason), critical=False)
    if item.invalid_since is not None:
        builder = builder.add_extension(x509.InvalidityDate(item.invalid_since), critical=False)
    return builder.build()


def build_crl(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    revoked: Iterable[RevokedCertificate],
    *,
    crl_number: int,
    now: datetime,
    next_update_in: timedelta = DEFAULT_NEXT_UPDATE,
) -> bytes:
    """A DER CRL signed by *ca_key*, valid from *now* for *next_update_in*."""
    if now.tzinfo is None:
        raise CrlError("now must be timezone-aware")
    if not 0 < crl_number < _MAX_CRL_NUMBER:
        raise CrlError("the CRL number must be positive and at most 20 octets")
    if next_update_in <= timedelta(0):
        raise CrlError("nextUpdate must be after thisUpdate")
    if ca_cert.public_key() != ca_key.public_key():
        raise CrlError("the CA key does not match the CA certificate")
    usage = ca_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    if not usage.crl_sign:
        raise CrlError("the CA certificate may not sign CRLs")
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + next_update_in)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    seen: set[int] = set()
    for item in sorted(revoked, key=lambda r: r.serial_number):
        if item.serial_number in seen:
            continue
        seen.add(item.serial_number)
        builder = builder.add_revoked_certificate(_entry(item))
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def load_crl(der: bytes) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(der)
    except ValueError:
        raise CrlError("not a DER CRL") from None


def crl_number_of(crl: x509.CertificateRevocationList) -> int:
    value = crl.extensions.get_extension_for_class(x509.CRLNumber).value
    return value.crl_number


def needs_refresh(
    crl: x509.CertificateRevocationList,
    now: datetime,
    *,
    margin: timedelta = DEFAULT_REFRESH_MARGIN,
) -> bool:
    """True when the CRL expires within *margin* (or has no nextUpdate at all)."""
    next_update = crl.next_update_utc
    return next_update is None or next_update - now <= margin
