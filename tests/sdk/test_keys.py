"""The device key file: encrypted, owner-only, never overwritten, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sealhub_sdk import ConfigurationError, DeviceKey


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    key = DeviceKey.generate()
    path = key.save(tmp_path / "sub" / "key.pem", "correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "ENCRYPTED PRIVATE KEY" in text
    loaded = DeviceKey.load(path, "correct horse")
    assert loaded.thumbprint == key.thumbprint


def test_wrong_password_is_a_readable_error(tmp_path: Path) -> None:
    path = DeviceKey.generate().save(tmp_path / "key.pem", "right")
    with pytest.raises(ConfigurationError) as refused:
        DeviceKey.load(path, "Zq9-guess")
    assert refused.value.code == "key_unreadable"
    assert "Zq9-guess" not in str(refused.value)


def test_refuses_to_overwrite_and_empty_passwords(tmp_path: Path) -> None:
    path = DeviceKey.generate().save(tmp_path / "key.pem", "pw")
    with pytest.raises(ConfigurationError) as exists:
        DeviceKey.generate().save(path, "pw")
    assert exists.value.code == "key_exists"
    with pytest.raises(ConfigurationError):
        DeviceKey.generate().save(tmp_path / "other.pem", "")
    replaced = DeviceKey.generate()
    replaced.save(path, "pw", overwrite=True)
    assert DeviceKey.load(path, "pw").thumbprint == replaced.thumbprint


def test_repr_shows_no_key_material() -> None:
    key = DeviceKey.generate()
    assert repr(key) == f"DeviceKey(thumbprint={key.thumbprint!r})"


def test_signature_is_raw_64_bytes() -> None:
    assert len(DeviceKey.generate().sign(b"x")) == 64
