"""Copies of cosigned checkpoints kept outside the database, in ``DIR/audit/cosigned/``.

A restore from backup rolls the database back, cosignatures included; these files are not in
the database, so after a restore they still say which trees an inspector has witnessed, and
a log that is now smaller than one of them (or disagrees with it) is seen as a rollback.
One file per cosigned note, written once (temp file, fsync, rename): its name is the tree
size and a digest of the note, so repeating a cosignature rewrites nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from keys.files import atomic_write

SUFFIX = ".note"


@dataclass(frozen=True)
class CosignedCopy:
    """Where a cosigned note came from (a file) and its text, as the witness signed it."""

    source: Path
    note: str


def cosigned_dir(data_dir: Path) -> Path:
    return data_dir / "audit" / "cosigned"


def keep(directory: Path, tree_size: int, note: str) -> Path:
    """Write *note* (the cosigned checkpoint) into *directory* unless it is there already."""
    digest = hashlib.sha256(note.encode("utf-8")).hexdigest()[:16]
    path = directory / f"{tree_size:012d}-{digest}{SUFFIX}"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, note.encode("utf-8"), 0o600)
    return path


def read_file(path: Path) -> CosignedCopy:
    return CosignedCopy(path, path.read_text("utf-8"))


def read_all(directory: Path) -> list[CosignedCopy]:
    """Every kept note, smallest tree first (no directory: none was cosigned here)."""
    if not directory.is_dir():
        return []
    return [read_file(path) for path in sorted(directory.glob("*" + SUFFIX))]
