"""Keys in a PKCS#11 token (a hardware security module; softhsm2 in tests).

Keys of :data:`TOKEN_PURPOSES` and every ``seal:<id>`` are generated in the token
(``CKA_SENSITIVE``, ``CKA_EXTRACTABLE`` false) and sign there; :meth:`Pkcs11KeyStore.get_private`
hands out an object implementing ``cryptography``'s private-key interface whose ``sign`` calls
the token and whose ``private_bytes`` refuses, so the callers that sign (JWS, PAdES, RFC 3161,
signed notes) do not change.

In the token, each key is three objects: the private and the public key, both with
``CKA_LABEL`` = purpose and ``CKA_ID`` = kid, and a data object (``CKO_DATA``, application
:data:`APPLICATION`, label = purpose) holding the key's metadata as JSON. The metadata lives in
the token rather than in a side file so that every gateway process using the token sees the
same rotation state without a shared directory, and a backup of the token carries it along;
PKCS#11's own ``CKA_START_DATE``/``CKA_END_DATE`` hold days only, too coarse for rotation.

Other purposes stay in the file store (:class:`SplitKeyStore`): ``tls-server``, because
Python's ``ssl`` loads a server key from a file only, and the platform CA keys (``pki:*``),
which :mod:`keys.platform` creates outside any store and the root of which is exported for
offline keeping.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, Self

import pkcs11
from asn1crypto import core
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import NoSuchKey, NoSuchToken, PKCS11Error

from keys.clock import SYSTEM_CLOCK
from keys.keystore import (
    CHECKPOINT,
    RECEIPT,
    TOKEN,
    TSA,
    Algorithm,
    KeyInfo,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    PrivateKey,
    PublicKey,
    check_purpose,
    jwk_thumbprint,
)

if TYPE_CHECKING:
    from cryptography.utils import Buffer

APPLICATION = "sealhub keystore v1"
TOKEN_PURPOSES = (TOKEN, RECEIPT, CHECKPOINT, TSA)
_SEAL_PREFIX = "seal:"
# DER of the named-curve parameters: P-256 (prime256v1) and Ed25519 (RFC 8410 id-Ed25519).
_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
_ED25519_PARAMS = bytes.fromhex("06032b6570")
_METADATA_VERSION = 1
_MECHANISMS: dict[Algorithm, frozenset[Mechanism]] = {
    "ES256": frozenset({Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA}),
    "EdDSA": frozenset({Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA}),
}


def held_in_token(purpose: str) -> bool:
    """Whether a purpose's keys belong in the token when the PKCS#11 backend is chosen."""
    return purpose in TOKEN_PURPOSES or purpose.startswith(_SEAL_PREFIX)


def _openssl_error_clearer() -> Callable[[], None]:
    """``ERR_clear_error`` of the libcrypto Python's ``ssl`` uses.

    Modules built on OpenSSL (softhsm2 is) may leave errors in the calling thread's OpenSSL
    error queue (softhsm2's ``C_Initialize`` leaves ``NO_SUCH_ENGINE`` from looking for
    optional engines); when they share ``ssl``'s libcrypto, the next TLS read on that thread
    reports the stale error and fails. dlsym on ``_ssl``'s handle finds its libcrypto.
    """
    try:
        import _ssl

        clear = ctypes.CDLL(_ssl.__file__).ERR_clear_error
    except (ImportError, AttributeError, OSError):
        return lambda: None
    clear.restype = None
    clear.argtypes = []
    return clear


_clear_openssl_errors = _openssl_error_clearer()


def _refuse() -> NoReturn:
    raise KeyStoreError("the private key stays in the token")


# The module is initialised without locking flags (python-pkcs11 passes none), so no two
# PKCS#11 calls of this process may overlap, whatever their session: each takes this lock.
_LOCK = threading.RLock()
# One session per token and process, shared by every store on it: login state belongs to
# the process, and closing a session that logged in logs out all the others.
_sessions: dict[tuple[str, str], _Session] = {}


