"""Write sealhub_sdk/_internal/sync_client.py from async_client.py: the client is written once.

After editing async_client.py, run ``python clients/python_sdk/tools/unasync.py`` and commit
both; tests/sdk/test_unasync.py fails while they disagree. The rewrite is plain text:
``async``/``await``, the names in RENAMES, ``asyncio.to_thread(f, ...)`` and ``(await x)``.
Any other async construct is refused rather than guessed at. The repository's ruff then sorts
the imports and formats the result.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

INTERNAL = Path(__file__).resolve().parent.parent / "sealhub_sdk" / "_internal"
SOURCE, TARGET = INTERNAL / "async_client.py", INTERNAL / "sync_client.py"
NOTICE = "# Generated from async_client.py by clients/python_sdk/tools/unasync.py: do not edit.\n"

# Prose that says which client it is, each expected exactly once.
PHRASES = {
    "The asynchronous client (httpx.AsyncClient): the same methods as Client, awaitable.": (
        "The synchronous client (httpx.Client): for scripts, department batch jobs and sealctl."
    ),
    "Asynchronous sealhub client, method for method the same as :class:`Client`.": (
        "Synchronous sealhub client."
    ),
}
RENAMES = {
    r"\basync (def|with|for)\b": r"\1",
    r"\bimport asyncio\b": "import threading",
    r"\basyncio\.Lock\b": "threading.Lock",
    r"\basyncio\.sleep\b": "time.sleep",
    r"\bAsyncClient\b": "Client",
    r"\bAsyncIterator\b": "Iterator",
    r"\b__aenter__\b": "__enter__",
    r"\b__aexit__\b": "__exit__",
    r"\baclose\b": "close",
    r"\baread\b": "read",
    r"\baiter_bytes\b": "iter_bytes",
    # An async generator cannot ``yield from``; the sync one should (ruff's UP028). Only
    # where the loop's body is that one line: what follows is not indented deeper.
    r"(?m)^( *)for (\w+) in (.+):\n\1    yield \2\n(?!\n*\1 )": r"\1yield from \3\n",
}


def closing(text: str, start: int) -> int:
    """The index of the parenthesis that closes the one at *start*."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    raise ValueError(f"unbalanced parenthesis at offset {start}")


def rewrite_groups(text: str, opening: str, rewrite: Callable[[str], str]) -> str:
    """Replace each ``opening ... )`` (*opening* ends at its parenthesis) by rewrite(inside)."""
    while (found := re.search(opening, text)) is not None:
        end = closing(text, found.end() - 1)
        text = text[: found.start()] + rewrite(text[found.end() : end].strip()) + text[end + 1 :]
    return text


def call_directly(inside: str) -> str:
    """``asyncio.to_thread(f, a, b)`` -> ``f(a, b)``."""
    function, _, arguments = inside.partition(",")
    return f"{function.strip()}({arguments.strip()})"


def unasync(text: str) -> str:
    """*text* with every async construct rewritten; anything left async is refused."""
    text = rewrite_groups(text, r"\basyncio\.to_thread\(", call_directly)
    # ``(await x).y`` -> ``x.y``; the parenthesis of a call, ``f(await x)``, stays.
    text = rewrite_groups(text, r"(?<![\w)\]])\((?=await )", str)
    text = re.sub(r"\bawait ", "", text)
    for pattern, replacement in RENAMES.items():
        text = re.sub(pattern, replacement, text)
    if left := re.search(r"\b(async|await|asyncio)\b", text):
        line = text.count("\n", 0, left.start()) + 1
        raise ValueError(f"unasync.py cannot rewrite {left.group()!r} (line {line} of the output)")
    return text


def ruff(arguments: list[str], text: str) -> str:
    """*text* through the repository's ruff, configured as if it were the target file."""
    command = [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(TARGET), "-"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ruff {' '.join(arguments)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


def generate(source: str) -> str:
    """The sync client as it should be committed, from the async client's *source*."""
    for phrase, replacement in PHRASES.items():
        if source.count(phrase) != 1:
            raise ValueError(f"expected once in async_client.py: {phrase!r}")
        source = source.replace(phrase, replacement)
    text = NOTICE + unasync(source)
    sorted_imports = ruff(["check", "--select", "I", "--fix", "--quiet"], text)
    return ruff(["format", "--quiet"], sorted_imports)


def main() -> None:
    TARGET.write_text(generate(SOURCE.read_text("utf-8")), "utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
