"""C2SP signed notes and tlog checkpoints: known answers, tampering and malformed input."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.signed_note import (
    Checkpoint,
    InvalidCheckpointError,
    InvalidNoteError,
    InvalidVerifierKeyError,
    NoteError,
    NoteSignatureError,
    NoteVerifier,
    UnverifiedNoteError,
    add_signature,
    format_checkpoint,
    key_id,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    verifier_key,
)

EM_DASH = "\u2014"

# Published test vector of golang.org/x/mod/sumdb/note (package doc and note_test.go): a
# public test key, not a secret. Reproducing it checks wire compatibility with Go.
GO_TEST_SEED_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # 0x01 || Ed25519 seed
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    f"{EM_DASH} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    f"{EM_DASH} EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

LOG_NAME = "sealhub.example/audit"
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_NAME = "inspector.sealhub.example/w1"
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
LOG_VERIFIER = NoteVerifier.from_public_key(LOG_NAME, LOG_KEY.public_key())
WITNESS_VERIFIER = NoteVerifier.from_public_key(WITNESS_NAME, WITNESS_KEY.public_key())
ROOT = hashlib.sha256(b"some root").digest()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_go_known_answer_sign_and_verifier_key() -> None:
    seed = base64.b64decode(GO_TEST_SEED_B64)
    assert seed[0] == 0x01
    key = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert verifier_key("PeterNeumann", key.public_key()) == GO_PETER_VKEY
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_doubly_signed_note_opens_with_either_key() -> None:
    peter, enoch = parse_verifier_key(GO_PETER_VKEY), parse_verifier_key(GO_ENOCH_VKEY)
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    assert open_note(note, [peter, enoch]) == (GO_TEXT, ["PeterNeumann", "EnochRoot"])
    # The other signer is unknown to this verifier and is ignored, not an error.
    assert open_note(note, [enoch]).signers == ["EnochRoot"]
    assert open_note(note, [peter]).signers == ["PeterNeumann"]


def test_known_answer_built_by_hand_from_the_spec() -> None:
    pub = _raw(LOG_KEY)
    expected_id = hashlib.sha256(LOG_NAME.encode() + b"\x0a" + b"\x01" + pub).digest()[:4]
    assert key_id(LOG_NAME, LOG_KEY.public_key()) == expected_id
    assert LOG_VERIFIER.key_id == expected_id
    expected_vkey = (
        LOG_NAME + "+" + expected_id.hex() + "+" + base64.b64encode(b"\x01" + pub).decode()
    )
    assert LOG_VERIFIER.verifier_key == expected_vkey
    assert len(expected_vkey.split("+")[1]) == 8

    text = "hello\n"
    note = sign_note(text, LOG_NAME, LOG_KEY)
    signature = LOG_KEY.sign(text.encode())  # Ed25519 is deterministic
    line = b"\xe2\x80\x94 " + LOG_NAME.encode() + b" "
    line += base64.b64encode(expected_id + signature) + b"\n"
    assert note.encode() == b"hello\n\n" + line


def test_round_trip_of_a_checkpoint() -> None:
    body = format_checkpoint(LOG_NAME, 12345, ROOT)
    assert body == f"{LOG_NAME}\n12345\n{base64.b64encode(ROOT).decode()}\n"
    note = sign_note(body, LOG_NAME, LOG_KEY)
    opened = open_note(note, [LOG_VERIFIER])
    assert opened.text == body
    assert opened.signers == [LOG_NAME]
    assert parse_checkpoint(opened.text) == Checkpoint(LOG_NAME, 12345, ROOT, ())
    origin, size, root, extensions = parse_checkpoint(opened.text)
    assert (origin, size, root, extensions) == (LOG_NAME, 12345, ROOT, ())

    with_ext = format_checkpoint(LOG_NAME, 0, ROOT, ["ext one", "ext two"])
    assert parse_checkpoint(with_ext).extensions == ("ext one", "ext two")


def test_verifier_key_round_trip() -> None:
    # This key's base64 contains '+', which must not be taken for a field separator.
    assert "+" in LOG_VERIFIER.verifier_key.split("+", 2)[2]
    parsed = parse_verifier_key(LOG_VERIFIER.verifier_key)
    assert parsed.name == LOG_NAME
    assert parsed.key_id == LOG_VERIFIER.key_id
    assert _raw_pub(parsed) == _raw(LOG_KEY)
    # Go parses the key ID with ParseUint, so upper-case hex is the same key.
    name, kid, key = LOG_VERIFIER.verifier_key.split("+", 2)
    assert parse_verifier_key(f"{name}+{kid.upper()}+{key}").key_id == LOG_VERIFIER.key_id


def _raw_pub(verifier: NoteVerifier) -> bytes:
    return verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name+deadbeef",
        "name+deadbeef+AAAA+extra",
        # Key ID does not match the key.
        GO_PETER_VKEY.replace("c74f20a3", "c74f20a4"),
        # Name is part of the key ID.
        GO_PETER_VKEY.replace("PeterNeumann", "PeterNeumanm"),
        GO_PETER_VKEY.replace("c74f20a3", "c74f20a"),
        GO_PETER_VKEY.replace("c74f20a3", "c74f20ag"),
        GO_PETER_VKEY[:-4],
        GO_PETER_VKEY + "AAAA",
        GO_PETER_VKEY.replace("+ARpc", "+Apc"),
        # Signature type 0x02 instead of 0x01.
        "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(InvalidVerifierKeyError) as info:
        parse_verifier_key(vkey)
    assert info.value.code == "invalid_verifier_key"


def test_tampered_text_is_refused() -> None:
    note = sign_note(format_checkpoint(LOG_NAME, 10, ROOT), LOG_NAME, LOG_KEY)
    tampered = note.replace("\n10\n", "\n11\n", 1)
    assert tampered != note
    with pytest.raises(NoteSignatureError) as info:
        open_note(tampered, [LOG_VERIFIER])
    assert info.value.code == "note_signature_invalid"


def _replace_signature(note: str, change: bytes) -> str:
    text, _, block = note.rpartition("\n\n")
    prefix, _, b64 = block.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(b64))
    for i, byte in enumerate(change):
        raw[4 + i] ^= byte
    return f"{text}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"


def test_tampered_signature_is_refused() -> None:
    note = sign_note("payload\n", LOG_NAME, LOG_KEY)
    with pytest.raises(NoteSignatureError):
        open_note(_replace_signature(note, b"\x01"), [LOG_VERIFIER])
    # A known key with a truncated signature is a bad signature, not a malformed note.
    text, _, block = note.rpartition("\n\n")
    prefix, _, b64 = block.rstrip("\n").rpartition(" ")
    short = base64.b64encode(base64.b64decode(b64)[:-1]).decode()
    with pytest.raises(NoteSignatureError):
        open_note(f"{text}\n\n{prefix} {short}\n", [LOG_VERIFIER])


def test_wrong_key() -> None:
    note = sign_note("payload\n", LOG_NAME, LOG_KEY)
    other = Ed25519PrivateKey.generate().public_key()
    # Same name, other key: another key ID, so the signature is unknown and ignored.
    with pytest.raises(UnverifiedNoteError) as info:
        open_note(note, [NoteVerifier.from_public_key(LOG_NAME, other)])
    assert info.value.code == "note_unverified"
    # Name and key ID match but the key is another: the signature must be checked and fails.
    impostor = NoteVerifier(LOG_NAME, LOG_VERIFIER.key_id, other)
    with pytest.raises(NoteSignatureError):
        open_note(note, [impostor])
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [])


def test_cosignature_by_a_second_key() -> None:
    note = sign_note(format_checkpoint(LOG_NAME, 7, ROOT), LOG_NAME, LOG_KEY)
    cosigned = add_signature(note, WITNESS_NAME, WITNESS_KEY)
    assert cosigned.startswith(note)
    assert cosigned.count(f"\n{EM_DASH} ") == 2
    assert open_note(cosigned, [LOG_VERIFIER, WITNESS_VERIFIER]).signers == [
        LOG_NAME,
        WITNESS_NAME,
    ]
    assert open_note(cosigned, [WITNESS_VERIFIER]).signers == [WITNESS_NAME]
    # Cosigning again replaces the witness's own line rather than stacking duplicates.
    again = add_signature(cosigned, WITNESS_NAME, WITNESS_KEY)
    assert again == cosigned
    # A bad cosignature by a known key spoils the note even though the log's line is fine.
    with pytest.raises(NoteSignatureError):
        open_note(_replace_signature(cosigned, b"\x80"), [LOG_VERIFIER, WITNESS_VERIFIER])
    # ... but is ignored by a verifier that does not know the witness.
    assert open_note(_replace_signature(cosigned, b"\x80"), [LOG_VERIFIER]).signers == [LOG_NAME]


def test_unknown_signature_lines_are_ignored() -> None:
    note = sign_note("payload\n", LOG_NAME, LOG_KEY)
    junk = base64.b64encode(b"\x00\x01\x02\x03" + bytes(64)).decode()
    assert open_note(note + f"{EM_DASH} someone.else {junk}\n", [LOG_VERIFIER]).signers == [
        LOG_NAME
    ]


GOOD = sign_note("payload\n\nwith an empty line\n", LOG_NAME, LOG_KEY)
GOOD_TEXT, _, GOOD_SIGS = GOOD.rpartition("\n\n")
GOOD_B64 = GOOD_SIGS.rsplit(" ", 1)[1].rstrip("\n")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# 68 bytes leave two unused bits in the last base64 digit; setting one decodes to the same
# bytes, so accepting it would give one signature several spellings.
NON_CANONICAL_B64 = GOOD_B64[:-2] + _ALPHABET[_ALPHABET.index(GOOD_B64[-2]) ^ 1] + "="


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(GOOD.replace("\n\n" + EM_DASH, "\n" + EM_DASH), id="missing-blank-line"),
        pytest.param(GOOD[:-1], id="no-final-newline"),
        pytest.param(GOOD.replace(EM_DASH + " ", "-- "), id="ascii-dashes"),
        pytest.param(GOOD.replace(EM_DASH + " ", "\u2013 "), id="en-dash"),
        pytest.param(GOOD.replace(EM_DASH + " ", EM_DASH), id="no-space-after-dash"),
        pytest.param(GOOD + "trailing words\n", id="non-signature-line"),
        pytest.param(GOOD + "\n", id="blank-after-signatures"),
        pytest.param(GOOD_TEXT + "\n\n", id="no-signatures"),
        pytest.param(GOOD.replace(GOOD_B64, GOOD_B64 + "!"), id="bad-base64"),
        pytest.param(GOOD.replace(GOOD_B64, GOOD_B64.rstrip("=")), id="unpadded-base64"),
        pytest.param(GOOD.replace(GOOD_B64, NON_CANONICAL_B64), id="non-canonical-base64"),
        pytest.param(GOOD.replace(GOOD_B64, "AAAAAA=="), id="signature-too-short"),
        pytest.param(GOOD.replace(GOOD_B64, ""), id="empty-signature"),
        pytest.param(GOOD.replace(LOG_NAME + " ", "", 1), id="no-name"),
        pytest.param(GOOD.replace(LOG_NAME, "bad+name"), id="plus-in-name"),
        pytest.param(GOOD.replace("payload", "pay\tload"), id="tab-in-text"),
        pytest.param(GOOD.replace("payload", "pay\rload"), id="cr-in-text"),
        pytest.param(GOOD.replace("\n", "\r\n"), id="crlf"),
        pytest.param(GOOD_TEXT + "\n\n" + GOOD_SIGS * 101, id="too-many-signatures"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(InvalidNoteError) as info:
        open_note(note, [LOG_VERIFIER])
    assert info.value.code == "invalid_note"
    with pytest.raises(InvalidNoteError):
        add_signature(note, WITNESS_NAME, WITNESS_KEY)


def test_notes_as_bytes() -> None:
    assert open_note(GOOD.encode(), [LOG_VERIFIER]).signers == [LOG_NAME]
    with pytest.raises(InvalidNoteError):
        open_note(GOOD.encode().replace(b"payload", b"pay\xffload"), [LOG_VERIFIER])


def test_the_good_note_used_above_does_open() -> None:
    # Without this, a broken GOOD would make every malformed case pass for the wrong reason.
    assert GOOD_B64.endswith("=") and not GOOD_B64.endswith("==")
    assert base64.b64decode(NON_CANONICAL_B64) == base64.b64decode(GOOD_B64)
    assert open_note(GOOD, [LOG_VERIFIER]).text == "payload\n\nwith an empty line\n"
    assert open_note(GOOD_TEXT + "\n\n" + GOOD_SIGS * 100, [LOG_VERIFIER]).signers == [LOG_NAME]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("no newline", LOG_NAME),
        ("", LOG_NAME),
        ("bell \x07\n", LOG_NAME),
        ("ok\n", ""),
        ("ok\n", "has space"),
        ("ok\n", "has+plus"),
        ("ok\n", "nbsp\u00a0name"),
    ],
)
def test_sign_refuses_bad_text_or_name(text: str, name: str) -> None:
    with pytest.raises(InvalidNoteError):
        sign_note(text, name, LOG_KEY)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{LOG_NAME}\n12\n", id="two-lines"),
        pytest.param(f"{LOG_NAME}\n12\n{base64.b64encode(ROOT).decode()}", id="no-newline"),
        pytest.param(f"\n12\n{base64.b64encode(ROOT).decode()}\n", id="empty-origin"),
        *(
            pytest.param(f"{LOG_NAME}\n{size}\n{base64.b64encode(ROOT).decode()}\n", id=size)
            for size in ["012", "-1", "+1", " 1", "1_000", "1.0", "", "0x10", "\u0661"]
        ),
        pytest.param(
            f"{LOG_NAME}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n", id="size-over-uint64"
        ),
        pytest.param(f"{LOG_NAME}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", id="short-root"),
        pytest.param(f"{LOG_NAME}\n1\nnot base64!\n", id="root-not-base64"),
        pytest.param(
            f"{LOG_NAME}\n1\n{base64.b64encode(ROOT).decode()}\n\nextension\n", id="empty-ext"
        ),
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(InvalidCheckpointError) as info:
        parse_checkpoint(text)
    assert info.value.code == "invalid_checkpoint"
    assert isinstance(info.value, NoteError)


def test_checkpoint_size_bounds() -> None:
    assert parse_checkpoint(format_checkpoint(LOG_NAME, 0, ROOT)).size == 0
    assert parse_checkpoint(format_checkpoint(LOG_NAME, 2**64 - 1, ROOT)).size == 2**64 - 1
    with pytest.raises(InvalidCheckpointError):
        format_checkpoint(LOG_NAME, -1, ROOT)
    with pytest.raises(InvalidCheckpointError):
        format_checkpoint(LOG_NAME, 1, ROOT, ["two\nlines"])


_TEXT_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(_TEXT_CHARS, max_size=30), min_size=1, max_size=6))
def test_any_valid_text_round_trips(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    note = add_signature(sign_note(text, LOG_NAME, LOG_KEY), WITNESS_NAME, WITNESS_KEY)
    assert open_note(note, [LOG_VERIFIER, WITNESS_VERIFIER]) == (text, [LOG_NAME, WITNESS_NAME])