class _Session:
    """One logged-in read/write session on a token, counted by the stores that use it."""

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        try:
            self._open(module, token_label, pin)
        finally:
            _clear_openssl_errors()

    def _open(self, module: str, token_label: str, pin: str) -> None:
        try:
            token = pkcs11.lib(module).get_token(token_label=token_label)
        except NoSuchToken:
            raise KeyStoreError(f"no PKCS#11 token labelled {token_label!r}") from None
        except PKCS11Error as exc:
            raise KeyStoreError(f"cannot load the PKCS#11 module: {exc}") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except PKCS11Error as exc:  # the message never holds the PIN
            raise KeyStoreError(
                f"cannot log in to the token {token_label!r} ({type(exc).__name__})"
            ) from None
        self.key = (module, token_label)
        self.label = token_label
        self.users = 0
        self._pin_digest = hashlib.sha256(pin.encode()).digest()
        mechanisms = set(token.slot.get_mechanisms())
        self.algorithms = frozenset(
            algorithm for algorithm, needed in _MECHANISMS.items() if needed <= mechanisms
        )

    @classmethod
    def open(cls, module: str, token_label: str, pin: str) -> _Session:
        with _LOCK:
            session = _sessions.get((module, token_label))
            if session is None:
                session = _sessions[(module, token_label)] = cls(module, token_label, pin)
            elif not hmac.compare_digest(
                session._pin_digest, hashlib.sha256(pin.encode()).digest()
            ):
                raise KeyStoreError(f"cannot log in to the token {token_label!r} (PinIncorrect)")
            session.users += 1
            return session

    def call(self, action: Callable[[Any], Any]) -> Any:
        with _LOCK:
            try:
                return action(self._session)
            except PKCS11Error as exc:
                raise KeyStoreError(f"the token refused: {type(exc).__name__}") from None
            finally:
                _clear_openssl_errors()

    def find(self, attrs: dict[Attribute, Any]) -> list[Any]:
        return list(self.call(lambda session: list(session.get_objects(attrs))))

    def attribute(self, obj: Any, attribute: Attribute) -> Any:
        return self.call(lambda _: obj[attribute])

    def destroy(self, obj: Any) -> None:
        self.call(lambda _: obj.destroy())

    def release(self) -> None:
        """One store fewer; the last one logs out and closes the session."""
        with _LOCK:
            self.users -= 1
            if self.users == 0:
                _sessions.pop(self.key, None)
                try:
                    self._session.close()
                finally:
                    _clear_openssl_errors()


class _InToken:
    """What both token key types share: the private key never leaves the token (no export,
    no pickling), and a copy is the same handle."""

    _session: _Session

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse()

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __reduce__(self) -> NoReturn:
        _refuse()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token={self._session.label!r})"


