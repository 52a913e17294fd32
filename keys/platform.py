"""The platform PKI on disk: created on first start, loaded afterwards (the I/O edge of keys.pki).

Layout under ``DATA_DIR/pki``::

    ca.pem              root certificate (what clients trust); written last, marks completion
    chain.pem           seal CA, TLS CA and TSA certificates (untrusted intermediates)
    certs/*.pem         each certificate alone; tls-server-chain.pem = server + TLS CA
    crl/root.crl        the root's CRL (DER), long-lived because the root key may be offline
    private/            scratch space for the TLS key handed to ``ssl`` (mode 0700)

Private keys live in the :class:`~keys.keystore.KeyStore` (``DATA_DIR/keystore`` by default),
under the purposes ``pki:root``, ``pki:seal-ca``, ``pki:tls-ca``, ``tsa`` and ``tls-server``; the
key of a certificate is found by its kid, the RFC 7638 thumbprint of the certificate's key.

Several gateway processes may start at once on one data directory: a file lock serialises the
first-start creation so they all end up with the same hierarchy.
"""

from __future__ import annotations

import fcntl
import functools
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys import crl, pki
from keys.clock import SYSTEM_CLOCK
from keys.codes import Code, CodedError
from keys.files import atomic_write
from keys.keystore import (
    FileKeyStore,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    jwk_thumbprint,
)
from keys.master import MasterKey
from keys.tsa import TimeStampAuthority, Timestamper

TLS_RENEW_BEFORE = timedelta(days=30)
# The root signs its CRL rarely (it only certifies three certificates) and may be offline, so
# its CRL is valid for a year; re-sign it with the exported key before then.
ROOT_CRL_VALIDITY = timedelta(days=365)
MIN_EXPORT_PASSPHRASE = 12
PUBLIC = 0o644  # certificates, chains and CRLs: anyone on the host may read them

ROOT_PURPOSE = "pki:root"
SEAL_CA_PURPOSE = "pki:seal-ca"
TLS_CA_PURPOSE = "pki:tls-ca"
TSA_PURPOSE = "tsa"
TLS_SERVER_PURPOSE = "tls-server"

_ROOT = "root"
_SEAL_CA = "seal-ca"
_TLS_CA = "tls-ca"
_TSA = "tsa"
_TLS_SERVER = "tls-server"
_PURPOSES = {
    _ROOT: ROOT_PURPOSE,
    _SEAL_CA: SEAL_CA_PURPOSE,
    _TLS_CA: TLS_CA_PURPOSE,
    _TSA: TSA_PURPOSE,
    _TLS_SERVER: TLS_SERVER_PURPOSE,
}


class PlatformPkiError(CodedError):
    """The PKI in the data directory is incomplete, inconsistent or does not open."""

    code = Code.PLATFORM_PKI_ERROR


@dataclass(frozen=True)
class CertifiedKey:
    """A private key with its certificate; ``repr`` shows the subject only."""

    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return f"CertifiedKey(name={self.name!r}, subject={self.cert.subject.rfc4514_string()!r})"


