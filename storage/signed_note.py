"""C2SP signed notes and tlog checkpoints with Ed25519, as Go's sumdb/note reads them.

Specs: https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint. Pure: keys come
in as ``cryptography`` objects, notes go out as text. Only signature type 0x01 (Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keys.codes import Code, CodedError

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "InvalidCheckpointError",
    "InvalidNoteError",
    "InvalidVerifierKeyError",
    "NoteError",
    "NoteSignatureError",
    "NoteVerifier",
    "OpenedNote",
    "UnverifiedNoteError",
    "add_signature",
    "format_checkpoint",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_note",
    "verifier_key",
]

ED25519_SIGNATURE_TYPE = 0x01
# The spec asks verifiers to accept at least 16; Go's note package stops at 100.
MAX_SIGNATURES = 100

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_ED25519_SIG_SIZE = 64
_ED25519_KEY_SIZE = 32
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX_TREE_SIZE = 2**64 - 1


class NoteError(CodedError):
    """Base of the signed-note errors; ``code`` is the stable machine code."""

    code: str = Code.NOTE_ERROR


class InvalidNoteError(NoteError):
    """The note is not well-formed per the signed-note spec; nothing in it was trusted."""

    code = Code.INVALID_NOTE


class NoteSignatureError(NoteError):
    """A signature by a known key failed: the whole note is refused (spec: SHOULD reject)."""

    code = Code.NOTE_SIGNATURE_INVALID


class UnverifiedNoteError(NoteError):
    """The note is well-formed but no known key signed it."""

    code = Code.NOTE_UNVERIFIED


class InvalidVerifierKeyError(NoteError):
    """A verifier key string is malformed or its key ID does not match its key."""

    code = Code.INVALID_VERIFIER_KEY


class InvalidCheckpointError(NoteError):
    """The note text is not a tlog-checkpoint body."""

    code = Code.INVALID_CHECKPOINT


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode_canonical(text: str) -> bytes | None:
    """Strict standard base64; refusing non-canonical forms keeps each signature one string."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == text else None


def _is_valid_name(name: str) -> bool:
    return bool(name) and not any(
        ch == "+" or ch.isspace() or unicodedata.category(ch) in {"Zs", "Zl", "Zp", "Cc"}
        for ch in name
    )


def _check_name(name: str, error: type[NoteError]) -> None:
    if not _is_valid_name(name):
        raise error("key name must be non-empty without spaces, '+' or control characters")


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), as the spec recommends."""
    data = name.encode() + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + _raw_public_key(public_key)
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted key: signatures count only when both name and key ID match it."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        _check_name(name, InvalidVerifierKeyError)
        return cls(name, key_id(name, public_key), public_key)

    @property
    def verifier_key(self) -> str:
        raw = bytes([ED25519_SIGNATURE_TYPE]) + _raw_public_key(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(raw)}"


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """``<name>+<hex key ID>+<base64(0x01 || key)>``, the form Go's note.NewVerifier reads."""
    return NoteVerifier.from_public_key(name, public_key).verifier_key


def parse_verifier_key(text: str) -> NoteVerifier:
    # Split at the first two pluses only: standard base64 may itself contain '+'.
    name, sep1, rest = text.partition("+")
    id_hex, sep2, key_b64 = rest.partition("+")
    if not (sep1 and sep2):
        raise InvalidVerifierKeyError("verifier key must be name+keyid+key")
    _check_name(name, InvalidVerifierKeyError)
    if not re.fullmatch(r"[0-9a-fA-F]{8}", id_hex):
        raise InvalidVerifierKeyError("verifier key ID must be 8 hex digits")
    raw = _b64decode_canonical(key_b64)
    if raw is None or len(raw) != 1 + _ED25519_KEY_SIZE:
        raise InvalidVerifierKeyError("verifier key must be base64 of 33 bytes")
    if raw[0] != ED25519_SIGNATURE_TYPE:
        raise InvalidVerifierKeyError(f"unsupported signature type 0x{raw[0]:02x}")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError:
        raise InvalidVerifierKeyError("verifier key is not an Ed25519 public key") from None
    verifier = NoteVerifier.from_public_key(name, public_key)
    if verifier.key_id != bytes.fromhex(id_hex):
        raise InvalidVerifierKeyError("verifier key ID does not match the key")
    return verifier