class TokenEcKey(_InToken, ec.EllipticCurvePrivateKey):
    """A P-256 key in the token: ``sign`` (ECDSA, SHA-256 or prehashed) goes to the token."""

    def __init__(self, session: _Session, key: Any, public: ec.EllipticCurvePublicKey) -> None:
        self._session = session
        self._key = key
        self._public = public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(
        self,
        data: Buffer,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyStoreError("token keys sign with ECDSA only")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            if not isinstance(algorithm._algorithm, hashes.SHA256) or len(bytes(data)) != 32:
                raise KeyStoreError("token keys sign SHA-256 digests only")
            digest = bytes(data)
        elif isinstance(algorithm, hashes.SHA256):
            hasher = hashes.Hash(hashes.SHA256())
            hasher.update(bytes(data))
            digest = hasher.finalize()
        else:
            raise KeyStoreError("token keys sign with SHA-256 only")
        raw: bytes = self._session.call(lambda _: self._key.sign(digest, mechanism=Mechanism.ECDSA))
        half = len(raw) // 2
        return utils.encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse()

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse()


class TokenEd25519Key(_InToken, ed25519.Ed25519PrivateKey):
    """An Ed25519 key in the token: ``sign`` is pure EdDSA (``CKM_EDDSA``) in the token."""

    def __init__(self, session: _Session, key: Any, public: ed25519.Ed25519PublicKey) -> None:
        self._session = session
        self._key = key
        self._public = public

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public

    def sign(self, data: Buffer) -> bytes:
        message = bytes(data)
        signature: bytes = self._session.call(
            lambda _: self._key.sign(message, mechanism=Mechanism.EDDSA)
        )
        return signature

    def private_bytes_raw(self) -> bytes:
        _refuse()


def _point(ec_point: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING; a few modules give the bare point."""
    try:
        inner = core.OctetString.load(ec_point).native
    except ValueError:
        return ec_point
    return inner if isinstance(inner, bytes) else ec_point


def _public_key(algorithm: Algorithm, ec_point: bytes) -> PublicKey:
    point = _point(ec_point)
    if algorithm == "EdDSA":
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def _metadata(info: KeyInfo, revision: int) -> bytes:
    return json.dumps(
        {
            "version": _METADATA_VERSION,
            "revision": revision,
            "purpose": info.purpose,
            "kid": info.kid,
            "algorithm": info.algorithm,
            "created_at": info.created_at.isoformat(),
            "retire_after": None if info.retire_after is None else info.retire_after.isoformat(),
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class _Record:
    """One metadata object: the handle, what it says, and its revision (tokens such as
    softhsm2 make a data object's value read-only, so an update writes a new revision, then
    removes the old one; should a crash leave both, the higher revision counts)."""

    obj: Any
    info: KeyInfo
    revision: int


def _record(obj: Any, purpose: str, value: bytes) -> _Record:
    try:
        record = json.loads(value)
        retire_after = record["retire_after"]
        info = KeyInfo(
            purpose=str(record["purpose"]),
            kid=str(record["kid"]),
            algorithm=record["algorithm"],
            created_at=datetime.fromisoformat(record["created_at"]),
            retire_after=None if retire_after is None else datetime.fromisoformat(retire_after),
        )
        revision = int(record["revision"])
    except (ValueError, KeyError, TypeError):
        raise KeyStoreError(f"unreadable key metadata in the token for {purpose}") from None
    if info.purpose != purpose or info.algorithm not in ("ES256", "EdDSA"):
        raise KeyStoreError(f"key metadata in the token for {purpose} does not match its label")
    return _Record(obj, info, revision)


class Pkcs11KeyStore(KeyStore):
    """Keys generated in one PKCS#11 token and used there; nothing secret leaves it.

    Metadata is read from the token on every call (no cache), so a rotation by another
    process is seen at once; the token's objects are cached by softhsm2 and HSMs alike.
    """

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        self._session = _Session.open(module, token_label, pin)
        self._closed = False
        self._keys: dict[tuple[str, str], PrivateKey] = {}

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(token={self._session.label!r})"

    @property
    def token_label(self) -> str:
        return self._session.label

    def supports(self, algorithm: Algorithm) -> bool:
        return algorithm in self._session.algorithms

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._session.release()

    def import_key(self, purpose: str, key: PrivateKey, *, now: datetime | None = None) -> str:
        raise KeyStoreError(
            f"keys for {purpose} are generated in the token; a key made elsewhere is refused"
        )

    def generate(
        self, purpose: str, algorithm: Algorithm = "ES256", *, now: datetime | None = None
    ) -> str:
        """A key pair made by the token: sensitive, never extractable, labelled *purpose*."""
        check_purpose(purpose)
        if not self.supports(algorithm):
            raise KeyStoreError(f"the token {self._session.label!r} cannot make {algorithm} keys")
        now = now or SYSTEM_CLOCK()
        key_type, mechanism, params = (
            (KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, _P256_PARAMS)
            if algorithm == "ES256"
            else (KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, _ED25519_PARAMS)
        )
        # The kid is the thumbprint of the public key, known only once the pair exists.
        provisional = b"new-" + secrets.token_bytes(16)

        def make(session: Any) -> tuple[Any, Any]:
            public, private = session.generate_keypair(
                key_type,
                mechanism=mechanism,
                store=True,
                label=purpose,
                id=provisional,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: params,
                    Attribute.VERIFY: True,
                    Attribute.PRIVATE: False,
                },
                private_template={
                    Attribute.SIGN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )
            return public, private

        public_obj, private_obj = self._session.call(make)
        try:
            public = _public_key(algorithm, self._session.attribute(public_obj, Attribute.EC_POINT))
            kid = jwk_thumbprint(public)
            info = KeyInfo(purpose, kid, algorithm, now)

            def label(_: Any) -> None:
                public_obj[Attribute.ID] = kid.encode("ascii")
                private_obj[Attribute.ID] = kid.encode("ascii")

            self._session.call(label)
            self._write_metadata(info, 1)
        except BaseException:
            self._session.call(lambda _: (private_obj.destroy(), public_obj.destroy()))
            raise
        return kid

    def _write_metadata(self, info: KeyInfo, revision: int) -> None:
        template = {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.APPLICATION: APPLICATION,
            Attribute.LABEL: info.purpose,
            Attribute.VALUE: _metadata(info, revision),
        }
        self._session.call(lambda session: session.create_object(template))

    def _records(self, purpose: str) -> dict[str, list[_Record]]:
        """Metadata objects by kid, highest revision first."""
        objects = self._session.find(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.APPLICATION: APPLICATION,
                Attribute.LABEL: check_purpose(purpose),
            }
        )
        by_kid: dict[str, list[_Record]] = {}
        for obj in objects:
            value = self._session.attribute(obj, Attribute.VALUE)
            record = _record(obj, purpose, value)
            by_kid.setdefault(record.info.kid, []).append(record)
        for records in by_kid.values():
            records.sort(key=lambda r: -r.revision)
        return by_kid

    def _kid_records(self, purpose: str, kid: str) -> list[_Record]:
        records = self._records(purpose).get(kid)
        if not records:
            raise KeyNotFoundError(f"no key {kid} for {purpose}")
        return records

    def infos(self, purpose: str) -> list[KeyInfo]:
        infos = [records[0].info for records in self._records(purpose).values()]
        return sorted(infos, key=lambda i: (i.created_at, i.kid))

    def _object(self, object_class: ObjectClass, purpose: str, kid: str) -> Any:
        def get(session: Any) -> Any:
            try:
                return session.get_key(
                    object_class=object_class, label=check_purpose(purpose), id=kid.encode()
                )
            except NoSuchKey:
                raise KeyNotFoundError(f"no key {kid} for {purpose} in the token") from None

        return self._session.call(get)

    def get_public(self, purpose: str, kid: str) -> PublicKey:
        obj = self._object(ObjectClass.PUBLIC_KEY, purpose, kid)
        key_type = self._session.attribute(obj, Attribute.KEY_TYPE)
        algorithm: Algorithm = "EdDSA" if key_type == KeyType.EC_EDWARDS else "ES256"
        public = _public_key(algorithm, self._session.attribute(obj, Attribute.EC_POINT))
        if jwk_thumbprint(public) != kid:
            raise KeyStoreError(f"the token's key {kid} of {purpose} does not match its kid")
        return public

    def get_private(self, purpose: str, kid: str | None = None) -> PrivateKey:
        if kid is None:
            kid = self.active_info(purpose).kid
        cached = self._keys.get((purpose, kid))
        if cached is not None:
            return cached
        public = self.get_public(purpose, kid)
        private = self._object(ObjectClass.PRIVATE_KEY, purpose, kid)
        key: PrivateKey
        if isinstance(public, ed25519.Ed25519PublicKey):
            key = TokenEd25519Key(self._session, private, public)
        else:
            key = TokenEcKey(self._session, private, public)
        self._keys[(purpose, kid)] = key
        return key

    def attributes(self, purpose: str, kid: str) -> dict[str, bool]:
        """What the token says of the private key (for checks and ``sealhub`` diagnostics)."""
        obj = self._object(ObjectClass.PRIVATE_KEY, purpose, kid)
        names = {
            "sensitive": Attribute.SENSITIVE,
            "extractable": Attribute.EXTRACTABLE,
            "always_sensitive": Attribute.ALWAYS_SENSITIVE,
            "never_extractable": Attribute.NEVER_EXTRACTABLE,
            "local": Attribute.LOCAL,
        }
        return {name: bool(self._session.attribute(obj, a)) for name, a in names.items()}

    def set_retire_after(self, purpose: str, kid: str, retire_after: datetime) -> None:
        records = self._kid_records(purpose, kid)
        latest = records[0]
        self._write_metadata(replace(latest.info, retire_after=retire_after), latest.revision + 1)
        for record in records:
            self._session.destroy(record.obj)

    def delete(self, purpose: str, kid: str) -> None:
        """Metadata first: a key without it is no longer listed, whatever happens next."""
        for record in self._kid_records(purpose, kid):
            self._session.destroy(record.obj)
        self._keys.pop((purpose, kid), None)
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            try:
                found = self._object(object_class, purpose, kid)
            except KeyNotFoundError:
                continue
            self._session.destroy(found)


class SplitKeyStore(KeyStore):
    """The token for purposes *in_token* accepts, the file store for the rest."""

    def __init__(self, token: KeyStore, files: KeyStore, in_token: Callable[[str], bool]) -> None:
        self.token = token
        self.files = files
        self._in_token = in_token

    def __repr__(self) -> str:
        return f"SplitKeyStore(token={self.token!r}, files={self.files!r})"

    def store_for(self, purpose: str) -> KeyStore:
        return self.token if self._in_token(check_purpose(purpose)) else self.files

    def import_key(self, purpose: str, key: PrivateKey, *, now: datetime | None = None) -> str:
        return self.store_for(purpose).import_key(purpose, key, now=now)

    def generate(
        self, purpose: str, algorithm: Algorithm = "ES256", *, now: datetime | None = None
    ) -> str:
        return self.store_for(purpose).generate(purpose, algorithm, now=now)

    def infos(self, purpose: str) -> list[KeyInfo]:
        return self.store_for(purpose).infos(purpose)

    def get_private(self, purpose: str, kid: str | None = None) -> PrivateKey:
        return self.store_for(purpose).get_private(purpose, kid)

    def get_public(self, purpose: str, kid: str) -> PublicKey:
        return self.store_for(purpose).get_public(purpose, kid)

    def set_retire_after(self, purpose: str, kid: str, retire_after: datetime) -> None:
        self.store_for(purpose).set_retire_after(purpose, kid, retire_after)

    def delete(self, purpose: str, kid: str) -> None:
        self.store_for(purpose).delete(purpose, kid)


def open_token_store(
    files: KeyStore, *, module: str, token_label: str, pin: str
) -> tuple[SplitKeyStore, list[str]]:
    """The split store over a token; also the purposes that stay on file only because the
    token lacks a mechanism (Ed25519 for ``checkpoint`` on an older HSM), for the caller to
    report."""
    if not os.path.isfile(module):
        raise KeyStoreError(f"no PKCS#11 module at {module}")
    token = Pkcs11KeyStore(module, token_label, pin)
    demoted = [] if token.supports("EdDSA") else [CHECKPOINT]

    def in_token(purpose: str) -> bool:
        return held_in_token(purpose) and purpose not in demoted

    return SplitKeyStore(token, files, in_token), demoted


__all__ = [
    "APPLICATION",
    "TOKEN_PURPOSES",
    "Pkcs11KeyStore",
    "SplitKeyStore",
    "TokenEcKey",
    "TokenEd25519Key",
    "held_in_token",
    "open_token_store",
]
