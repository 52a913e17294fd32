"""sealctl against a real gateway: enroll, login, send, inbox, fetch, sign-for, verify and
audit verify, as an official types them (JSON output parsed, errors read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sealhub_sdk import Client, DeviceKey
from sealhub_sdk._internal.cli import main

from tests.conftest import Gateway, create_official_in_db
from tests.sdk.conftest import simple_pdf

SENDER, RECIPIENT = "yl-sfj", "yl-jyj"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        parsed = json.loads(out) if out.strip() else None
    except ValueError:
        parsed = out
    return code, parsed, err


def enroll_profile(
    gateway: Gateway,
    capsys: pytest.CaptureFixture[str],
    profile: Path,
    department: str,
    roles: list[str],
) -> str:
    official, code = create_official_in_db(gateway.database_url, department, roles)
    status, _, err = run(
        capsys,
        "--json",
        "--profile",
        str(profile),
        "enroll",
        "--server",
        gateway.base_url,
        "--ca-file",
        str(gateway.ca_path),
        "--official",
        official,
        "--code",
        code,
    )
    assert status == 0, err
    assert (profile / "device-key.pem").stat().st_mode & 0o777 == 0o600
    assert json.loads((profile / "config.json").read_text())["official_id"] == official
    return official


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALCTL_PASSWORD", "sealctl test password")


def _department_has_a_seal(gateway: Gateway) -> None:
    admins = []
    for _ in range(2):
        official, code = create_official_in_db(gateway.database_url, "yl", ["admin"])
        client = Client(
            gateway.base_url,
            ca_file=gateway.ca_path,
            key=DeviceKey.generate(),
            official_id=official,
        )
        client.enroll(official, code)
        client.login()
        admins.append(client)
    request = admins[0].request_seal(SENDER)
    admins[1].approve_seal_request(request.id)
    for client in admins:
        client.close()


def test_sealctl_exchange(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _department_has_a_seal(gateway)
    sender = tmp_path / "sender"
    recipient = tmp_path / "recipient"
    enroll_profile(gateway, capsys, sender, SENDER, ["seal_keeper"])
    enroll_profile(gateway, capsys, recipient, RECIPIENT, ["clerk"])

    status, me, _ = run(capsys, "--profile", str(recipient), "--json", "login")
    assert status == 0 and me["department"] == RECIPIENT

    pdf = tmp_path / "通知.pdf"
    pdf.write_bytes(simple_pdf())
    status, sent, err = run(
        capsys,
        "--profile",
        str(sender),
        "send",
        str(pdf),
        "--to",
        RECIPIENT,
        "--title",
        "关于做好节日值班的通知",
        "--doc-number",
        "玉司发〔2026〕3号",
        "--json",
    )
    assert status == 0, err
    assert sent["status"] == "dispatched"

    status, inbox, _ = run(capsys, "--profile", str(recipient), "--json", "inbox")
    item = next(i for i in inbox["items"] if i["document"]["id"] == sent["id"])

    status, table, _ = run(capsys, "--profile", str(recipient), "inbox")
    assert "关于做好节日值班的通知" in table and "DELIVERY" in table

    fetched = tmp_path / "fetched.pdf"
    status, download, _ = run(
        capsys, "--profile", str(recipient), "--json", "fetch", sent["id"], "-o", str(fetched)
    )
    assert status == 0 and download["sha256"] == sent["sha256"]

    status, report, _ = run(capsys, "--profile", str(recipient), "--json", "verify", str(fetched))
    assert status == 0 and report["valid"] is True

    status, receipt, err = run(
        capsys,
        "--profile",
        str(recipient),
        "--json",
        "sign-for",
        item["id"],
        "--file",
        str(fetched),
    )
    assert status == 0, err
    assert receipt["state"] == "received"

    status, audit, err = run(capsys, "--profile", str(recipient), "--json", "audit", "verify")
    assert status == 0, err
    assert audit["tree_size"] > 0
    assert "pinned" in err  # first use pins the log key in the profile
    status, again, err = run(capsys, "--profile", str(recipient), "--json", "audit", "verify")
    assert status == 0, err
    assert again["consistent_with"] == audit["tree_size"]


def test_sealctl_errors_are_readable(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    profile = tmp_path / "p"
    enroll_profile(gateway, capsys, profile, RECIPIENT, ["clerk"])
    status, _, err = run(capsys, "--profile", str(profile), "fetch", "no-such-document")
    assert status == 1
    assert "not_found" in err and "request id" in err
    status, _, err = run(capsys, "--profile", str(tmp_path / "empty"), "login")
    assert status == 2 and "not_configured" in err


def test_sealctl_wrong_password(
    gateway: Gateway,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = tmp_path / "p"
    enroll_profile(gateway, capsys, profile, RECIPIENT, ["clerk"])
    monkeypatch.setenv("SEALCTL_PASSWORD", "not the password")
    status, _, err = run(capsys, "--profile", str(profile), "login")
    assert status == 2 and "key_unreadable" in err
    assert "not the password" not in err


def test_sealctl_takes_codes_that_start_with_a_dash(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Enrollment codes are URL-safe base64: one in 64 starts with "-". argparse alone would
    read ``--code -Tvud...`` as a missing value; sealctl passes it on to the gateway."""
    official, _ = create_official_in_db(gateway.database_url, RECIPIENT, ["clerk"])
    for code_option in (["--code", "-TvudgcHucNwXAOY8"], ["--code=-TvudgcHucNwXAOY8"]):
        status, _, err = run(
            capsys,
            "--profile",
            str(tmp_path / "p"),
            "enroll",
            "--server",
            gateway.base_url,
            "--ca-file",
            str(gateway.ca_path),
            "--official",
            official,
            *code_option,
        )
        assert status == 1 and "enrollment_code_invalid" in err  # the gateway's answer
