"""Gateway private keys by purpose, behind one interface so an HSM can replace the files.

Purposes: ``token`` and ``receipt`` (ES256, rotated, old public keys stay in JWKS until the
tokens they signed have expired), ``checkpoint`` (Ed25519, audit log checkpoints), ``tsa``,
``seal:<seal id>``, and the platform PKI keys (``pki:root``, ``pki:seal-ca``, ...).

The file backend keeps one file per key: metadata in clear (purpose, kid, algorithm, times) and
the PKCS#8 key wrapped under the master key with ``purpose`` and ``kid`` bound as associated
data, so a copied file cannot be passed off as another purpose's key. A copy of the directory
without the master key reveals public metadata only.

The PKCS#11 backend (:mod:`keys.hsm`) implements the abstract methods and returns from
:meth:`KeyStore.get_private` an object implementing ``cryptography``'s private-key interface
whose ``sign`` calls the token and whose ``private_bytes`` refuses; callers that only sign, or
use :meth:`KeyStore.sign`, do not change. Its keys are made by :meth:`KeyStore.generate` (in
the token); :meth:`KeyStore.import_key` of a key made elsewhere is refused there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.clock import SYSTEM_CLOCK
from keys.codes import Code, CodedError
from keys.files import atomic_write, fsync_dir
from keys.master import MasterKey, MasterKeyError

Algorithm = Literal["ES256", "EdDSA"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

TOKEN = "token"  # noqa: S105 - a purpose name, not a secret
RECEIPT = "receipt"
CHECKPOINT = "checkpoint"
TSA = "tsa"
JWKS_PURPOSES = (TOKEN, RECEIPT)

_PURPOSE_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}(:[A-Za-z0-9._-]{1,128})?$")
_FILE_VERSION = 1


class KeyStoreError(CodedError):
    """A key is missing, cannot be opened, or was asked for in an impossible way."""

    code: str = Code.KEYSTORE_ERROR


class KeyNotFoundError(KeyStoreError):
    code = Code.KEY_NOT_FOUND


def seal_purpose(seal_id: str) -> str:
    return f"seal:{seal_id}"


def check_purpose(purpose: str) -> str:
    if not _PURPOSE_RE.match(purpose):
        raise KeyStoreError(f"invalid key purpose {purpose!r}")
    return purpose


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: PublicKey) -> dict[str, str]:
    """The JWK members that identify a public key (RFC 7517/8037), without kid/use/alg."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise KeyStoreError("only P-256 EC keys are supported")
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): a kid any JOSE library can recompute."""
    canonical = json.dumps(public_jwk(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def algorithm_of(key: PrivateKey | PublicKey) -> Algorithm:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise KeyStoreError("only P-256 and Ed25519 keys are supported")


def new_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyStoreError(f"unsupported algorithm {algorithm!r}")


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about a stored key. ``retire_after`` set means: no longer used to sign,
    public key still published until that time."""

    purpose: str
    kid: str
    algorithm: Algorithm
    created_at: datetime
    retire_after: datetime | None = None

    @property
    def active(self) -> bool:
        return self.retire_after is None

    def published(self, now: datetime) -> bool:
        return self.retire_after is None or now < self.retire_after


