"""What free text a user may put in an official record: one rule for every field.

Titles, names, opinions and reasons end up in sealed PDFs, receipts, the audit log and the
inspectors' screens. Control characters (C0, DEL, C1) break logs and terminals, a lone
surrogate cannot be stored, and bidirectional overrides make a title read differently
from the bytes that were signed (the "Trojan Source" trick, CVE-2021-42574). Private-use
characters stay allowed: rare characters in Chinese names (生僻字) are often encoded there.
"""

from __future__ import annotations

import unicodedata

# Embeddings, overrides and isolates, the implicit marks and the Arabic letter mark.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_LINE_BREAKS = frozenset("\n\r\t")


def unsafe_character(value: str, *, multiline: bool = False) -> str | None:
    """A description of the first character the rule refuses, or None if all are fine.

    ``multiline`` admits tab, CR and LF (opinions, reasons); single-line fields refuse them
    and the Unicode line and paragraph separators too.
    """
    for ch in value:
        if multiline and ch in _LINE_BREAKS:
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"control character U+{ord(ch):04X}"
        if category == "Cs":
            return "an unpaired surrogate"
        if ch in BIDI_CONTROLS:
            return f"bidirectional control U+{ord(ch):04X}"
        if not multiline and category in ("Zl", "Zp"):
            return f"line separator U+{ord(ch):04X}"
    return None