@dataclass(frozen=True, repr=False)
class PlatformPki:
    """What the gateway needs from the PKI; the root key is absent once exported."""

    pki_dir: Path
    public_url: str
    root_cert: x509.Certificate
    seal_ca: CertifiedKey
    tls_ca: CertifiedKey
    tsa: CertifiedKey
    tls_server: CertifiedKey
    keystore: KeyStore = field(repr=False)
    root_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"PlatformPki(pki_dir={str(self.pki_dir)!r}, root_key_present={self.has_root_key})"

    @property
    def has_root_key(self) -> bool:
        return self.root_key is not None

    @property
    def ca_pem_path(self) -> Path:
        return self.pki_dir / "ca.pem"

    @property
    def chain_pem_path(self) -> Path:
        return self.pki_dir / "chain.pem"

    @property
    def tls_cert_pem_path(self) -> Path:
        """Server certificate followed by the TLS CA (what a TLS server sends)."""
        return self.pki_dir / "certs" / "tls-server-chain.pem"

    @property
    def root_crl_path(self) -> Path:
        return self.pki_dir / "crl" / "root.crl"

    def cert_path(self, name: str) -> Path:
        """``root``, ``seal-ca``, ``tls-ca``, ``tsa`` or ``tls-server``."""
        return self.pki_dir / "certs" / f"{name}.pem"

    def crl_url(self, ca_name: str) -> str:
        return pki.crl_url(self.public_url, ca_name)

    @property
    def chain_certs(self) -> list[x509.Certificate]:
        return [self.seal_ca.cert, self.tls_ca.cert, self.tsa.cert]

    @functools.cached_property
    def timestamper(self) -> Timestamper:
        """The platform TSA, the one every token is stamped with; the root goes along with
        the TSA certificate, so a token verifies offline from ``ca.pem`` alone."""
        return Timestamper(
            TimeStampAuthority(self.tsa.cert, self.tsa.key, extra_certs=(self.root_cert,))
        )

    def issue_seal_certificate(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        department_name_zh: str,
        department_code: str,
        seal_id: str,
        now: datetime,
        validity_days: int = pki.SEAL_VALIDITY_DAYS,
        seal_name: str | None = None,
    ) -> x509.Certificate:
        """A seal certificate from the seal CA (never the root), naming the seal CA's CRL."""
        return pki.issue_seal_certificate(
            self.seal_ca.key,
            self.seal_ca.cert,
            public_key,
            department_name_zh=department_name_zh,
            department_code=department_code,
            seal_id=seal_id,
            crl_url=self.crl_url(pki.SEAL_CA_NAME),
            now=now,
            validity_days=validity_days,
            seal_name=seal_name,
        )

    def build_crl(
        self,
        ca_name: str,
        revoked: Iterable[crl.RevokedCertificate],
        *,
        now: datetime,
        previous_number: int | None = None,
    ) -> bytes:
        """A fresh DER CRL of ``seal-ca`` or ``tls-ca`` (the root's is :meth:`root_crl`)."""
        issuers = {pki.SEAL_CA_NAME: self.seal_ca, pki.TLS_CA_NAME: self.tls_ca}
        if ca_name not in issuers:
            raise PlatformPkiError(f"no online CA named {ca_name!r}")
        issuer = issuers[ca_name]
        return crl.build_crl(
            issuer.key,
            issuer.cert,
            revoked,
            crl_number=crl.next_crl_number(now, previous_number),
            now=now,
        )

    def root_crl(self) -> bytes:
        """The root's CRL as last signed (at set-up, on start while the key is here, at export)."""
        return self.root_crl_path.read_bytes()

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ server context.

        ``ssl`` reads keys only from files, so the key is written to a temporary file in
        ``private/`` encrypted under a random one-time passphrase (never a plaintext key on
        disk), loaded, and the file removed at once.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        passphrase = secrets.token_bytes(32)
        encrypted = self.tls_server.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        private_dir = self.pki_dir / "private"
        fd, tmp_name = tempfile.mkstemp(prefix=".tls-", suffix=".pem", dir=private_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(encrypted)
            context.load_cert_chain(self.tls_cert_pem_path, tmp_name, password=passphrase)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return context

    def export_root_key(
        self, path: Path, passphrase: bytes, *, now: datetime | None = None
    ) -> PlatformPki:
        """Write the root key to *path* (encrypted PKCS#8 PEM), then delete it from the key store.

        Before the key goes, the root signs a CRL valid for a year (nothing it issued is
        revoked). Returns the platform without the root key; everything else keeps working.
        """
        if self.root_key is None:
            raise PlatformPkiError("the root key is not in the key store (already exported?)")
        if len(passphrase) < MIN_EXPORT_PASSPHRASE:
            raise PlatformPkiError(
                f"the export passphrase needs at least {MIN_EXPORT_PASSPHRASE} bytes"
            )
        if path.exists():
            raise PlatformPkiError(f"{path} exists; refusing to overwrite it")
        now = now or SYSTEM_CLOCK()
        encrypted = self.root_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, encrypted, 0o600)
        if load_exported_root_key(path, passphrase).public_key() != self.root_cert.public_key():
            raise PlatformPkiError("the exported root key does not read back; key store kept")
        _write_root_crl(self.pki_dir, self.root_key, self.root_cert, now)
        self.keystore.delete(ROOT_PURPOSE, jwk_thumbprint(self.root_key.public_key()))
        return replace(self, root_key=None)


