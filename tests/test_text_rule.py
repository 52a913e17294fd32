"""The one rule for free text in official records (gateway/http/text.py)."""

from __future__ import annotations

import pytest

from gateway.http.text import unsafe_character


@pytest.mark.parametrize(
    "value",
    [
        "关于开展安全生产检查的通知",
        "玉政办发〔2026〕12号",
        "张\ue000三",  # a private-use rare character (生僻字) in a name
        "第一季度　工作要点",  # ideographic space
        "👍",
    ],
)
def test_ordinary_text_passes(value: str) -> None:
    assert unsafe_character(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("标题\x00", "control character U+0000"),
        ("\x1b[31m", "control character U+001B"),
        ("第一行\x85第二行", "control character U+0085"),
        ("文件\u202egpj.exe", "bidirectional control U+202E"),
        ("\u2067isolate\u2069", "bidirectional control U+2067"),
        ("a\u200fb", "bidirectional control U+200F"),
        ("x\ud800", "an unpaired surrogate"),
        ("第一行\u2028第二行", "line separator U+2028"),
        ("第一行\n第二行", "control character U+000A"),
    ],
)
def test_single_line_refusals(value: str, reason: str) -> None:
    assert unsafe_character(value) == reason


def test_multiline_admits_line_breaks_only() -> None:
    assert unsafe_character("同意。\r\n\t请按期办理。\u2028", multiline=True) is None
    assert unsafe_character("同意\x00", multiline=True) == "control character U+0000"
    assert unsafe_character("同意\u202e", multiline=True) == "bidirectional control U+202E"
