"""C2SP signed notes (Ed25519) and tlog checkpoints, verified offline.

Specs: https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint. The verifier key
is the ``<name>+<hex key id>+<base64(0x01 || key)>`` string Go's sumdb/note reads; the key
id must be the first 4 bytes of SHA-256(name || "\\n" || 0x01 || key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sealhub_sdk._internal.errors import VerificationError

_ED25519 = 0x01
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _fail(detail: str, code: str = "note_invalid") -> VerificationError:
    return VerificationError(detail, code=code)


def _b64decode(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _valid_name(name: str) -> bool:
    return bool(name) and not any(ch == "+" or ch.isspace() or ord(ch) < 0x20 for ch in name)


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted note-signing key: its name, 4-byte key id and Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, verifier_key: str) -> NoteVerifier:
        """Read ``<name>+<hex key id>+<base64 key>``; the key id is recomputed and checked."""
        name, sep1, rest = verifier_key.strip().partition("+")
        id_hex, sep2, key_b64 = rest.partition("+")
        if not (sep1 and sep2) or not _valid_name(name):
            raise _fail("verifier key must be name+keyid+key", "invalid_verifier_key")
        if not re.fullmatch(r"[0-9a-fA-F]{8}", id_hex):
            raise _fail("verifier key id must be 8 hex digits", "invalid_verifier_key")
        raw = _b64decode(key_b64)
        if raw is None or len(raw) != 33 or raw[0] != _ED25519:
            raise _fail("verifier key must be an Ed25519 key (type 0x01)", "invalid_verifier_key")
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        if expected != bytes.fromhex(id_hex):
            raise _fail("verifier key id does not match the key", "invalid_verifier_key")
        return cls(name, expected, public_key)

    def __str__(self) -> str:
        raw = bytes([_ED25519]) + self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode('ascii')}"


@dataclass(frozen=True)
class OpenedNote:
    """A note's text, now trusted, and the names of the known keys that signed it."""

    text: str
    signers: tuple[str, ...]


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier | str]) -> OpenedNote:
    """Verify a signed note against trusted keys; signatures by unknown keys are ignored.

    Fails when the note is malformed, when a known key's signature is bad, or when no known
    key signed it.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail("note is not UTF-8") from None
    if not note.endswith("\n") or any(ch < " " and ch != "\n" for ch in note):
        raise _fail("note must end with a newline and hold no control characters")
    split = note.rfind("\n\n")
    if split < 0:
        raise _fail("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines or len(lines) > _MAX_SIGNATURES:
        raise _fail("note has no signature lines, or too many")
    known = {
        (v.name, v.key_id): v
        for v in (NoteVerifier.parse(x) if isinstance(x, str) else x for x in verifiers)
    }
    message = text.encode("utf-8")
    signers: list[str] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise _fail("signature line must start with an em dash and a space")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode(b64) if sep else None
        if not _valid_name(name) or raw is None or len(raw) <= 4:
            raise _fail("malformed signature line")
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            continue
        try:
            if len(raw) != 4 + 64:
                raise InvalidSignature
            verifier.public_key.verify(raw[4:], message)
        except InvalidSignature:
            raise _fail(
                f"the signature by {name} does not verify", "note_signature_invalid"
            ) from None
        if name not in signers:
            signers.append(name)
    if not signers:
        raise _fail("no signature by a trusted key", "note_unverified")
    return OpenedNote(text, tuple(signers))


@dataclass(frozen=True)
class CheckpointBody:
    """A tlog-checkpoint: the log's origin, its size and root hash (extension lines kept)."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def parse_checkpoint(text: str) -> CheckpointBody:
    """Parse checkpoint text (returned by :func:`open_note`, so already authenticated)."""
    if not text.endswith("\n"):
        raise _fail("checkpoint text must end with a newline", "invalid_checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0]:
        raise _fail("checkpoint needs origin, size and root hash lines", "invalid_checkpoint")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text) or int(size_text) >= 2**64:
        raise _fail("checkpoint size is not a canonical decimal", "invalid_checkpoint")
    root = _b64decode(root_text)
    if root is None or len(root) != 32:
        raise _fail("checkpoint root is not base64 of 32 bytes", "invalid_checkpoint")
    if any(not line for line in extensions):
        raise _fail("checkpoint extension lines must not be empty", "invalid_checkpoint")
    return CheckpointBody(origin, int(size_text), root, tuple(extensions))