class KeyStore(ABC):
    """Private keys by purpose. Backends implement the abstract methods; the rest is shared."""

    @abstractmethod
    def import_key(self, purpose: str, key: PrivateKey, *, now: datetime | None = None) -> str:
        """Store *key* as the newest active key for *purpose*; returns its kid."""

    @abstractmethod
    def infos(self, purpose: str) -> list[KeyInfo]:
        """Every key of *purpose*, oldest first."""

    @abstractmethod
    def get_private(self, purpose: str, kid: str | None = None) -> PrivateKey:
        """The key *kid*, or the active key (newest not retired) when *kid* is None."""

    @abstractmethod
    def get_public(self, purpose: str, kid: str) -> PublicKey:
        """A public key by kid, including retired ones (to verify what they signed)."""

    @abstractmethod
    def set_retire_after(self, purpose: str, kid: str, retire_after: datetime) -> None:
        """Stop signing with *kid*; keep publishing its public key until *retire_after*."""

    @abstractmethod
    def delete(self, purpose: str, kid: str) -> None:
        """Remove a key for good (the exported root key, a pruned retired key)."""

    def generate(
        self, purpose: str, algorithm: Algorithm = "ES256", *, now: datetime | None = None
    ) -> str:
        """A new key, active at once for *purpose*; returns its kid."""
        return self.import_key(purpose, new_key(algorithm), now=now)

    def active_info(self, purpose: str) -> KeyInfo:
        active = [info for info in self.infos(purpose) if info.active]
        if not active:
            raise KeyNotFoundError(f"no active key for {purpose}")
        return max(active, key=lambda info: info.created_at)

    def ensure(self, purpose: str, algorithm: Algorithm = "ES256") -> str:
        """The active kid of *purpose*, generating a key on first use."""
        try:
            return self.active_info(purpose).kid
        except KeyNotFoundError:
            return self.generate(purpose, algorithm)

    def rotate(
        self,
        purpose: str,
        *,
        publish_old_for: timedelta,
        now: datetime | None = None,
        algorithm: Algorithm | None = None,
    ) -> str:
        """A new active key; the previous ones stop signing and stay published for
        *publish_old_for* (at least the lifetime of what they signed)."""
        now = now or SYSTEM_CLOCK()
        previous = [info for info in self.infos(purpose) if info.active]
        chosen = algorithm or (previous[-1].algorithm if previous else "ES256")
        kid = self.generate(purpose, chosen, now=now)
        for info in previous:
            if info.kid != kid:
                self.set_retire_after(purpose, info.kid, now + publish_old_for)
        return kid

    def prune(self, purpose: str, *, now: datetime | None = None) -> list[str]:
        """Delete retired keys whose publication time is over; returns their kids."""
        now = now or SYSTEM_CLOCK()
        gone = [info.kid for info in self.infos(purpose) if not info.published(now)]
        for kid in gone:
            self.delete(purpose, kid)
        return gone

    def sign(self, purpose: str, data: bytes, kid: str | None = None) -> tuple[str, bytes]:
        """Sign with the active (or given) key: ECDSA-SHA256 in DER, or Ed25519."""
        info = self.active_info(purpose) if kid is None else self._info(purpose, kid)
        key = self.get_private(purpose, info.kid)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return info.kid, key.sign(data)
        return info.kid, key.sign(data, ec.ECDSA(hashes.SHA256()))

    def _info(self, purpose: str, kid: str) -> KeyInfo:
        for info in self.infos(purpose):
            if info.kid == kid:
                return info
        raise KeyNotFoundError(f"no key {kid} for {purpose}")

    def jwks(
        self, purposes: tuple[str, ...] = JWKS_PURPOSES, *, now: datetime | None = None
    ) -> dict[str, list[dict[str, str]]]:
        """``{"keys": [...]}`` for ``/.well-known/jwks.json``: active and still-published keys."""
        now = now or SYSTEM_CLOCK()
        keys: list[dict[str, str]] = []
        for purpose in purposes:
            for info in self.infos(purpose):
                if info.published(now):
                    jwk = public_jwk(self.get_public(purpose, info.kid))
                    keys.append({**jwk, "kid": info.kid, "use": "sig", "alg": info.algorithm})
        return {"keys": keys}