def _check_text(text: str, error: type[NoteError]) -> None:
    if not text.endswith("\n"):
        raise error("note text must end with a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise error("note contains a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise error("note is not valid UTF-8") from None


class _SignatureLine(NamedTuple):
    name: str
    key_id: bytes
    signature: bytes
    line: str


def _signature_line(name: str, key: bytes, signature: bytes) -> str:
    return f"{_SIG_PREFIX}{name} {_b64encode(key + signature)}\n"


def _split(note: str | bytes) -> tuple[str, list[_SignatureLine]]:
    """Syntax per the spec: text, blank line, signature lines; the LAST blank line splits."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidNoteError("note is not valid UTF-8") from None
    _check_text(note, InvalidNoteError)
    split = note.rfind("\n\n")
    if split < 0:
        raise InvalidNoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise InvalidNoteError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidNoteError(f"note has more than {MAX_SIGNATURES} signatures")
    parsed: list[_SignatureLine] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise InvalidNoteError("signature line must start with an em dash and a space")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode_canonical(b64) if sep else None
        if not _is_valid_name(name) or raw is None or len(raw) <= _KEY_ID_SIZE:
            raise InvalidNoteError("malformed signature line")
        parsed.append(_SignatureLine(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:], line))
    return text, parsed


class OpenedNote(NamedTuple):
    """The text, now trusted, and the names of the known keys that signed it."""

    text: str
    signers: list[str]


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Verify ``note`` against trusted keys; signatures by unknown keys are ignored.

    Raises :class:`InvalidNoteError` (malformed), :class:`NoteSignatureError` (a known key's
    signature is bad) or :class:`UnverifiedNoteError` (no known key signed).
    """
    text, lines = _split(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode()
    signers: list[str] = []
    for sig in lines:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        try:
            if len(sig.signature) != _ED25519_SIG_SIZE:
                raise InvalidSignature
            verifier.public_key.verify(sig.signature, message)
        except InvalidSignature:
            raise NoteSignatureError(
                f"signature by {sig.name}+{sig.key_id.hex()} does not verify"
            ) from None
        if sig.name not in signers:
            signers.append(sig.name)
    if not signers:
        raise UnverifiedNoteError("no signature from a known key")
    return OpenedNote(text, signers)


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """A new note: ``text``, a blank line and one Ed25519 signature line by ``name``."""
    _check_text(text, InvalidNoteError)
    _check_name(name, InvalidNoteError)
    key = key_id(name, private_key.public_key())
    return text + "\n" + _signature_line(name, key, private_key.sign(text.encode()))


def add_signature(note: str | bytes, name: str, private_key: Ed25519PrivateKey) -> str:
    """Cosign: append a signature line by another key, replacing any earlier one by that key.

    This checks syntax only; a witness must first ``open_note`` the note with the log's key
    (and check consistency) before adding its own signature.
    """
    text, lines = _split(note)
    _check_name(name, InvalidNoteError)
    key = key_id(name, private_key.public_key())
    kept = [s.line + "\n" for s in lines if (s.name, s.key_id) != (name, key)]
    if len(kept) + 1 > MAX_SIGNATURES:
        raise InvalidNoteError(f"note would have more than {MAX_SIGNATURES} signatures")
    new_line = _signature_line(name, key, private_key.sign(text.encode()))
    return text + "\n" + "".join(kept) + new_line


class Checkpoint(NamedTuple):
    """A tlog-checkpoint body: who the log is, how big it is, and its root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def format_checkpoint(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """The note text of a checkpoint; sign it with :func:`sign_note`."""
    if any("\n" in line for line in [origin, *extensions]):
        raise InvalidCheckpointError("checkpoint lines cannot contain a newline")
    body = "".join(f"{line}\n" for line in [origin, str(size), _b64encode(root_hash), *extensions])
    # Parsing our own output applies every rule once, in one place.
    parse_checkpoint(body)
    return body


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (as returned by :func:`open_note`, so already trusted)."""
    _check_text(text, InvalidCheckpointError)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidCheckpointError("checkpoint needs origin, size and root hash lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise InvalidCheckpointError("checkpoint origin is empty")
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > _MAX_TREE_SIZE:
        raise InvalidCheckpointError("checkpoint tree size is not a canonical decimal")
    root_hash = _b64decode_canonical(root_text)
    if root_hash is None or len(root_hash) != hashlib.sha256().digest_size:
        raise InvalidCheckpointError("checkpoint root hash is not base64 of 32 bytes")
    if any(not line for line in extensions):
        raise InvalidCheckpointError("checkpoint extension lines must be non-empty")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))
