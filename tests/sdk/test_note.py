"""C2SP signed notes made by the server's storage.signed_note, verified by the SDK."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sealhub_sdk import (
    Checkpoint,
    NoteVerifier,
    VerificationError,
    open_note,
    parse_checkpoint,
    verify_checkpoint,
)

from storage import signed_note as server

LOG = "sealhub.example/audit"


@pytest.fixture(scope="module")
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _checkpoint_note(key: Ed25519PrivateKey, size: int = 42) -> tuple[str, bytes]:
    root = hashlib.sha256(b"root %d" % size).digest()
    text = server.format_checkpoint(LOG, size, root)
    return server.sign_note(text, LOG, key), root


def test_verifier_key_string_round_trips(log_key: Ed25519PrivateKey) -> None:
    text = server.verifier_key(LOG, log_key.public_key())
    verifier = NoteVerifier.parse(text)
    assert str(verifier) == text
    assert verifier.key_id == server.key_id(LOG, log_key.public_key())


def test_server_checkpoint_verifies(log_key: Ed25519PrivateKey) -> None:
    note, root = _checkpoint_note(log_key)
    opened = open_note(note, [server.verifier_key(LOG, log_key.public_key())])
    assert opened.signers == (LOG,)
    body = parse_checkpoint(opened.text)
    assert (body.origin, body.tree_size, body.root_hash) == (LOG, 42, root)


def test_cosigned_note_counts_only_known_keys(log_key: Ed25519PrivateKey) -> None:
    note, _ = _checkpoint_note(log_key)
    witness = Ed25519PrivateKey.generate()
    cosigned = server.add_signature(note, "witness.example", witness)
    opened = open_note(
        cosigned,
        [
            server.verifier_key(LOG, log_key.public_key()),
            server.verifier_key("witness.example", witness.public_key()),
        ],
    )
    assert set(opened.signers) == {LOG, "witness.example"}
    # The witness alone is enough for a verifier that trusts only the witness.
    assert open_note(cosigned, [server.verifier_key("witness.example", witness.public_key())])


def test_tampered_or_unsigned_notes_fail(log_key: Ed25519PrivateKey) -> None:
    note, _ = _checkpoint_note(log_key)
    verifier = server.verifier_key(LOG, log_key.public_key())
    with pytest.raises(VerificationError) as bad:
        open_note(note.replace("\n42\n", "\n43\n"), [verifier])
    assert bad.value.code == "note_signature_invalid"
    stranger = server.verifier_key(LOG, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(VerificationError) as unknown:
        open_note(note, [stranger])
    assert unknown.value.code == "note_unverified"
    with pytest.raises(VerificationError):
        open_note(note.split("\n\n")[0] + "\n", [verifier])


def test_verifier_key_with_a_wrong_id_is_refused(log_key: Ed25519PrivateKey) -> None:
    name, key_id, key = server.verifier_key(LOG, log_key.public_key()).split("+", 2)
    with pytest.raises(VerificationError) as refused:
        NoteVerifier.parse(f"{name}+{'0' * 8 if key_id != '0' * 8 else '1' * 8}+{key}")
    assert refused.value.code == "invalid_verifier_key"


def test_checkpoint_fields_must_match_the_signed_note(log_key: Ed25519PrivateKey) -> None:
    note, root = _checkpoint_note(log_key, size=7)
    verifier = server.verifier_key(LOG, log_key.public_key())
    good = Checkpoint(tree_size=7, root_hash=root, note=note, timestamp=None, cosignatures=())
    assert verify_checkpoint(good, [verifier]).tree_size == 7
    lying = Checkpoint(tree_size=8, root_hash=root, note=note, timestamp=None, cosignatures=())
    with pytest.raises(VerificationError) as refused:
        verify_checkpoint(lying, [verifier])
    assert refused.value.code == "checkpoint_mismatch"