@dataclass(frozen=True, repr=False)
class _Loaded:
    info: KeyInfo
    key: PrivateKey

    def __repr__(self) -> str:
        return f"_Loaded({self.info!r})"


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class FileKeyStore(KeyStore):
    """One JSON file per key under *directory* (mode 0700); keys decrypted once, then cached.

    Another process may add keys (rotation): asking for an unknown kid, or :meth:`refresh`,
    rereads the purpose's files.
    """

    def __init__(self, directory: Path, master_key: MasterKey) -> None:
        self._dir = directory
        self._master = master_key
        self._cache: dict[str, dict[str, _Loaded]] = {}
        self._lock = threading.RLock()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self._dir)!r})"

    @property
    def directory(self) -> Path:
        return self._dir

    def _purpose_dir(self, purpose: str) -> Path:
        return self._dir / quote(check_purpose(purpose), safe="")

    @staticmethod
    def _context(purpose: str, kid: str) -> bytes:
        return f"sealhub keystore v1\x00{purpose}\x00{kid}".encode()

    def _path(self, purpose: str, kid: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", kid):
            raise KeyNotFoundError("malformed kid")
        return self._purpose_dir(purpose) / f"{kid}.json"

    def _write(self, loaded: _Loaded, wrapped: bytes) -> None:
        info = loaded.info
        record = {
            "version": _FILE_VERSION,
            "purpose": info.purpose,
            "kid": info.kid,
            "algorithm": info.algorithm,
            "created_at": info.created_at.isoformat(),
            "retire_after": None if info.retire_after is None else info.retire_after.isoformat(),
            "master_key_id": self._master.key_id,
            "wrapped_pkcs8": base64.b64encode(wrapped).decode("ascii"),
        }
        directory = self._purpose_dir(info.purpose)
        directory.mkdir(exist_ok=True, mode=0o700)
        atomic_write(self._path(info.purpose, info.kid), json.dumps(record, indent=1).encode())

    def _read(self, path: Path, purpose: str) -> tuple[_Loaded, bytes]:
        try:
            record: dict[str, Any] = json.loads(path.read_bytes())
            kid = str(record["kid"])
            wrapped = base64.b64decode(record["wrapped_pkcs8"], validate=True)
            created_at = _time(record["created_at"])
            retire_after = _time(record["retire_after"])
        except (OSError, ValueError, KeyError, TypeError):
            raise KeyStoreError(f"unreadable key file for {purpose}") from None
        if record.get("purpose") != purpose or f"{kid}.json" != path.name or created_at is None:
            raise KeyStoreError(f"key file for {purpose} does not match its name")
        try:
            der = self._master.unwrap(wrapped, self._context(purpose, kid))
        except MasterKeyError:
            raise KeyStoreError(
                f"key {kid} of {purpose} does not open with this master key"
            ) from None
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise KeyStoreError(f"key {kid} of {purpose} has an unsupported type")
        if jwk_thumbprint(key.public_key()) != kid:
            raise KeyStoreError(f"key {kid} of {purpose} does not match its kid")
        info = KeyInfo(purpose, kid, algorithm_of(key), created_at, retire_after)
        return _Loaded(info, key), wrapped

    def _load_purpose(self, purpose: str) -> dict[str, _Loaded]:
        loaded: dict[str, _Loaded] = {}
        directory = self._purpose_dir(purpose)
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                item, _ = self._read(path, purpose)
                loaded[item.info.kid] = item
        self._cache[purpose] = loaded
        return loaded

    def _entries(self, purpose: str) -> dict[str, _Loaded]:
        with self._lock:
            cached = self._cache.get(purpose)
            return cached if cached is not None else self._load_purpose(purpose)

    def _entry(self, purpose: str, kid: str) -> _Loaded:
        with self._lock:
            entry = self._entries(purpose).get(kid) or self._load_purpose(purpose).get(kid)
        if entry is None:
            raise KeyNotFoundError(f"no key {kid} for {purpose}")
        return entry

    def refresh(self) -> None:
        """Forget the cache (another process rotated keys)."""
        with self._lock:
            self._cache.clear()

    def purposes(self) -> list[str]:
        return sorted(unquote(p.name) for p in self._dir.iterdir() if p.is_dir())

    def import_key(self, purpose: str, key: PrivateKey, *, now: datetime | None = None) -> str:
        now = now or SYSTEM_CLOCK()
        kid = jwk_thumbprint(key.public_key())
        info = KeyInfo(check_purpose(purpose), kid, algorithm_of(key), now)
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with self._lock:
            if kid in self._entries(purpose):
                raise KeyStoreError(f"key {kid} already stored for {purpose}")
            loaded = _Loaded(info, key)
            self._write(loaded, self._master.wrap(der, self._context(purpose, kid)))
            self._entries(purpose)[kid] = loaded
        return kid

    def infos(self, purpose: str) -> list[KeyInfo]:
        entries = self._entries(check_purpose(purpose))
        return sorted((e.info for e in entries.values()), key=lambda i: (i.created_at, i.kid))

    def get_private(self, purpose: str, kid: str | None = None) -> PrivateKey:
        if kid is None:
            kid = self.active_info(purpose).kid
        return self._entry(purpose, kid).key

    def get_public(self, purpose: str, kid: str) -> PublicKey:
        return self._entry(purpose, kid).key.public_key()

    def set_retire_after(self, purpose: str, kid: str, retire_after: datetime) -> None:
        with self._lock:
            entry = self._entry(purpose, kid)
            _, wrapped = self._read(self._path(purpose, kid), purpose)
            updated = _Loaded(replace(entry.info, retire_after=retire_after), entry.key)
            self._write(updated, wrapped)
            self._entries(purpose)[kid] = updated

    def delete(self, purpose: str, kid: str) -> None:
        with self._lock:
            path = self._path(purpose, kid)
            if not path.exists():
                raise KeyNotFoundError(f"no key {kid} for {purpose}")
            path.unlink()
            fsync_dir(path.parent)
            self._entries(purpose).pop(kid, None)
