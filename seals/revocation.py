"""What a CRL says beyond "revoked": the invalidity date of a compromised key (RFC 5280 5.3.2).

pyhanko's validator reports the revocation date only; a key known to be compromised since an
earlier moment makes every seal timestamped after that moment worthless, so verification
takes the earlier of the two. Pure: the CRLs are given, nothing is fetched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509


def invalid_since(
    cert: asn1_x509.Certificate, crls: Sequence[asn1_crl.CertificateList]
) -> dt.datetime | None:
    """The earliest invalidity date any of *crls* (from the certificate's issuer) gives it."""
    found: dt.datetime | None = None
    for certificate_list in crls:
        if certificate_list.issuer != cert.issuer:
            continue
        for entry in certificate_list["tbs_cert_list"]["revoked_certificates"]:
            if entry["user_certificate"].native != cert.serial_number:
                continue
            value = entry.invalidity_date_value
            if value is not None and (found is None or value.native < found):
                found = value.native
    return found


def effective_revocation(
    revoked_at: dt.datetime, cert_invalid_since: dt.datetime | None
) -> dt.datetime:
    """From when seals with this certificate count as revoked."""
    if cert_invalid_since is None:
        return revoked_at
    return min(revoked_at, cert_invalid_since)
