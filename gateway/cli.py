"""The ``sealhub`` server command. Local access to the data directory is the trust anchor."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from tqdm import tqdm

from gateway.audit.cli import add_audit_commands, run_audit_command
from gateway.backup import BackupError, RollbackDetected
from gateway.backup_cli import add_backup_commands, run_backup_command
from gateway.config import ConfigError, Settings, load_settings
from gateway.console.links import console_url, remember_origin
from gateway.directory.orgs import OrgFileError, parse_orgs_csv
from gateway.identity.cli import (
    OfficialCommandError,
    add_official_commands,
    run_official_command,
)
from gateway.logs import configure_logging
from keys.keystore import KeyStoreError
from keys.master import MasterKeyError, load_or_create_master_key
from keys.platform import PlatformPkiError, ensure_platform_pki
from storage.directory import Department

IMPORT_BATCH = 50
# The platform's own unit in the demo organisations: where the first admins work.
PLATFORM_DEPARTMENT = "yl"
HANDSHAKE_TIMEOUT_SECONDS = 10.0
LISTEN_BACKLOG = 128


class CannotDrawSeals(Exception):
    """The machine lacks what drawing a seal needs: better no start than a 5xx on every send."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sealhub", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (SEALHUB_DATA_DIR)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTPS gateway")
    serve.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    serve.add_argument("--host", help="listen address (SEALHUB_HOST, default 127.0.0.1)")
    serve.add_argument("--port", help="listen port (SEALHUB_PORT, default 8443)")
    serve.add_argument("--demo", action="store_true", help="load the Yulin organisation units")

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--data-dir", dest="sub_data_dir", help="data directory")

    import_orgs = commands.add_parser("import-orgs", help="load organisation units from a CSV")
    import_orgs.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    import_orgs.add_argument("file", type=Path, help="CSV: code,name,name_en,parent,kind")

    add_official_commands(commands)
    add_audit_commands(commands)
    add_backup_commands(commands)

    pki = commands.add_parser("pki", help="platform PKI administration")
    pki_commands = pki.add_subparsers(dest="pki_command", required=True, metavar="PKI_COMMAND")
    export_root = pki_commands.add_parser(
        "export-root", help="write the root CA key encrypted to a file and remove it here"
    )
    export_root.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    export_root.add_argument("--out", type=Path, required=True, help="file to create (0600)")
    export_root.add_argument(
        "--passphrase-file", type=Path, help="read the passphrase from this file, not a prompt"
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "SEALHUB_DATA_DIR": getattr(args, "sub_data_dir", None) or args.data_dir,
        "SEALHUB_HOST": getattr(args, "host", None),
        "SEALHUB_PORT": getattr(args, "port", None),
    }
    return load_settings(overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"sealhub: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings, demo=args.demo))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "import-orgs":
            asyncio.run(_import_orgs(settings, _read_orgs(args.file)))
        elif args.command == "audit":
            return run_audit_command(args, settings)
        elif args.command in ("backup", "restore"):
            return run_backup_command(args, settings)
        elif args.command == "official":
            asyncio.run(run_official_command(args, settings))
        elif args.command == "pki" and args.pki_command == "export-root":
            _export_root(settings, args.out, _passphrase(args.passphrase_file))
    except (
        ConfigError,
        OrgFileError,
        OfficialCommandError,
        PlatformPkiError,
        KeyStoreError,
        MasterKeyError,
        CannotDrawSeals,
        BackupError,
    ) as exc:
        print(f"sealhub: {exc}", file=sys.stderr)
        return 2
    except RollbackDetected as exc:
        print(f"sealhub: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    return 0


def _passphrase(path: Path | None) -> bytes:
    if path is not None:
        return path.read_bytes().rstrip(b"\r\n")
    first = getpass.getpass("passphrase for the exported root key: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passphrases differ")
    return first.encode("utf-8")


def _export_root(settings: Settings, out: Path, passphrase: bytes) -> None:
    """After this the root key lives only in *out*: keep it offline. Issuing CAs keep working."""
    from gateway.runtime import open_keystore, prepare_data_dir

    prepare_data_dir(settings)
    master_key = load_or_create_master_key(
        settings.data_dir / "secrets" / "master.key", settings.master_key
    )
    platform = ensure_platform_pki(
        settings.data_dir,
        public_url=settings.public_origin,
        hostnames=settings.public_hostnames,
        keystore=open_keystore(settings, master_key),
    )
    platform.export_root_key(out, passphrase)
    print(f"root CA key written to {out} (encrypted) and removed from {settings.data_dir}")


async def _serve(settings: Settings, *, demo: bool) -> None:
    from gateway.app import create_app
    from gateway.backup import refuse_rolled_back
    from gateway.http.middleware import ProblemRequestHandler, ProxiedRequestHandler
    from gateway.http.proxy_protocol import ProxyAwareListener
    from gateway.runtime import open_runtime
    from gateway.spool import reset_spool
    from seals.image import seal_drawing_problem

    problem = seal_drawing_problem()
    if problem is not None:
        raise CannotDrawSeals(f"cannot draw seals: {problem}")
    # Slow or idle clients are bounded: the TLS handshake within HANDSHAKE_TIMEOUT, and a
    # connection that has not completed a request's headers (slowloris) or sits idle between
    # requests is closed after the idle timeout (aiohttp's keep-alive timer runs from
    # connect and from each response, and fires only while headers are incomplete). Header
    # sizes and counts keep aiohttp's limits (8190 bytes a line, 128 headers).
    idle_timeout = settings.idle_timeout_seconds
    # After an early answer (413, 408) aiohttp reads and drops the rest of the body so the
    # client sees the answer; that "lingering" is bounded by the same idle timeout.
    handler_args: dict[str, Any] = {
        "keepalive_timeout": idle_timeout,
        "lingering_time": idle_timeout,
        "access_log": None,
    }
    async with open_runtime(settings, demo=demo) as runtime:
        await refuse_rolled_back(runtime)  # a restore that lost cosigned entries stops here
        reset_spool(settings)  # spool files a crashed run left behind
        runner = web.AppRunner(create_app(runtime), shutdown_timeout=5, **handler_args)
        await runner.setup()
        server = runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        # Our own listener instead of web.TCPSite, so each connection gets the protocol
        # that answers unparsable requests as problem+json.
        listener: asyncio.AbstractServer | ProxyAwareListener
        if settings.trusted_proxies:
            # Behind trusted proxies: read their PROXY v2 header before TLS starts.
            listener = await ProxyAwareListener.start(
                settings.host,
                settings.port,
                lambda client: ProxiedRequestHandler(
                    server, loop=loop, client_address=client, **handler_args
                ),
                ssl_context=runtime.pki.ssl_context(),
                trusted=settings.trusted_proxies,
                handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                backlog=LISTEN_BACKLOG,
            )
        else:
            listener = await loop.create_server(
                lambda: ProblemRequestHandler(server, loop=loop, **handler_args),
                settings.host,
                settings.port,
                ssl=runtime.pki.ssl_context(),
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                reuse_address=True,
                backlog=LISTEN_BACKLOG,
            )
        print(f"sealhub is ready at {settings.public_origin}", flush=True)
        print(f"console: {console_url(settings.public_origin)}", flush=True)
        remember_origin(settings.data_dir, settings.public_origin)
        print(f"CA certificate: {runtime.pki.ca_pem_path}", flush=True)
        if demo:
            print(next_steps(settings, runtime.pki.ca_pem_path), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            listener.close()
            await runner.cleanup()


def next_steps(settings: Settings, ca_path: Path) -> str:
    """What a person who just started the demo does next, with this instance's own paths."""
    server = _shown(_beside_python("sealhub"))
    sealctl = _shown(_beside_python("sealctl"))
    data_dir = _shown(settings.data_dir)
    ca = _shown(ca_path)
    origin = settings.public_origin
    repo = Path(__file__).resolve().parent.parent
    guides = [
        f"    {_shown(path)}"
        for path in (repo / "README.md", repo / "clients" / "python_sdk" / "README.md")
        if path.is_file()
    ] or ["    the README of sealhub and of sealhub_sdk (the SDK and sealctl)"]
    return "\n".join(
        [
            "",
            "Next steps",
            f"  1. Clients trust the platform CA: curl --cacert {ca} {origin}/readyz",
            f"     The console, for a browser that trusts it too: {console_url(origin)}",
            "  2. Make the first admin here (local access to the data directory is the bootstrap",
            "     trust); it prints the official's id, a one-time enrollment code and the",
            "     console link that enrolls this browser's key with them:",
            f"       {server} official create --data-dir {data_dir} \\",
            f"           --department {PLATFORM_DEPARTMENT} --name 管理员 --roles admin",
            "     Make a second admin the same way: two admins approve each department's seal,",
            "     and officials are then created in the console (管理) or like this:",
            f"       {server} official create --data-dir {data_dir} \\",
            "           --department yl-bgs --name 用印员 --roles seal_keeper,clerk --json",
            "  3. Or enroll an official's key with the SDK's command line, then log in:",
            f"       {sealctl} enroll --server {origin} --ca-file {ca} --official ID --code CODE",
            f"       {sealctl} login",
            "  4. Quick starts (first steps, the SDK, sealctl):",
            *guides,
            "  The HTTP API: GET /openapi.json; stop the gateway with Ctrl-C.",
            "",
        ]
    )


def _beside_python(command: str) -> Path | str:
    """The console script installed next to this interpreter, else the bare command name."""
    path = Path(sys.executable).parent / command
    return path if path.exists() else command


def _shown(path: Path | str) -> str:
    """Paths under the working directory print relative to it: shorter to copy and paste."""
    if isinstance(path, str):
        return path
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


async def _migrate(settings: Settings) -> None:
    from gateway.runtime import database_urls, prepare_data_dir
    from storage.migrate import migrate

    prepare_data_dir(settings)
    async with database_urls(settings) as urls:
        # DATABASE_OWNER_URL; for a one-off run DATABASE_URL may name the owner's login.
        applied = await migrate(urls.admin)
    print("applied: " + (", ".join(applied) if applied else "nothing, the schema is current"))


def _read_orgs(path: Path) -> list[Department]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OrgFileError(f"cannot read {path}: {exc}") from None
    return parse_orgs_csv(text)


async def _import_orgs(settings: Settings, departments: list[Department]) -> None:
    from gateway.runtime import admin_connection, database_urls, prepare_data_dir
    from storage import directory

    prepare_data_dir(settings)
    async with database_urls(settings) as urls:
        connection = await admin_connection(urls)
        try:
            inserted = updated = 0
            with tqdm(
                total=len(departments), unit="unit", desc="importing", file=sys.stderr
            ) as bar:
                # One transaction for the whole file keeps the import all-or-nothing;
                # batches only pace the progress bar.
                transaction = connection.transaction()
                await transaction.start()
                try:
                    for start in range(0, len(departments), IMPORT_BATCH):
                        batch = departments[start : start + IMPORT_BATCH]
                        new, changed = await directory.upsert_departments(connection, batch)
                        inserted += new
                        updated += changed
                        bar.update(len(batch))
                except BaseException:
                    await transaction.rollback()
                    raise
                try:
                    await transaction.commit()
                except asyncpg.ForeignKeyViolationError as exc:
                    raise OrgFileError(
                        f"a parent code is in neither the file nor the directory: {exc.detail}"
                    ) from None
        finally:
            await connection.close()
    print(f"imported {len(departments)} units: {inserted} new, {updated} updated")
