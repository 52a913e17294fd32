"""A machine that cannot draw seals: ``serve`` refuses to start, ``/readyz`` names the gap.

"A machine without a CJK font" is made real with a private mount namespace: an empty tmpfs
over /usr/share/fonts hides every font from the gateway process and from fontconfig.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import start_gateway

FONTS = "/usr/share/fonts"
# As root a mount namespace is enough; otherwise a user namespace grants the mount.
PRIVATE_MOUNTS = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
HIDE_FONTS = [*PRIVATE_MOUNTS, "sh", "-c", f'mount -t tmpfs none {FONTS} && exec "$@"', "sh"]


def test_serve_without_a_cjk_font_refuses_to_start_and_names_the_package(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [*HIDE_FONTS, sys.executable, "-m", "gateway", "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot draw seals" in result.stderr
    assert "apt-get install fonts-wqy-zenhei" in result.stderr
    # Refused before anything was set up: no database, no PKI in the data directory.
    assert not any(tmp_path.iterdir())


def test_readyz_reports_a_seal_font_that_went_away(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    flag = tmp_path_factory.mktemp("flag") / "hide-fonts-now"
    # The gateway starts with its fonts; when the test touches *flag*, they vanish under it.
    hide_later = [
        *PRIVATE_MOUNTS,
        "sh",
        "-c",
        "\"$@\" & server=$!; trap 'kill -TERM $server' TERM;"
        f" while [ ! -e {flag} ]; do sleep 0.1; done; mount -t tmpfs none {FONTS};"
        " wait $server; wait $server",
        "sh",
    ]
    running = start_gateway(
        db_url, tmp_path_factory.mktemp("gw-font"), demo=False, wrapper=hide_later
    )
    try:
        with running.client() as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["seal_font"] == "ok"
            flag.touch()
            deadline = time.monotonic() + 10
            while (answer := client.get("/readyz")).status_code == 200:
                assert time.monotonic() < deadline, "readyz never noticed the missing font"
                time.sleep(0.2)
            assert answer.status_code == 503
            body = answer.json()
            assert body["code"] == "not_ready"
            assert body["checks"]["database"] == "ok"
            assert body["checks"]["objects"] == "ok"
            assert "fonts-wqy-zenhei" in body["checks"]["seal_font"]
            assert "seal_font" in body["detail"]
    finally:
        running.stop()
