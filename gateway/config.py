"""All configuration in one place: environment (and an optional TOML file) into frozen dataclasses.

Every setting is declared once in :data:`SETTINGS`, with its parser and its documentation;
the README table is checked against that list by a test, so the two cannot drift. A bad
value stops start-up with a message that names the setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keys.codes import Code, CodedError

MIB = 1024 * 1024


class ConfigError(CodedError):
    """A setting is missing or malformed; the message names it."""

    code = Code.CONFIG_ERROR


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    bucket: str
    region: str
    secure: bool


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the token of ``SEALHUB_KEYSTORE=pkcs11`` is and how to log in to it."""

    module: Path
    token_label: str
    pin: str = field(repr=False)


@dataclass(frozen=True)
class SupervisionSettings:
    """E-supervision: how often the rules run and their thresholds."""

    interval_seconds: float = 30.0
    approval_overdue_hours: float = 24.0
    burst_window_minutes: int = 10
    failed_login_burst: int = 10
    denied_access_burst: int = 20
    revoked_seal_alert_hours: float = 24.0
    sign_for_very_urgent_hours: float = 2.0
    sign_for_urgent_hours: float = 24.0
    sign_for_normal_hours: float = 72.0

    def sign_for_within(self) -> dict[str, timedelta]:
        """How long a recipient has to sign for a delivery without a deadline, by urgency."""
        return {
            "very_urgent": timedelta(hours=self.sign_for_very_urgent_hours),
            "urgent": timedelta(hours=self.sign_for_urgent_hours),
            "normal": timedelta(hours=self.sign_for_normal_hours),
        }


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str
    port: int
    public_url: str
    database_url: str | None = field(repr=False)
    s3: S3Settings | None
    master_key: str | None = field(repr=False)
    max_document_bytes: int
    max_json_bytes: int
    log_level: str
    log_format: str
    seal_workers: int
    login_rate_per_source: int
    idle_timeout_seconds: float
    supervision: SupervisionSettings
    webhook_ca_file: Path | None = None
    database_owner_url: str | None = field(default=None, repr=False)
    webhook_timeout_seconds: float = 10.0
    dpop_nonce: bool = False
    verify_workers: int = 1
    worker_cpu_seconds: int = 20
    max_verify_bytes: int = 64 * MIB
    verify_concurrency: int = 4
    verify_rate_per_official: int = 60
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    access_token_seconds: int = 900
    metrics_addresses: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    metrics_token: str | None = field(default=None, repr=False)
    pkcs11: Pkcs11Settings | None = None

    @property
    def public_origin(self) -> str:
        """The public URL without a trailing slash: prefix of token `aud`, DPoP `htu`, CRL URLs."""
        return self.public_url.rstrip("/")

    @property
    def public_hostnames(self) -> list[str]:
        """Names the TLS certificate must cover: the public host plus the listening host."""
        names = [urlsplit(self.public_url).hostname or "localhost"]
        for extra in (self.host, "localhost", "127.0.0.1"):
            if extra not in names and extra not in ("0.0.0.0", "::"):  # noqa: S104
                names.append(extra)
        return names


@dataclass(frozen=True)
class Setting:
    """One configuration knob: where it comes from, how it is parsed, what it means."""

    env: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError("must be between 1 and 65535")
    return port


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


_HOSTNAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a positive number")
    return number


MAX_HOURS = 87_600.0  # ten years: beyond any due time, within what datetimes can hold


def _hours(value: str) -> float:
    number = _positive_float(value)
    if number > MAX_HOURS:
        raise ValueError(f"must be at most {MAX_HOURS:g} hours")
    return number


