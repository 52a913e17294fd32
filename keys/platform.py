"""The platform PKI on disk: created on first start, loaded afterwards (the I/O edge of keys.pki).

Layout under ``DATA_DIR/pki``::

    ca.pem              root certificate (what clients trust); written last, marks completion
    chain.pem           seal CA, TLS CA and TSA certificates (untrusted intermediates)
    certs/*.pem         each certificate alone; tls-server-chain.pem = server + TLS CA
    private/            private keys, each wrapped under the master key (mode 0700/0600)

Several gateway processes may start at once on one data directory: a file lock serialises the
first-start creation so they all end up with the same hierarchy.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys import pki
from keys.master import MasterKey, MasterKeyError

TLS_RENEW_BEFORE = timedelta(days=30)

_ROOT = "root"
_SEAL_CA = "seal-ca"
_TLS_CA = "tls-ca"
_TSA = "tsa"
_TLS_SERVER = "tls-server"


class PlatformPkiError(Exception):
    """The PKI in the data directory is incomplete, inconsistent or does not open."""

    code = "platform_pki_error"


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

    def cert_path(self, name: str) -> Path:
        """``root``, ``seal-ca``, ``tls-ca``, ``tsa`` or ``tls-server``."""
        return self.pki_dir / "certs" / f"{name}.pem"

    def crl_url(self, ca_name: str) -> str:
        return pki.crl_url(self.public_url, ca_name)

    @property
    def chain_certs(self) -> list[x509.Certificate]:
        return [self.seal_ca.cert, self.tls_ca.cert, self.tsa.cert]

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


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Temp file, fsync, rename: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _WrappedKeyFiles:
    """Private keys as PKCS#8 DER wrapped under the master key, one file per key."""

    def __init__(self, directory: Path, master_key: MasterKey) -> None:
        self._dir = directory
        self._master = master_key

    def __repr__(self) -> str:
        return f"_WrappedKeyFiles({str(self._dir)!r})"

    def _path(self, name: str) -> Path:
        return self._dir / f"{name}.key.wrapped"

    @staticmethod
    def _context(name: str) -> bytes:
        return b"sealhub platform pki key:" + name.encode("ascii")

    def put(self, name: str, key: ec.EllipticCurvePrivateKey) -> None:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _atomic_write(self._path(name), self._master.wrap(der, self._context(name)), 0o600)

    def get(self, name: str) -> ec.EllipticCurvePrivateKey | None:
        path = self._path(name)
        if not path.exists():
            return None
        try:
            der = self._master.unwrap(path.read_bytes(), self._context(name))
        except MasterKeyError:
            raise PlatformPkiError(f"the {name} key does not open with this master key") from None
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PlatformPkiError(f"the {name} key is not an EC key")
        return key

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


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
    for name, cert in certs.items():
        _atomic_write(pki_dir / "certs" / f"{name}.pem", _pem(cert))
    _atomic_write(
        pki_dir / "certs" / "tls-server-chain.pem",
        _pem(certs[_TLS_SERVER]) + _pem(certs[_TLS_CA]),
    )
    _atomic_write(
        pki_dir / "chain.pem", _pem(certs[_SEAL_CA]) + _pem(certs[_TLS_CA]) + _pem(certs[_TSA])
    )
    # Last: its presence means the hierarchy is complete.
    _atomic_write(pki_dir / "ca.pem", _pem(certs[_ROOT]))


def _create(
    pki_dir: Path, keys: _WrappedKeyFiles, public_url: str, hostnames: list[str], now: datetime
) -> None:
    root_key, root = pki.new_root_ca("sealhub Root CA", now=now)
    root_crl = pki.crl_url(public_url, pki.ROOT_CA_NAME)
    seal_key, seal_ca = pki.issue_ca(root_key, root, "sealhub Seal CA", crl_url=root_crl, now=now)
    tls_ca_key, tls_ca = pki.issue_ca(root_key, root, "sealhub TLS CA", crl_url=root_crl, now=now)
    tsa_key = pki.new_private_key()
    tsa = pki.issue_tsa_certificate(root_key, root, tsa_key.public_key(), crl_url=root_crl, now=now)
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
        (_TSA, tsa_key),
        (_TLS_SERVER, server_key),
    ):
        keys.put(name, key)
    _write_public_files(
        pki_dir,
        {_ROOT: root, _SEAL_CA: seal_ca, _TLS_CA: tls_ca, _TSA: tsa, _TLS_SERVER: server},
    )


def _certified(keys: _WrappedKeyFiles, name: str, cert: x509.Certificate) -> CertifiedKey:
    key = keys.get(name)
    if key is None:
        raise PlatformPkiError(f"the {name} private key is missing")
    if key.public_key() != cert.public_key():
        raise PlatformPkiError(f"the {name} private key does not match its certificate")
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


def ensure_platform_pki(
    data_dir: Path,
    *,
    public_url: str,
    hostnames: list[str],
    master_key: MasterKey,
    now: datetime | None = None,
) -> PlatformPki:
    """Create the hierarchy on first start, load it afterwards; renew the TLS server certificate
    when the host names or the public URL changed or it is within 30 days of expiry."""
    now = now or datetime.now(UTC)
    if not hostnames:
        raise PlatformPkiError("at least one host name is needed for the TLS certificate")
    pki.normalize_hostnames(hostnames)  # refuse bad names before touching the disk
    pki_dir = data_dir / "pki"
    keys = _WrappedKeyFiles(pki_dir / "private", master_key)
    with _locked(pki_dir):
        (pki_dir / "private").mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(pki_dir / "private", 0o700)
        if not (pki_dir / "ca.pem").exists():
            _create(pki_dir, keys, public_url, hostnames, now)
        root = _load_cert(pki_dir / "ca.pem")
        certs = {
            name: _load_cert(pki_dir / "certs" / f"{name}.pem")
            for name in (_SEAL_CA, _TLS_CA, _TSA, _TLS_SERVER)
        }
        tls_ca = _certified(keys, _TLS_CA, certs[_TLS_CA])
        if _tls_needs_renewal(certs[_TLS_SERVER], tls_ca.cert, hostnames, public_url, now):
            server_key, server = pki.issue_tls_server(
                tls_ca.key,
                tls_ca.cert,
                hostnames,
                crl_url=pki.crl_url(public_url, pki.TLS_CA_NAME),
                now=now,
            )
            keys.put(_TLS_SERVER, server_key)
            certs[_TLS_SERVER] = server
            _write_public_files(pki_dir, {_ROOT: root, **certs})
        root_key = keys.get(_ROOT)
        if root_key is not None and root_key.public_key() != root.public_key():
            raise PlatformPkiError("the root private key does not match the root certificate")
        return PlatformPki(
            pki_dir=pki_dir,
            public_url=public_url,
            root_cert=root,
            seal_ca=_certified(keys, _SEAL_CA, certs[_SEAL_CA]),
            tls_ca=tls_ca,
            tsa=_certified(keys, _TSA, certs[_TSA]),
            tls_server=_certified(keys, _TLS_SERVER, certs[_TLS_SERVER]),
            root_key=root_key,
        )