def load_exported_root_key(path: Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Read back what :meth:`PlatformPki.export_root_key` wrote (offline re-signing)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError):
        raise PlatformPkiError("cannot open the exported root key (wrong passphrase?)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PlatformPkiError("the exported root key is not an EC key")
    return key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@contextmanager
def _locked(pki_dir: Path) -> Iterator[None]:
    pki_dir.mkdir(parents=True, exist_ok=True)
    with (pki_dir / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        raise PlatformPkiError(f"cannot read the certificate {path.name}") from None


def _write_public_files(pki_dir: Path, certs: dict[str, x509.Certificate]) -> None:
    (pki_dir / "certs").mkdir(parents=True, exist_ok=True)
    for name, cert in certs.items():
        atomic_write(pki_dir / "certs" / f"{name}.pem", _pem(cert), PUBLIC)
    atomic_write(
        pki_dir / "certs" / "tls-server-chain.pem",
        _pem(certs[_TLS_SERVER]) + _pem(certs[_TLS_CA]),
        PUBLIC,
    )
    atomic_write(
        pki_dir / "chain.pem",
        _pem(certs[_SEAL_CA]) + _pem(certs[_TLS_CA]) + _pem(certs[_TSA]),
        PUBLIC,
    )
    # Last: its presence means the hierarchy is complete.
    atomic_write(pki_dir / "ca.pem", _pem(certs[_ROOT]), PUBLIC)


def _write_root_crl(
    pki_dir: Path, root_key: ec.EllipticCurvePrivateKey, root: x509.Certificate, now: datetime
) -> None:
    path = pki_dir / "crl" / "root.crl"
    previous = crl.crl_number_of(crl.load_crl(path.read_bytes())) if path.exists() else None
    der = crl.build_crl(
        root_key,
        root,
        [],
        crl_number=crl.next_crl_number(now, previous),
        now=now,
        next_update_in=ROOT_CRL_VALIDITY,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, der, PUBLIC)


def _store(keystore: KeyStore, name: str, key: ec.EllipticCurvePrivateKey, now: datetime) -> None:
    try:
        keystore.import_key(_PURPOSES[name], key, now=now)
    except KeyStoreError:
        raise PlatformPkiError(f"cannot store the {name} key") from None


def _create(
    pki_dir: Path, keystore: KeyStore, public_url: str, hostnames: list[str], now: datetime
) -> None:
    root_key, root = pki.new_root_ca("sealhub Root CA", now=now)
    root_crl = pki.crl_url(public_url, pki.ROOT_CA_NAME)
    seal_key, seal_ca = pki.issue_ca(root_key, root, "sealhub Seal CA", crl_url=root_crl, now=now)
    tls_ca_key, tls_ca = pki.issue_ca(root_key, root, "sealhub TLS CA", crl_url=root_crl, now=now)
    # Made by the key store itself: with an HSM the TSA key exists only in the token.
    try:
        tsa_kid = keystore.generate(TSA_PURPOSE, "ES256", now=now)
        tsa_public = keystore.get_public(TSA_PURPOSE, tsa_kid)
    except KeyStoreError:
        raise PlatformPkiError("cannot make the tsa key") from None
    if not isinstance(tsa_public, ec.EllipticCurvePublicKey):
        raise PlatformPkiError("the TSA key is not an EC key")
    tsa = pki.issue_tsa_certificate(root_key, root, tsa_public, crl_url=root_crl, now=now)
    server_key, server = pki.issue_tls_server(
        tls_ca_key,
        tls_ca,
        hostnames,
        crl_url=pki.crl_url(public_url, pki.TLS_CA_NAME),
        now=now,
    )
    for name, key in (
        (_ROOT, root_key),
        (_SEAL_CA, seal_key),
        (_TLS_CA, tls_ca_key),
        (_TLS_SERVER, server_key),
    ):
        _store(keystore, name, key, now)
    _write_root_crl(pki_dir, root_key, root, now)
    _write_public_files(
        pki_dir,
        {_ROOT: root, _SEAL_CA: seal_ca, _TLS_CA: tls_ca, _TSA: tsa, _TLS_SERVER: server},
    )


def _key_for(
    keystore: KeyStore, name: str, cert: x509.Certificate
) -> ec.EllipticCurvePrivateKey | None:
    """The stored key whose kid is the thumbprint of *cert*'s public key, if any."""
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise PlatformPkiError(f"the {name} certificate does not hold an EC key")
    try:
        key = keystore.get_private(_PURPOSES[name], jwk_thumbprint(public))
    except KeyNotFoundError:
        return None
    except KeyStoreError as exc:
        raise PlatformPkiError(f"the {name} key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != public:
        raise PlatformPkiError(f"the {name} private key does not match its certificate")
    return key


def _certified(keystore: KeyStore, name: str, cert: x509.Certificate) -> CertifiedKey:
    key = _key_for(keystore, name, cert)
    if key is None:
        raise PlatformPkiError(f"the {name} private key is missing")
    return CertifiedKey(name=name, cert=cert, key=key)


def _tls_needs_renewal(
    server: x509.Certificate,
    tls_ca: x509.Certificate,
    hostnames: list[str],
    public_url: str,
    now: datetime,
) -> bool:
    return (
        pki.subject_alternative_names(server) != pki.normalize_hostnames(hostnames)
        or server.not_valid_after_utc - now < TLS_RENEW_BEFORE
        or server.issuer != tls_ca.subject
        or pki.crl_distribution_url(server) != pki.crl_url(public_url, pki.TLS_CA_NAME)
    )


def _renew_tls_server(
    keystore: KeyStore, tls_ca: CertifiedKey, hostnames: list[str], public_url: str, now: datetime
) -> x509.Certificate:
    """New key and certificate (the caller removes the old key once the files are written)."""
    server_key, server = pki.issue_tls_server(
        tls_ca.key,
        tls_ca.cert,
        hostnames,
        crl_url=pki.crl_url(public_url, pki.TLS_CA_NAME),
        now=now,
    )
    _store(keystore, _TLS_SERVER, server_key, now)
    return server


def ensure_platform_pki(
    data_dir: Path,
    *,
    public_url: str,
    hostnames: list[str],
    master_key: MasterKey | None = None,
    keystore: KeyStore | None = None,
    now: datetime | None = None,
) -> PlatformPki:
    """Create the hierarchy on first start, load it afterwards; renew the TLS server certificate
    when the host names or the public URL changed or it is within 30 days of expiry.

    Keys go to *keystore*, or to a :class:`FileKeyStore` in ``DATA_DIR/keystore`` opened with
    *master_key*.
    """
    now = now or SYSTEM_CLOCK()
    if not hostnames:
        raise PlatformPkiError("at least one host name is needed for the TLS certificate")
    pki.normalize_hostnames(hostnames)  # refuse bad names before touching the disk
    if keystore is None:
        if master_key is None:
            raise PlatformPkiError("a master key or a key store is needed")
        keystore = FileKeyStore(data_dir / "keystore", master_key)
    pki_dir = data_dir / "pki"
    with _locked(pki_dir):
        (pki_dir / "private").mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(pki_dir / "private", 0o700)
        if not (pki_dir / "ca.pem").exists():
            _create(pki_dir, keystore, public_url, hostnames, now)
        root = _load_cert(pki_dir / "ca.pem")
        certs = {
            name: _load_cert(pki_dir / "certs" / f"{name}.pem")
            for name in (_SEAL_CA, _TLS_CA, _TSA, _TLS_SERVER)
        }
        tls_ca = _certified(keystore, _TLS_CA, certs[_TLS_CA])
        if _tls_needs_renewal(certs[_TLS_SERVER], tls_ca.cert, hostnames, public_url, now):
            old_kids = [info.kid for info in keystore.infos(TLS_SERVER_PURPOSE)]
            certs[_TLS_SERVER] = _renew_tls_server(keystore, tls_ca, hostnames, public_url, now)
            _write_public_files(pki_dir, {_ROOT: root, **certs})
            for kid in old_kids:  # only now is the new certificate on disk
                keystore.delete(TLS_SERVER_PURPOSE, kid)
        root_key = _key_for(keystore, _ROOT, root)
        if root_key is not None:
            root_crl = crl.load_crl((pki_dir / "crl" / "root.crl").read_bytes())
            if crl.needs_refresh(root_crl, now, margin=timedelta(days=30)):
                _write_root_crl(pki_dir, root_key, root, now)
        return PlatformPki(
            pki_dir=pki_dir,
            public_url=public_url,
            root_cert=root,
            seal_ca=_certified(keystore, _SEAL_CA, certs[_SEAL_CA]),
            tls_ca=tls_ca,
            tsa=_certified(keystore, _TSA, certs[_TSA]),
            tls_server=_certified(keystore, _TLS_SERVER, certs[_TLS_SERVER]),
            keystore=keystore,
            root_key=root_key,
        )