def _host(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError("must be an IP address or a host name") from None
    return value


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return value.rstrip("/")


def _postgres_url(value: str) -> str:
    if urlsplit(value).scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a postgresql:// URL")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


def _existing_file(value: str) -> Path:
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise ValueError("must name an existing file")
    return path


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError("must be one of " + ", ".join(allowed))
        return value.lower()

    return parse


def _text(value: str) -> str:
    return value


def _secret_token(value: str) -> str:
    if len(value) < 16 or not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("must be at least 16 printable ASCII characters without spaces")
    return value


def _token_seconds(value: str) -> int:
    number = int(value)
    if not 10 <= number <= 3600:
        raise ValueError("must be between 10 and 3600 seconds")
    return number


def _networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated IP addresses or CIDR networks; ``none`` for none."""
    if value.strip().lower() == "none":
        return ()
    networks = []
    for item in value.split(","):
        if item.strip():
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
    return tuple(networks)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SEALHUB_DATA_DIR",
        "data_dir",
        Path,
        Path("sealhub-data"),
        "Data directory: embedded PostgreSQL, object files, keys, `pki/ca.pem`.",
    ),
    Setting("SEALHUB_HOST", "host", _host, "127.0.0.1", "Address the HTTPS server listens on."),
    Setting("SEALHUB_PORT", "port", _port, 8443, "Port the HTTPS server listens on."),
    Setting(
        "SEALHUB_PUBLIC_URL",
        "public_url",
        _https_url,
        None,
        "The one public origin (token `aud`, DPoP `htu`, CRL URLs, webhooks); "
        "default `https://<host>:<port>`.",
    ),
    Setting(
        "DATABASE_URL",
        "database_url",
        _postgres_url,
        None,
        "PostgreSQL URL of the gateway's application login (`sealhub_app`: no superuser, "
        "not a member of `sealhub_owner`; `serve` refuses anything more); unset: embedded "
        "PostgreSQL in the data directory.",
        secret=True,
    ),
    Setting(
        "DATABASE_OWNER_URL",
        "database_owner_url",
        _postgres_url,
        None,
        "PostgreSQL URL of the schema owner's login (`sealhub_owner`), used only for "
        "migrations: by `sealhub migrate`, or by `serve` before its pool opens. Unset: `serve` "
        "only checks the schema is current.",
        secret=True,
    ),
    Setting(
        "S3_ENDPOINT",
        "s3_endpoint",
        _http_url,
        None,
        "S3/MinIO endpoint URL; unset: encrypted files in the data directory.",
    ),
    Setting("S3_ACCESS_KEY", "s3_access_key", _text, None, "S3 access key.", secret=True),
    Setting("S3_SECRET_KEY", "s3_secret_key", _text, None, "S3 secret key.", secret=True),
    Setting("S3_BUCKET", "s3_bucket", _text, "sealhub", "S3 bucket, created if missing."),
    Setting("S3_REGION", "s3_region", _text, "us-east-1", "S3 region."),
    Setting(
        "SEALHUB_MASTER_KEY",
        "master_key",
        _text,
        None,
        "Base64 of 32 bytes that encrypt every key and object at rest; unset: "
        "`<data dir>/secrets/master.key` (0600), created on first start.",
        secret=True,
    ),
    Setting(
        "SEALHUB_KEYSTORE",
        "keystore",
        _choice("file", "pkcs11"),
        "file",
        "`file`: every private key in `<data dir>/keystore`, encrypted under the master key. "
        "`pkcs11`: seal, TSA, checkpoint, token and receipt keys made and used in a PKCS#11 "
        "token (never extractable); the CA and TLS keys stay on file.",
    ),
    Setting(
        "SEALHUB_PKCS11_MODULE",
        "pkcs11_module",
        _existing_file,
        None,
        "The token's PKCS#11 library (e.g. `/usr/lib/softhsm/libsofthsm2.so`).",
    ),
    Setting("SEALHUB_PKCS11_TOKEN", "pkcs11_token", _text, None, "Label of the token."),
    Setting(
        "SEALHUB_PKCS11_PIN",
        "pkcs11_pin",
        _text,
        None,
        "User PIN of the token (or `SEALHUB_PKCS11_PIN_FILE`); never logged.",
        secret=True,
    ),
    Setting(
        "SEALHUB_PKCS11_PIN_FILE",
        "pkcs11_pin_file",
        _existing_file,
        None,
        "File holding the user PIN (one line), instead of `SEALHUB_PKCS11_PIN`.",
    ),
    Setting(
        "SEALHUB_MAX_DOCUMENT_BYTES",
        "max_document_bytes",
        _positive_int,
        256 * MIB,
        "Largest accepted document, in bytes.",
    ),
    Setting(
        "SEALHUB_MAX_JSON_BYTES",
        "max_json_bytes",
        _positive_int,
        1 * MIB,
        "Largest accepted JSON body, in bytes.",
    ),
    Setting(
        "SEALHUB_LOG_LEVEL",
        "log_level",
        _choice("debug", "info", "warning", "error"),
        "info",
        "Log level.",
    ),
    Setting(
        "SEALHUB_LOG_FORMAT",
        "log_format",
        _choice("json", "text"),
        "json",
        "`json` (one object a line, with the request id) or `text`.",
    ),
    Setting(
        "SEALHUB_SEAL_WORKERS",
        "seal_workers",
        _positive_int,
        2,
        "Worker processes that parse and seal PDFs (memory and CPU limited).",
    ),
    Setting(
        "SEALHUB_VERIFY_WORKERS",
        "verify_workers",
        _positive_int,
        1,
        "Worker processes of `POST /v1/verify`, a pool apart from sealing's so verification "
        "never delays a seal.",
    ),
    Setting(
        "SEALHUB_WORKER_CPU_SECONDS",
        "worker_cpu_seconds",
        _positive_int,
        20,
        "CPU seconds one parse, seal or verification may use in its worker; past it the "
        "worker is killed and only that document fails (`pdf_too_complex`).",
    ),
    Setting(
        "SEALHUB_MAX_VERIFY_BYTES",
        "max_verify_bytes",
        _positive_int,
        64 * MIB,
        "Largest PDF `POST /v1/verify` accepts, in bytes.",
    ),
    Setting(
        "SEALHUB_VERIFY_CONCURRENCY",
        "verify_concurrency",
        _positive_int,
        4,
        "Verifications one gateway process runs or queues at once, half of them (at least "
        "one) for any one official; more get `503 verify_busy` with `Retry-After`.",
    ),
    Setting(
        "SEALHUB_VERIFY_RATE_PER_OFFICIAL",
        "verify_rate_per_official",
        _positive_int,
        60,
        "`POST /v1/verify` calls per minute one official may make (shared by all processes).",
    ),
    Setting(
        "SEALHUB_WEBHOOK_CA_FILE",
        "webhook_ca_file",
        _existing_file,
        None,
        "PEM file of extra CA certificates trusted for webhook receivers (besides the "
        "system's), e.g. a government network's internal CA.",
    ),
    Setting(
        "SEALHUB_WEBHOOK_TIMEOUT_SECONDS",
        "webhook_timeout_seconds",
        _positive_float,
        10.0,
        "Seconds a webhook receiver has to resolve and again to answer one attempt.",
    ),
    Setting(
        "SEALHUB_IDLE_TIMEOUT_SECONDS",
        "idle_timeout_seconds",
        _positive_float,
        30.0,
        "Seconds a connection may sit idle or send its headers before it is closed.",
    ),
    Setting(
        "SEALHUB_DPOP_NONCE",
        "dpop_nonce",
        _choice("off", "required"),
        "off",
        "`required`: every DPoP proof must carry a server nonce (RFC 9449 section 8), sent "
        "in `DPoP-Nonce` and valid 5 minutes, so proofs cannot be made ahead of time.",
    ),
    Setting(
        "SEALHUB_ACCESS_TOKEN_SECONDS",
        "access_token_seconds",
        _token_seconds,
        900,
        "Lifetime of an access token (10 to 3600 s); an inbox event stream ends with it.",
    ),
    Setting(
        "SEALHUB_METRICS_ADDRESSES",
        "metrics_addresses",
        _networks,
        "127.0.0.0/8,::1",
        "Comma-separated addresses or CIDR networks that may read `/metrics` without a token "
        "(the client address, after a trusted proxy's PROXY header); `none`: no address.",
    ),
    Setting(
        "SEALHUB_METRICS_TOKEN",
        "metrics_token",
        _secret_token,
        None,
        "Bearer secret (16+ characters) with which any address may read `/metrics` "
        "(`Authorization: Bearer <token>`); unset: only the listed addresses.",
        secret=True,
    ),
    Setting(
        "SEALHUB_LOGIN_RATE_PER_SOURCE",
        "login_rate_per_source",
        _positive_int,
        300,
        "Login, token and enrollment attempts per minute from one address; past it each "
        "further attempt is slowed down (at most 2 s), never refused.",
    ),
    Setting(
        "SEALHUB_TRUSTED_PROXIES",
        "trusted_proxies",
        _networks,
        None,
        "Comma-separated addresses or CIDR networks of TCP proxies that send a PROXY protocol "
        "v2 header (HAProxy `send-proxy-v2`) before TLS; only their headers are read, and they "
        "must send one. The client address it names is used for pacing and audit.",
    ),
    Setting(
        "SEALHUB_SUPERVISION_INTERVAL",
        "supervision_interval",
        _positive_float,
        30.0,
        "Seconds between two passes of the supervision rules (one process evaluates).",
    ),
    Setting(
        "SEALHUB_APPROVAL_OVERDUE_HOURS",
        "approval_overdue_hours",
        _hours,
        24.0,
        "Hours an approval step may wait before it raises an alert.",
    ),
    Setting(
        "SEALHUB_BURST_WINDOW_MINUTES",
        "burst_window_minutes",
        _positive_int,
        10,
        "Window over which failed logins and denied accesses are counted for burst alerts.",
    ),
    Setting(
        "SEALHUB_FAILED_LOGIN_BURST",
        "failed_login_burst",
        _positive_int,
        10,
        "Failed logins in the window, per official or per source address, that raise an alert.",
    ),
    Setting(
        "SEALHUB_DENIED_ACCESS_BURST",
        "denied_access_burst",
        _positive_int,
        20,
        "Denied accesses in the window, per official or per source address, that raise an alert.",
    ),
    Setting(
        "SEALHUB_REVOKED_SEAL_ALERT_HOURS",
        "revoked_seal_alert_hours",
        _hours,
        24.0,
        "Hours an attempt to seal with a revoked seal keeps its alert open.",
    ),
    Setting(
        "SEALHUB_SIGN_FOR_VERY_URGENT_HOURS",
        "sign_for_very_urgent_hours",
        _hours,
        2.0,
        "Hours a recipient has to sign for a very urgent (特急) document without a deadline.",
    ),
    Setting(
        "SEALHUB_SIGN_FOR_URGENT_HOURS",
        "sign_for_urgent_hours",
        _hours,
        24.0,
        "Hours a recipient has to sign for an urgent (加急) document without a deadline.",
    ),
    Setting(
        "SEALHUB_SIGN_FOR_NORMAL_HOURS",
        "sign_for_normal_hours",
        _hours,
        72.0,
        "Hours a recipient has to sign for a normal document without a deadline.",
    ),
)

_BY_ENV = {setting.env: setting for setting in SETTINGS}


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from defaults < TOML file (``SEALHUB_CONFIG``) < env < overrides.

    *overrides* are keyed by environment name and come from command-line flags.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    config_file = environ.get("SEALHUB_CONFIG")
    if config_file:
        raw.update(_read_toml(Path(config_file)))
    raw.update({name: value for name, value in environ.items() if name in _BY_ENV and value})
    raw.update({name: value for name, value in (overrides or {}).items() if value is not None})

    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = raw.get(setting.env)
        if value is None:
            values[setting.attr] = setting.default
            continue
        try:
            values[setting.attr] = setting.parse(str(value))
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(value)
            raise ConfigError(f"{setting.env}: {exc} (got {shown})") from None
    return _assemble(values)


def _read_toml(path: Path) -> dict[str, Any]:
    """A TOML file uses the environment names as keys (``SEALHUB_PORT = 9443``)."""
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"SEALHUB_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SEALHUB_CONFIG: {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(_BY_ENV))
    if unknown:
        raise ConfigError(f"SEALHUB_CONFIG: unknown setting(s) {', '.join(unknown)} in {path}")
    return document


def _assemble(values: dict[str, Any]) -> Settings:
    s3: S3Settings | None = None
    if values["s3_endpoint"]:
        for attr, env in (("s3_access_key", "S3_ACCESS_KEY"), ("s3_secret_key", "S3_SECRET_KEY")):
            if not values[attr]:
                raise ConfigError(f"{env}: required when S3_ENDPOINT is set")
        endpoint = urlsplit(values["s3_endpoint"])
        s3 = S3Settings(
            endpoint=endpoint.netloc,
            access_key=values["s3_access_key"],
            secret_key=values["s3_secret_key"],
            bucket=values["s3_bucket"],
            region=values["s3_region"],
            secure=endpoint.scheme == "https",
        )
    if values["database_owner_url"] and not values["database_url"]:
        raise ConfigError(
            "DATABASE_OWNER_URL: needs DATABASE_URL (the embedded PostgreSQL makes both logins)"
        )
    pkcs11 = _pkcs11(values)
    public_url = values["public_url"]
    if public_url is None:
        host = values["host"]
        shown_host = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        public_url = f"https://{shown_host}:{values['port']}"
    return Settings(
        data_dir=Path(values["data_dir"]).expanduser().resolve(),
        host=values["host"],
        port=values["port"],
        public_url=public_url,
        database_url=values["database_url"],
        database_owner_url=values["database_owner_url"],
        s3=s3,
        master_key=values["master_key"],
        max_document_bytes=values["max_document_bytes"],
        max_json_bytes=values["max_json_bytes"],
        log_level=values["log_level"],
        log_format=values["log_format"],
        seal_workers=values["seal_workers"],
        login_rate_per_source=values["login_rate_per_source"],
        idle_timeout_seconds=values["idle_timeout_seconds"],
        webhook_ca_file=values["webhook_ca_file"],
        webhook_timeout_seconds=values["webhook_timeout_seconds"],
        dpop_nonce=values["dpop_nonce"] == "required",
        verify_workers=values["verify_workers"],
        worker_cpu_seconds=values["worker_cpu_seconds"],
        max_verify_bytes=values["max_verify_bytes"],
        verify_concurrency=values["verify_concurrency"],
        verify_rate_per_official=values["verify_rate_per_official"],
        trusted_proxies=values["trusted_proxies"] or (),
        access_token_seconds=values["access_token_seconds"],
        metrics_addresses=_networks(values["metrics_addresses"])
        if isinstance(values["metrics_addresses"], str)
        else values["metrics_addresses"],
        metrics_token=values["metrics_token"],
        pkcs11=pkcs11,
        supervision=SupervisionSettings(
            interval_seconds=values["supervision_interval"],
            approval_overdue_hours=values["approval_overdue_hours"],
            burst_window_minutes=values["burst_window_minutes"],
            failed_login_burst=values["failed_login_burst"],
            denied_access_burst=values["denied_access_burst"],
            revoked_seal_alert_hours=values["revoked_seal_alert_hours"],
            sign_for_very_urgent_hours=values["sign_for_very_urgent_hours"],
            sign_for_urgent_hours=values["sign_for_urgent_hours"],
            sign_for_normal_hours=values["sign_for_normal_hours"],
        ),
    )


_PKCS11_ENVS = (
    ("pkcs11_module", "SEALHUB_PKCS11_MODULE"),
    ("pkcs11_token", "SEALHUB_PKCS11_TOKEN"),
    ("pkcs11_pin", "SEALHUB_PKCS11_PIN"),
    ("pkcs11_pin_file", "SEALHUB_PKCS11_PIN_FILE"),
)


def _pkcs11(values: dict[str, Any]) -> Pkcs11Settings | None:
    """The token settings, all required with ``SEALHUB_KEYSTORE=pkcs11`` and refused without
    it (an operator who set them believes the keys are in hardware)."""
    if values["keystore"] != "pkcs11":
        for attr, env in _PKCS11_ENVS:
            if values[attr] is not None:
                raise ConfigError(f"{env}: only used with SEALHUB_KEYSTORE=pkcs11")
        return None
    for attr, env in _PKCS11_ENVS[:2]:
        if not values[attr]:
            raise ConfigError(f"{env}: required with SEALHUB_KEYSTORE=pkcs11")
    if (values["pkcs11_pin"] is None) == (values["pkcs11_pin_file"] is None):
        raise ConfigError(
            "SEALHUB_PKCS11_PIN: set it or SEALHUB_PKCS11_PIN_FILE (one of them) "
            "with SEALHUB_KEYSTORE=pkcs11"
        )
    pin = values["pkcs11_pin"]
    if pin is None:
        path: Path = values["pkcs11_pin_file"]
        try:
            pin = path.read_text("utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            raise ConfigError(f"SEALHUB_PKCS11_PIN_FILE: cannot read {path}") from None
    if not pin:
        raise ConfigError("SEALHUB_PKCS11_PIN: the PIN is empty")
    return Pkcs11Settings(
        module=values["pkcs11_module"], token_label=values["pkcs11_token"], pin=pin
    )


def settings_table_markdown() -> str:
    """The README's settings table, generated from :data:`SETTINGS`."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = "—" if setting.default is None else f"`{setting.default}`"
        lines.append(f"| `{setting.env}` | {default} | {setting.doc} |")
    return "\n".join(lines)
