"""``./dev.sh demo`` as a person runs it: text logs at a terminal, then what to do next."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO, free_port

TEXT_REQUEST_LOG = re.compile(
    r"^\d\d:\d\d:\d\d info +sealhub\.http: \[[^\]]+\] GET /healthz 200  duration_ms=",
    re.MULTILINE,
)


def _demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALHUB_", "DATABASE_"))}
    return env


def _read_until(fd: int, seen: bytearray, needle: bytes, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"never saw {needle!r} in:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: the program ended
                chunk = b""
            assert chunk, f"the demo ended early:\n{seen.decode(errors='replace')}"
            seen += chunk
    return seen.decode(errors="replace").replace("\r\n", "\n")


def _healthz(origin: str, ca: Path) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as client:
        assert client.get(origin + "/healthz").status_code == 200


def _first_admin_gets_its_console_link(data_dir: Path, origin: str, cwd: Path) -> None:
    """``official create`` as the hint says (no port given) prints the link to this instance."""
    hint = f"--data-dir {data_dir} --department yl --name 管理员 --roles admin"
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "official", "create", *hint.split()],
        capture_output=True,
        text=True,
        env=_demo_env(),
        cwd=cwd,
        timeout=120,
        check=True,
    )
    official = re.search(r"official id: +(\S+)", made.stdout)
    code = re.search(r"enrollment code: +(\S+)", made.stdout)
    assert official and code, made.stdout
    link = f"{origin}/console/#/enroll/{official.group(1)}/{code.group(1)}"
    assert f"enroll in the console (open it in the official's own browser): {link}\n" in (
        made.stdout
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_demo_at_a_terminal_logs_text_and_says_what_to_do_next(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(REPO / "dev.sh"), "demo", "--data-dir", str(data_dir), "--port", str(port)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=_demo_env(),
        cwd=tmp_path,
    )
    os.close(terminal)
    seen = bytearray()
    try:
        shown = _read_until(controller, seen, b"stop the gateway with Ctrl-C", 180)
        ca = data_dir / "pki" / "ca.pem"
        assert f"sealhub is ready at {origin}\nconsole: {origin}/console/\n" in shown
        steps = shown[shown.index("Next steps") :]
        assert f"curl --cacert {ca} {origin}/readyz" in steps
        assert f"official create --data-dir {data_dir}" in steps
        # The first admin: the exact command, then its console link enrolls the browser.
        command = f"official create --data-dir {data_dir} \\\n"
        command += "           --department yl --name 管理员 --roles admin\n"
        assert command in steps
        _first_admin_gets_its_console_link(data_dir, origin, tmp_path)
        assert "sealctl enroll --server" in steps
        # dev.sh runs from the clone, so the guides are named relative to it.
        assert "\n    clients/python_sdk/README.md\n" in steps
        assert (REPO / "clients" / "python_sdk" / "README.md").is_file()
        _healthz(origin, ca)
        shown = _read_until(controller, seen, b"GET /healthz 200", 30)
        assert TEXT_REQUEST_LOG.search(shown), shown
        assert not any(line.startswith("{") for line in shown.splitlines())
        assert "Warning" not in shown  # nothing but our own lines reach the person
    finally:
        _stop(process)
        os.close(controller)

    # The same command with its output going to a file or pipe keeps JSON lines.
    piped = subprocess.Popen(
        [str(REPO / "dev.sh"), "demo", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_demo_env(),
        cwd=tmp_path,
    )
    try:
        assert piped.stdout is not None and piped.stderr is not None
        out = bytearray()
        _read_until(piped.stdout.fileno(), out, b"Ctrl-C", 120)
        _healthz(origin, data_dir / "pki" / "ca.pem")
        err = bytearray()
        text = _read_until(piped.stderr.fileno(), err, b"/healthz", 30)
        request_line = next(line for line in text.splitlines() if "/healthz" in line)
        entry = json.loads(request_line)
        assert entry["message"] == "GET /healthz 200" and entry["level"] == "info"
    finally:
        _stop(piped)
