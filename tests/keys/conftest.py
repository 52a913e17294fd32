"""Fixtures shared by the keys tests: a fixed clock, a master key and openssl helpers."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keys.master import MasterKey
from keys.platform import PlatformPki, ensure_platform_pki

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PUBLIC_URL = "https://gateway.test:8443"


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def platform(tmp_path: Path, master_key: MasterKey) -> PlatformPki:
    return ensure_platform_pki(
        tmp_path / "data",
        public_url=PUBLIC_URL,
        hostnames=["localhost", "127.0.0.1"],
        master_key=master_key,
        now=datetime.now(UTC),
    )


@pytest.fixture
def public_url() -> str:
    return PUBLIC_URL


class OpenSsl:
    """Runs the real openssl binary; tests read its verdict from stdout and the exit code."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def __call__(
        self, *args: str | Path, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
        )


@pytest.fixture(scope="session")
def openssl() -> OpenSsl:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl is required for the PKI tests")
    return OpenSsl(binary)
