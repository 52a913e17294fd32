"""Files replaced whole or not at all, surviving a crash (keys, certificates, CRLs, state).

Here in keys/, the lowest package, so that keys/, storage/ and the gateway share one way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename, creation or removal of an entry of *path* durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace *path* with *data*: a reader, or the disk after a crash, has the old file or
    the new one, never a part. The temporary file sits in the same directory (a rename
    within one file system is atomic) and has *mode* before it holds a byte; the file is
    fsynced before the rename and the directory after it. The directory must exist."""
    directory = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(directory)
