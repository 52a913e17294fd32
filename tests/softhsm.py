"""A softhsm2 token directory for the PKCS#11 tests (``./dev.sh test`` installs softhsm2).

The module reads ``SOFTHSM2_CONF`` once, when a process first loads it, and sees no token
initialised after that; so one directory per test session holds a few tokens made up front,
and each test takes one nobody used (a fresh token). Gateway processes started by tests
inherit ``SOFTHSM2_CONF`` and load the module afresh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
PIN = "worker-pin-1234"
SO_PIN = "so-pin-87654321"
TOKENS = 16


@dataclass
class SoftHsm:
    module: str
    conf: Path
    unused: list[str] = field(default_factory=list)

    def fresh_token(self) -> str:
        """The label of a token no test has used yet."""
        if not self.unused:
            pytest.fail(f"all {TOKENS} softhsm2 test tokens are used: raise TOKENS")
        return self.unused.pop(0)

    def env(self, label: str, **extra: str) -> dict[str, str]:
        """A gateway's settings for the token *label*."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "SEALHUB_KEYSTORE": "pkcs11",
            "SEALHUB_PKCS11_MODULE": self.module,
            "SEALHUB_PKCS11_TOKEN": label,
            "SEALHUB_PKCS11_PIN": PIN,
            **extra,
        }


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    util = shutil.which("softhsm2-util")
    module = next((m for m in MODULES if Path(m).is_file()), None)
    if util is None or module is None:
        pytest.fail("softhsm2 is required for the PKCS#11 tests (./dev.sh test installs it)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    labels = [f"sealhub-test-{n}" for n in range(TOKENS)]
    for label in labels:
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
            check=True,
            capture_output=True,
        )
    return SoftHsm(module, conf, labels)
