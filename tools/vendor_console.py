"""Vendor the console's browser libraries from the npm registry, reproducibly.

The console is plain ES modules served as they are (no bundler, no CDN), so the few
libraries it needs are copied into ``gateway/console/static/vendor/`` from the packages
npm publishes: each tarball is fetched with ``npm pack`` and checked against the pinned
Subresource-Integrity hash before anything is extracted, only the files the console loads
are kept, and bare import specifiers (``from "preact"``) are rewritten to relative paths
because browsers resolve nothing else without an import map (which the CSP would need to
allow inline). ``vendor/VENDOR.json`` records name, version, license, source file and the
SHA-256 of every written file; ``tests/test_console_vendor.py`` holds the files to it.

Run from the repository root: ``python tools/vendor_console.py`` (needs ``npm``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "gateway" / "console" / "static" / "vendor"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # npm's dist.integrity (SRI, sha512) of the tarball
    license: str  # SPDX id, checked against the package.json
    files: dict[str, str]  # file in the tarball -> file under vendor/
    license_file: str | None = "LICENSE"  # None: the notice lives in the source header
    imports: dict[str, str] | None = None  # bare specifier -> vendored file


# preact 11.2.0 rather than 10.29.x: it is npm's `latest`, a stable release (11.0.0 came out
# 2026-09-30 and has had two minor releases since), ships ES modules only, and drops the
# legacy-browser code paths the console (WebCrypto, Trusted Types, module workers) never needs.
# The hooks and the `h`/`render` API the console uses are the same as in 10.x.
PACKAGES = (
    Package(
        "preact",
        "11.2.0",
        "sha512-/HfHI/7N84e6GrWBJ3J280z3mLaRJiDcSvj/A+y/4AbLnND/1UlGHe1sR6oYuTGwId0nP7dqDU9OnLxMPZ7xBg==",
        "MIT",
        {"dist/preact.mjs": "preact.mjs", "hooks/dist/hooks.mjs": "preact-hooks.mjs"},
        imports={"preact": "preact.mjs"},
    ),
    Package(
        "htm",
        "3.1.1",
        "sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ==",
        "Apache-2.0",
        {"dist/htm.mjs": "htm.mjs"},
    ),
    Package(
        "pdfjs-dist",
        "6.5.438",
        "sha512-vg8Pw1x+AFKy4AMDvhuWl5cOYV8d698UoEANoFFhc79hqXDnZQqnOXoxw3HG907WHOg1JYOvLhP756boddFxpA==",
        "Apache-2.0",
        {
            "build/pdf.min.mjs": "pdfjs/pdf.min.mjs",
            "build/pdf.worker.min.mjs": "pdfjs/pdf.worker.min.mjs",
        },
    ),
    Package(
        "qrcode-generator",
        "2.0.4",
        "sha512-mZSiP6RnbHl4xL2Ap5HfkjLnmxfKcPWpWe/c+5XxCuetEenqmNFf1FH/ftXPCtFG5/TDobjsjz6sSNL0Sr8Z9g==",
        "MIT",
        {"dist/qrcode.mjs": "qrcode.mjs"},  # already an ES module with a default export
        license_file=None,
    ),
)

_SOURCE_MAP = re.compile(rb"\n?//# sourceMappingURL=\S+\s*$")
_HEADER_COMMENT = re.compile(rb"\A(?://[^\n]*\n)+")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_integrity(tarball: Path, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        raise SystemExit(f"{tarball.name}: integrity mismatch (expected {integrity})")


def fetch(package: Package, workdir: Path) -> tarfile.TarFile:
    """``npm pack`` the pinned version into *workdir* and open the checked tarball."""
    answer = subprocess.run(
        ["npm", "pack", f"{package.name}@{package.version}", "--json", "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    tarball = workdir / json.loads(answer.stdout)[0]["filename"]
    check_integrity(tarball, package.integrity)
    return tarfile.open(tarball, "r:gz")


def member(archive: tarfile.TarFile, path: str) -> bytes:
    extracted = archive.extractfile(f"package/{path}")
    if extracted is None:
        raise SystemExit(f"{path} is not a regular file in the tarball")
    return extracted.read()


def relative_import(source: str, target: str) -> str:
    """The specifier that reaches vendor/*target* from vendor/*source*."""
    depth = source.count("/")
    prefix = "../" * depth if depth else "./"
    return prefix + target


def rewrite(data: bytes, package: Package, destination: str) -> bytes:
    """Resolve bare specifiers and drop the source-map comment (the maps are not vendored)."""
    data = _SOURCE_MAP.sub(b"\n", data)
    for specifier, target in (package.imports or {}).items():
        relative = relative_import(destination, target).encode()
        for quote in (b'"', b"'"):
            data = data.replace(
                b"from" + quote + specifier.encode() + quote, b"from" + quote + relative + quote
            )
            data = data.replace(
                b"from " + quote + specifier.encode() + quote, b"from " + quote + relative + quote
            )
    return data


def vendor_package(package: Package, workdir: Path) -> list[dict[str, str]]:
    with fetch(package, workdir) as archive:
        manifest = json.loads(member(archive, "package.json"))
        if manifest.get("license") != package.license:
            raise SystemExit(f"{package.name}: license is {manifest.get('license')!r}")
        if package.license_file is not None:
            notice = member(archive, package.license_file)
        else:
            # The package ships no LICENSE file: its notice is the source file's header.
            first = member(archive, next(iter(package.files)))
            found = _HEADER_COMMENT.match(first)
            if found is None:
                raise SystemExit(f"{package.name}: no license notice found")
            notice = found.group(0)
        license_path = f"licenses/{package.name}.txt"
        (VENDOR / "licenses").mkdir(parents=True, exist_ok=True)
        (VENDOR / license_path).write_bytes(notice)
        entries = []
        for source, destination in package.files.items():
            original = member(archive, source)
            data = rewrite(original, package, destination)
            target = VENDOR / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entries.append(
                {
                    "file": destination,
                    "name": package.name,
                    "version": package.version,
                    "license": package.license,
                    "license_file": license_path,
                    "source": f"{package.name}@{package.version}/{source}",
                    "source_sha256": sha256(original),
                    "sha256": sha256(data),
                }
            )
        return entries


def main() -> int:
    if shutil.which("npm") is None:
        print("npm is needed to vendor the console libraries", file=sys.stderr)
        return 1
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    files: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sealhub-vendor-") as tmp:
        for package in PACKAGES:
            files.extend(vendor_package(package, Path(tmp)))
    packages = [
        {"name": p.name, "version": p.version, "integrity": p.integrity, "license": p.license}
        for p in PACKAGES
    ]
    record = {"generated_by": "tools/vendor_console.py", "packages": packages, "files": files}
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    (VENDOR / "VENDOR.json").write_text(text, encoding="utf-8")
    for entry in files:
        print(f"{entry['file']}  {entry['source']}  {entry['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
