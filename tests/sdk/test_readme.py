"""clients/python_sdk/README.md works as written: its quick start (Python, then sealctl) is
run against a real gateway, on two "machines" (a home directory and working directory
each), with only the placeholders replaced by the ids, codes and keys of this gateway."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import sealhub_sdk
from sealhub_sdk import Client, DeviceKey

from tests.conftest import Gateway, create_official_in_db
from tests.sdk.conftest import simple_pdf

README = Path(sealhub_sdk.__file__).resolve().parent.parent / "README.md"
EXAMPLE_URL = "https://sealhub.yulin.gov.cn:8443"
EXAMPLE_LOG_KEY = '"sealhub.yulin/audit+1a2b3c4d+AQ..."'
SENDER, RECIPIENT = "yl-jyj", "yl-fgw"
TITLE = "关于开展安全生产检查的通知"


def quick_start() -> str:
    return README.read_text("utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", quick_start(), re.S)


def sealctl_block() -> str:
    section = quick_start().split("### The same with `sealctl`", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def machine(gateway: Gateway, where: Path) -> Path:
    """A working directory with ca.pem and 通知.pdf, and its own home directory."""
    (where / "home").mkdir(parents=True)
    shutil.copy(gateway.ca_path, where / "ca.pem")
    (where / "通知.pdf").write_bytes(simple_pdf(pages=2, title="Notice"))
    return where


def substitute(text: str, gateway: Gateway, values: dict[str, str]) -> str:
    text = text.replace(EXAMPLE_URL, gateway.base_url)
    for placeholder, value in values.items():
        assert placeholder in text, f"{placeholder} is not in the README block any more"
        text = text.replace(placeholder, value)
    return text


def run_python(gateway: Gateway, block: str, where: Path, **values: str) -> str:
    code = substitute(block, gateway, values)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=where,
        env={**os.environ, "HOME": str(where / "home")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def log_key(gateway: Gateway) -> str:
    with gateway.client() as http:
        key: str = http.get("/v1/audit/log-key").json()["verifier_key"]
    return key


def ensure_seal(gateway: Gateway, department: str) -> None:
    """Two admins issue *department* a seal unless it has one (README step 2)."""
    admins = []
    for _ in range(2):
        official, code = create_official_in_db(gateway.database_url, "yl", ["admin"])
        client = Client(gateway.base_url, ca_file=gateway.ca_path, key=DeviceKey.generate())
        client.enroll(official, code)
        client.login()
        admins.append(client)
    try:
        if not any(s.status == "active" for s in admins[0].department_seals(department).items):
            request = admins[0].request_seal(department)
            admins[1].approve_seal_request(request.id)
    finally:
        for client in admins:
            client.close()


def test_python_quick_start_runs_as_written(gateway: Gateway, tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) == 5, "update this test with the README's quick start"
    enroll, seal, send, receive, receipt = blocks
    database = gateway.database_url
    sender_id, sender_code = create_official_in_db(
        database, SENDER, ["seal_keeper", "system"], "教育局发文系统"
    )
    receiver_id, receiver_code = create_official_in_db(
        database, RECIPIENT, ["system"], "发改委收文系统"
    )
    (admin1, code1), (admin2, code2) = (
        create_official_in_db(database, "yl", ["admin"]) for _ in range(2)
    )
    sender = machine(gateway, tmp_path / "jyj")
    receiver = machine(gateway, tmp_path / "fgw")

    # 1. each side makes and enrolls its key
    for where, official, code in (
        (sender, sender_id, sender_code),
        (receiver, receiver_id, receiver_code),
    ):
        run_python(gateway, enroll, where, **{"OFFICIAL-ID": official, "ENROLLMENT-CODE": code})
        assert (where / "home/.config/sealhub/device-key.pem").stat().st_mode & 0o777 == 0o600

    # 2. two admins issue the sending department's seal
    admins = machine(gateway, tmp_path / "admins")
    out = run_python(
        gateway,
        seal,
        admins,
        **{
            "ADMIN-1-ID": admin1,
            "ADMIN-1-CODE": code1,
            "ADMIN-2-ID": admin2,
            "ADMIN-2-CODE": code2,
        },
    )
    assert out.split() == [SENDER, "active"]

    # 3. the sender seals and sends
    out = run_python(gateway, send, sender, **{"OFFICIAL-ID": sender_id})
    assert f"department='{SENDER}'" in out
    document_id, status, sha256 = out.splitlines()[-1].split()
    assert status == "dispatched" and len(sha256) == 64

    # 4. the receiver downloads, checks, signs for it and finds its receipt in the log
    out = run_python(
        gateway,
        receive,
        receiver,
        **{"OFFICIAL-ID": receiver_id, EXAMPLE_LOG_KEY: f'"{log_key(gateway)}"'},
    )
    signed, logged = out.splitlines()
    assert signed.startswith(f"signed for {TITLE} audit entry ")
    assert logged.startswith("delivery.received ")
    assert (receiver / f"{document_id}.pdf").is_file()

    # 5. the sender reads the same receipt
    out = run_python(
        gateway, receipt, sender, **{"OFFICIAL-ID": sender_id, "DOCUMENT-ID": document_id}
    )
    lines = out.splitlines()
    assert lines[0] == f"{RECIPIENT} received"
    assert lines[1].startswith("receive ")


def sealctl_commands(block: str) -> list[str]:
    """The block's command lines, continuation lines joined, comment lines dropped."""
    joined = block.replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_sealctl_quick_start_runs_as_written(gateway: Gateway, tmp_path: Path) -> None:
    ensure_seal(gateway, SENDER)
    database = gateway.database_url
    sender_id, sender_code = create_official_in_db(database, SENDER, ["seal_keeper"], "用印员")
    receiver_id, receiver_code = create_official_in_db(database, RECIPIENT, ["clerk"], "收文员")
    work = machine(gateway, tmp_path)
    sealctl = str(Path(sys.executable).parent / "sealctl")
    env = {**os.environ, "HOME": str(work / "home")}
    values = {
        "RECIPIENT-OFFICIAL-ID": receiver_id,
        "RECIPIENT-ENROLLMENT-CODE": receiver_code,
        "OFFICIAL-ID": sender_id,
        "ENROLLMENT-CODE": sender_code,
    }
    outputs: dict[str, str] = {}
    for command in sealctl_commands(sealctl_block()):
        words = shlex.split(command, comments=True)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value.replace("~", str(work / "home"), 1)
            continue
        assert words[0] == "sealctl", command
        for placeholder, value in values.items():
            words = [w.replace(placeholder, value) for w in words]
        words = [w.replace(EXAMPLE_URL, gateway.base_url) for w in words]
        result = subprocess.run(
            [sealctl, *words[1:]], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        outputs[words[1]] = result.stdout
        if words[1] == "send":
            sent = re.match(r"document (\S+): dispatched", result.stdout)
            assert sent is not None, result.stdout
        if words[1] == "inbox":
            row = next(line for line in result.stdout.splitlines() if TITLE in line)
            values["DELIVERY-ID"], values["DOCUMENT-ID"] = row.split()[:2]
            assert values["DOCUMENT-ID"] == sent.group(1)
    assert "VALID" in outputs["verify"]
    assert "signed for delivery" in outputs["sign-for"]
    assert "audit log OK" in outputs["audit"]
    assert (work / "home/.sealhub-fgw/config.json").is_file()
