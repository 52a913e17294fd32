"""The console's static files, read once at start: the version that names them, the page
template filled in, and the one way to look a file up.

Everything under ``static/`` is loaded into memory when the gateway starts, so what is
served is exactly what the version was computed over, and a request can only ever name a
key of that table: no path from a URL reaches the filesystem, so ``..``, encoded slashes
or absolute paths find nothing. A symbolic link is taken only when it points at a file
inside ``static/``; one leading elsewhere is left out (and so is a linked directory).
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
ASSET_PREFIX = "/console/assets/"
VERSION_HEX_DIGITS = 16
ASSET_BASE_PLACEHOLDER = "%ASSET_BASE%"
PUBLIC_ORIGIN_PLACEHOLDER = "%PUBLIC_ORIGIN%"

# What a browser needs to know to use each file; nosniff makes it rely on exactly this.
CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".html": "text/html; charset=utf-8",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".woff2": "font/woff2",
        ".json": "application/json",
        ".map": "application/json",
        ".webmanifest": "application/manifest+json",
        ".wasm": "application/wasm",
        ".txt": "text/plain; charset=utf-8",
    }
)
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


def content_type_of(name: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), DEFAULT_CONTENT_TYPE)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve(strict=True).relative_to(root)
    except (OSError, ValueError):
        return False
    return True


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under *root* by its POSIX path relative to it; links only to
    files inside *root*; linked directories are not entered."""
    root = root.resolve()
    files: dict[str, bytes] = {}
    for directory, subdirectories, names in os.walk(root, followlinks=False):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_symlink() and not _inside(path, root):
                continue
            if not path.is_file():
                continue
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def version_of(files: Mapping[str, bytes]) -> str:
    """The first 16 hex digits of SHA-256 over each file in sorted path order: its path
    (UTF-8), a NUL, its length in decimal, a NUL, its bytes. Any change of any file, its
    name or its place changes the version, so a year of caching never serves stale code."""
    digest = hashlib.sha256()
    for name in sorted(files):
        body = files[name]
        digest.update(name.encode("utf-8") + b"\0" + str(len(body)).encode("ascii") + b"\0")
        digest.update(body)
    return digest.hexdigest()[:VERSION_HEX_DIGITS]


class ConsoleAssets:
    """The static files of one gateway process, and the page that points at them."""

    def __init__(self, files: Mapping[str, bytes], *, public_origin: str) -> None:
        if INDEX not in files:
            raise FileNotFoundError(f"the console has no {INDEX}")
        self.version = version_of(files)
        self.asset_base = f"{ASSET_PREFIX}{self.version}/"
        self._assets = {name: Asset(body, content_type_of(name)) for name, body in files.items()}
        template = files[INDEX].decode("utf-8")
        self.index_html = (
            template.replace(ASSET_BASE_PLACEHOLDER, html.escape(self.asset_base))
            .replace(PUBLIC_ORIGIN_PLACEHOLDER, html.escape(public_origin))
            .encode("utf-8")
        )

    @classmethod
    def load(cls, *, public_origin: str, root: Path = STATIC_DIR) -> ConsoleAssets:
        return cls(read_tree(root), public_origin=public_origin)

    def asset(self, version: str, name: str) -> Asset | None:
        """The file *name* of *version*; None for another version or a name not served."""
        if version != self.version:
            return None
        return self._assets.get(name)
