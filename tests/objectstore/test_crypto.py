"""The pure segment format: layout arithmetic, header round trip, nonce rules."""

from __future__ import annotations

import pytest

from keys.master import MasterKey
from storage.objects import IntegrityError
from storage.objects.crypto import (
    TAG_SIZE,
    Layout,
    ObjectHeader,
    StreamOpener,
    StreamSealer,
    create_object,
    open_object,
)

SEG = 64


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 7])
def test_layout_recovers_plaintext_size(size: int) -> None:
    master = MasterKey.generate()
    header, cipher = create_object(master, "a" * 32, segment_size=SEG)
    sealer = StreamSealer(cipher)
    stored = header + sealer.feed([bytes(size)]) + sealer.finish()
    layout = Layout(len(header), SEG, len(stored))
    assert layout.plaintext_size == size
    assert layout.segment_count == max(1, -(-size // SEG))
    opener = StreamOpener(cipher, layout, 0, layout.segment_count - 1)
    assert b"".join(opener.feed(stored[len(header) :])) == bytes(size)
    opener.finish()


@pytest.mark.parametrize("body", [0, 1, TAG_SIZE - 1, SEG + TAG_SIZE + 1, SEG + 2 * TAG_SIZE])
def test_layout_refuses_impossible_sizes(body: int) -> None:
    with pytest.raises(IntegrityError):
        Layout(100, SEG, 100 + body)


def test_stored_span_covers_touched_segments_only() -> None:
    layout = Layout(100, SEG, 100 + 3 * (SEG + TAG_SIZE) + 10 + TAG_SIZE)
    assert layout.segments_for(SEG - 1, SEG + 1) == (0, 1)
    assert layout.stored_span(1, 1) == (100 + SEG + TAG_SIZE, 100 + 2 * (SEG + TAG_SIZE))
    assert layout.stored_span(3, 3)[1] == layout.stored_size


def test_header_round_trip_and_repr_hides_secrets() -> None:
    master = MasterKey.generate()
    raw, _ = create_object(master, "b" * 32)
    header, exact = ObjectHeader.decode(raw + b"segment bytes")
    assert exact == raw
    assert header.key_id == master.key_id
    assert header.encode() == raw
    assert header.wrapped_key.hex() not in repr(header)


def test_last_flag_is_part_of_the_nonce() -> None:
    master = MasterKey.generate()
    raw, cipher = create_object(master, "c" * 32, segment_size=SEG)
    sealed = cipher.seal(0, b"x" * 10, last=False)
    with pytest.raises(IntegrityError):
        cipher.open(0, sealed, last=True)
    with pytest.raises(IntegrityError):
        cipher.open(1, sealed, last=False)
    header, exact = ObjectHeader.decode(raw)
    reopened = open_object(header, exact, {master.key_id: master}, "c" * 32)
    assert reopened.open(0, sealed, last=False) == b"x" * 10


def test_finish_twice_is_a_bug() -> None:
    _, cipher = create_object(MasterKey.generate(), "d" * 32)
    sealer = StreamSealer(cipher)
    sealer.finish()
    with pytest.raises(RuntimeError):
        sealer.finish()
