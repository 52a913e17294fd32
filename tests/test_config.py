"""Configuration: precedence, validation that names the setting, docs in step with code."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import SETTINGS, ConfigError, load_settings, settings_table_markdown
from tests.conftest import REPO


def test_defaults_give_a_local_https_gateway(tmp_path: Path) -> None:
    settings = load_settings({"SEALHUB_DATA_DIR": str(tmp_path)})
    assert settings.public_url == "https://127.0.0.1:8443"
    assert settings.database_url is None and settings.s3 is None
    assert settings.max_document_bytes == 256 * 1024 * 1024
    assert settings.max_json_bytes == 1024 * 1024
    assert settings.data_dir == tmp_path.resolve()


def test_precedence_toml_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "sealhub.toml"
    config.write_text(
        'SEALHUB_PORT = 9000\nSEALHUB_HOST = "0.0.0.0"\nSEALHUB_LOG_LEVEL = "debug"\n'
    )
    settings = load_settings(
        {"SEALHUB_CONFIG": str(config), "SEALHUB_PORT": "9100"}, overrides={"SEALHUB_PORT": "9200"}
    )
    assert settings.port == 9200
    assert settings.log_level == "debug"
    assert settings.public_url == "https://localhost:9200"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SEALHUB_PORT": "http"}, "SEALHUB_PORT"),
        ({"SEALHUB_PORT": "70000"}, "SEALHUB_PORT"),
        ({"SEALHUB_PUBLIC_URL": "http://plain.example"}, "SEALHUB_PUBLIC_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"S3_ENDPOINT": "http://minio:9000"}, "S3_ACCESS_KEY"),
        ({"SEALHUB_MAX_DOCUMENT_BYTES": "-1"}, "SEALHUB_MAX_DOCUMENT_BYTES"),
        ({"SEALHUB_LOG_LEVEL": "loud"}, "SEALHUB_LOG_LEVEL"),
        ({"SEALHUB_HOST": "bad host!"}, "SEALHUB_HOST"),
        ({"SEALHUB_SIGN_FOR_URGENT_HOURS": "0"}, "SEALHUB_SIGN_FOR_URGENT_HOURS"),
        ({"SEALHUB_SIGN_FOR_NORMAL_HOURS": "nan"}, "SEALHUB_SIGN_FOR_NORMAL_HOURS"),
        # Far beyond what a due time (a datetime) can hold: refused at start, not a 500 later.
        ({"SEALHUB_SIGN_FOR_NORMAL_HOURS": "1e9"}, "SEALHUB_SIGN_FOR_NORMAL_HOURS"),
        ({"SEALHUB_APPROVAL_OVERDUE_HOURS": "1e12"}, "SEALHUB_APPROVAL_OVERDUE_HOURS"),
    ],
)
def test_bad_values_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": "mysql://user:hunter2@db"})
    assert "hunter2" not in str(caught.value)
    settings = load_settings(
        {
            "S3_ENDPOINT": "https://s3.example:9000",
            "S3_ACCESS_KEY": "AK",
            "S3_SECRET_KEY": "s3cr3t",
            "SEALHUB_MASTER_KEY": "bWFzdGVy",
            "DATABASE_URL": "postgresql://u:pw@db/x",
        }
    )
    assert "s3cr3t" not in repr(settings) and "pw@db" not in repr(settings)
    assert (
        settings.s3 is not None and settings.s3.secure and settings.s3.endpoint == "s3.example:9000"
    )


def test_unknown_toml_key_and_bad_toml_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "sealhub.toml"
    config.write_text("SEALHUB_PROT = 1\n")
    with pytest.raises(ConfigError, match="SEALHUB_PROT"):
        load_settings({"SEALHUB_CONFIG": str(config)})
    config.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="SEALHUB_CONFIG"):
        load_settings({"SEALHUB_CONFIG": str(config)})


def test_readme_table_lists_every_setting() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    assert settings_table_markdown() in readme
    assert len(SETTINGS) >= 10


def test_the_pkcs11_key_store_needs_module_token_and_one_pin(tmp_path: Path) -> None:
    module = tmp_path / "libtoken.so"
    module.write_bytes(b"\x7fELF")
    pin_file = tmp_path / "pin"
    pin_file.write_text("4711-secret\n")
    base = {
        "SEALHUB_KEYSTORE": "pkcs11",
        "SEALHUB_PKCS11_MODULE": str(module),
        "SEALHUB_PKCS11_TOKEN": "sealhub",
    }
    from_file = load_settings({**base, "SEALHUB_PKCS11_PIN_FILE": str(pin_file)})
    assert from_file.pkcs11 is not None
    assert (from_file.pkcs11.module, from_file.pkcs11.token_label) == (module, "sealhub")
    assert from_file.pkcs11.pin == "4711-secret"
    assert "4711" not in repr(from_file)
    assert load_settings({**base, "SEALHUB_PKCS11_PIN": "4711-secret"}).pkcs11 == from_file.pkcs11
    assert load_settings({}).pkcs11 is None
    for environ, named in (
        ({**base}, "SEALHUB_PKCS11_PIN"),
        (
            {**base, "SEALHUB_PKCS11_PIN": "1", "SEALHUB_PKCS11_PIN_FILE": str(pin_file)},
            "SEALHUB_PKCS11_PIN",
        ),
        ({**base, "SEALHUB_PKCS11_TOKEN": "", "SEALHUB_PKCS11_PIN": "1"}, "SEALHUB_PKCS11_TOKEN"),
        ({"SEALHUB_KEYSTORE": "pkcs11", "SEALHUB_PKCS11_PIN": "1"}, "SEALHUB_PKCS11_MODULE"),
        ({**base, "SEALHUB_PKCS11_MODULE": str(tmp_path / "none.so")}, "SEALHUB_PKCS11_MODULE"),
        # Set without the backend: the operator believes the keys are in hardware.
        ({"SEALHUB_PKCS11_TOKEN": "sealhub"}, "SEALHUB_PKCS11_TOKEN"),
        ({"SEALHUB_KEYSTORE": "hsm"}, "SEALHUB_KEYSTORE"),
    ):
        with pytest.raises(ConfigError, match=named) as refused:
            load_settings(environ)
        assert "4711" not in str(refused.value)
