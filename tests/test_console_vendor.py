"""The console's vendored libraries are exactly what tools/vendor_console.py wrote from npm:
every file listed with its SHA-256, every listed file present, each with its license text,
and no bare import specifier left that a browser without an import map could not resolve."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tools.vendor_console import PACKAGES

VENDOR = REPO / "gateway" / "console" / "static" / "vendor"
# `from "x"`, `import "x"` and `import("x")` whose x is neither relative nor absolute
BARE_IMPORT = re.compile(r"""(?<![\w.$"'])(?:from|import)\s*\(?\s*["']([A-Za-z@][\w@/.-]*)["']""")


def _record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads((VENDOR / "VENDOR.json").read_text("utf-8"))
    return record


def _vendored_files() -> set[str]:
    return {
        path.relative_to(VENDOR).as_posix()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name != "VENDOR.json" and path.parent.name != "licenses"
    }


def test_every_vendored_file_is_listed_with_its_sha256() -> None:
    files = _record()["files"]
    listed = {entry["file"] for entry in files}
    assert listed == _vendored_files(), "vendor/ and VENDOR.json disagree: run the tool again"
    for entry in files:
        data = (VENDOR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]


def test_every_file_has_its_package_license() -> None:
    licenses = {p.name: p.license for p in PACKAGES}
    for entry in _record()["files"]:
        assert entry["license"] == licenses[entry["name"]], entry["file"]
        notice = VENDOR / entry["license_file"]
        assert notice.is_file(), f"{entry['file']}: no license text"
        text = notice.read_text("utf-8")
        assert (
            ("MIT" in text or "Permission is hereby granted" in text)
            if entry["license"] == "MIT"
            else "Apache License" in text
        ), notice.name


def test_the_record_matches_the_pins_of_the_tool() -> None:
    pinned = {(p.name, p.version, p.integrity) for p in PACKAGES}
    recorded = {(p["name"], p["version"], p["integrity"]) for p in _record()["packages"]}
    assert recorded == pinned
    for entry in _record()["files"]:
        assert entry["source"].startswith(f"{entry['name']}@{entry['version']}/")


def test_no_bare_import_specifier_is_left() -> None:
    for name in _vendored_files():
        text = (VENDOR / name).read_text("utf-8")
        assert BARE_IMPORT.findall(text) == [], name


def test_no_source_map_is_referenced() -> None:
    for name in _vendored_files():
        assert "sourceMappingURL" not in (VENDOR / name).read_text("utf-8"), Path(name).name
