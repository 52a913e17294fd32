"""``sealctl``: the SDK as a command line for officials and scripts.

Configuration lives in a profile directory (``~/.config/sealhub`` or ``--profile DIR``):
``config.json`` (server URL, CA file, key file, official id, pinned audit log key) and the
encrypted device key. Nothing secret is written besides the password-encrypted key; every
command logs in afresh with the key, so no token is stored on disk.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from sealhub_sdk._internal.audit import verify_checkpoint, verify_entry, verify_growth
from sealhub_sdk._internal.errors import ConfigurationError, SealhubError
from sealhub_sdk._internal.keys import DeviceKey
from sealhub_sdk._internal.sync_client import Client

DEFAULT_PROFILE = Path.home() / ".config" / "sealhub"
EXIT_ERROR = 1
EXIT_USAGE = 2


class Profile:
    """The profile directory: config.json plus the key file it names."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.config_path = directory / "config.json"
        self.state_path = directory / "audit-state.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.config_path.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"no profile at {self.directory}: run 'sealctl enroll' first",
                code="not_configured",
            ) from None
        if not isinstance(data, dict):
            raise ConfigurationError("config.json is not an object", code="not_configured")
        return data

    def save(self, config: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
        os.replace(temporary, self.config_path)


def _password(args: argparse.Namespace, *, confirm: bool = False) -> str:
    """From --password-file, $SEALCTL_PASSWORD (for scripts), or a prompt."""
    if args.password_file:
        return Path(args.password_file).read_text("utf-8").rstrip("\r\n")
    from_env = os.environ.get("SEALCTL_PASSWORD")
    if from_env:
        return from_env
    first = getpass.getpass("key password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigurationError("the two passwords differ", code="password_mismatch")
    return first


def _client(args: argparse.Namespace, config: dict[str, Any], *, login: bool = True) -> Client:
    key = DeviceKey.load(config["key_file"], _password(args))
    client = Client(
        config["server"],
        ca_file=config["ca_file"],
        key=key,
        official_id=config.get("official_id"),
        public_url=config.get("public_url"),
    )
    if login:
        client.login()
    return client


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items() if k != "raw"}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Columns padded to their widest cell (East Asian wide characters count double)."""

    def width(text: str) -> int:
        import unicodedata

        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    widths = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *rows]:
        lines.append("  ".join(c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _emit(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(_plain(value), ensure_ascii=False, indent=2) if args.json else text)


def _progress_bar(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 30)
        sys.stderr.write(f"\r{label} [{bar:<30}] {fraction:6.1%}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as source:
        while chunk := source.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


# --- commands --------------------------------------------------------------------------------


def cmd_enroll(args: argparse.Namespace, profile: Profile) -> None:
    key_file = Path(args.key_file or profile.directory / "device-key.pem")
    password = _password(args, confirm=True)
    key = DeviceKey.generate()
    key.save(key_file, password)
    try:
        with Client(args.server, ca_file=args.ca_file, key=key) as client:
            enrolled = client.enroll(args.official, args.code)
    except BaseException:
        key_file.unlink(missing_ok=True)  # a key that was never enrolled is useless
        raise
    profile.save(
        {
            "server": args.server,
            "ca_file": str(Path(args.ca_file).resolve()),
            "key_file": str(key_file.resolve()),
            "official_id": args.official,
            **({"public_url": args.public_url} if args.public_url else {}),
        }
    )
    _emit(
        args,
        {"kid": enrolled.kid, "key_file": str(key_file)},
        f"enrolled key {enrolled.kid}\nkey file: {key_file} (keep it and its password safe)",
    )


def cmd_login(args: argparse.Namespace, profile: Profile) -> None:
    with _client(args, profile.load()) as client:
        me = client.me()
    _emit(
        args, me, f"logged in as {me.name} ({me.id}), {me.department}, roles {', '.join(me.roles)}"
    )


def cmd_send(args: argparse.Namespace, profile: Profile) -> None:
    with _client(args, profile.load()) as client:
        sent = client.send(
            args.file,
            title=args.title,
            recipients=_codes(args.to),
            cc=_codes(args.cc or ""),
            doc_number=args.doc_number,
            urgency=args.urgency,
            classification=args.classification,
            progress=_progress_bar("upload"),
        )
    _emit(
        args,
        sent,
        f"document {sent.id}: {sent.status}, {sent.deliveries} deliveries"
        + (f"\nsha256 {sent.sha256}" if sent.sha256 else ""),
    )


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def cmd_inbox(args: argparse.Namespace, profile: Profile) -> None:
    with _client(args, profile.load()) as client:
        page = client.inbox(state=args.state, wait=args.wait)
    rows = [
        [i.id, i.document.id, i.state, i.document.urgency, i.document.sender, i.document.title]
        for i in page.items
    ]
    _emit(
        args,
        page,
        _table(rows, ["DELIVERY", "DOCUMENT", "STATE", "URGENCY", "SENDER", "TITLE"])
        if rows
        else "inbox is empty",
    )


def cmd_fetch(args: argparse.Namespace, profile: Profile) -> None:
    out = args.output or f"{args.document}.pdf"
    with _client(args, profile.load()) as client:
        result = client.download(args.document, out, progress=_progress_bar("download"))
    _emit(args, result, f"{result.path}: {result.size} bytes, sha256 {result.sha256}")


def _delivered_sha256(args: argparse.Namespace) -> str:
    if args.sha256:
        return str(args.sha256)
    if args.file:
        return _sha256_of(args.file)
    raise ConfigurationError("give --file (the fetched PDF) or --sha256", code="usage")


def cmd_sign_for(args: argparse.Namespace, profile: Profile) -> None:
    digest = _delivered_sha256(args)
    with _client(args, profile.load()) as client:
        receipt = client.sign_for(args.delivery, sha256=digest)
    _emit(
        args,
        receipt,
        f"signed for delivery {args.delivery}",
    )


def cmd_reject(args: argparse.Namespace, profile: Profile) -> None:
    digest = _delivered_sha256(args)
    with _client(args, profile.load()) as client:
        receipt = client.reject(args.delivery, sha256=digest, reason=args.reason)
    _emit(
        args,
        receipt,
        f"returned delivery {args.delivery} to its sender",
    )


def cmd_verify(args: argparse.Namespace, profile: Profile) -> None:
    config = profile.load()
    if args.remote:
        with _client(args, config) as client:
            report = client.verify(args.file)
    else:
        from sealhub_sdk._internal.pdf import verify_pdf_locally

        report = verify_pdf_locally(args.file, ca_pem=Path(config["ca_file"]).read_bytes())
    rows = [
        [
            s.field,
            s.signer_subject,
            "yes" if s.intact else "NO",
            "yes" if s.trusted else "NO",
            "yes" if s.covers_whole_document else "no",
        ]
        for s in report.seals
    ]
    text = _table(rows, ["FIELD", "SIGNER", "INTACT", "TRUSTED", "WHOLE"]) if rows else "no seals"
    _emit(args, report, f"{text}\n{'VALID' if report.valid else 'NOT VALID'}")
    if not report.valid:
        raise SystemExit(EXIT_ERROR)


def cmd_audit_verify(args: argparse.Namespace, profile: Profile) -> None:
    """Verify the checkpoint with the pinned log key and its consistency with the last one."""
    config = profile.load()
    with _client(args, config) as client:
        log_key = args.log_key or config.get("log_key")
        if not log_key:
            log_key = client.audit_log_key()
            config["log_key"] = log_key
            profile.save(config)
            print(f"pinned the audit log key on first use: {log_key}", file=sys.stderr)
        body = verify_checkpoint(client.audit_checkpoint(), [log_key])
        result: dict[str, Any] = {"tree_size": body.tree_size, "root_hash": body.root_hash.hex()}
        previous = _previous_checkpoint(profile)
        if previous is not None and previous.tree_size:
            older = previous
            if older.tree_size <= body.tree_size:
                proof = client.consistency_proof(older.tree_size, body.tree_size)
                verify_growth(older, body, proof)
                result["consistent_with"] = older.tree_size
            else:
                raise SealhubError("the log shrank since the last check", code="log_shrunk")
        if args.entry is not None:
            entry = client.audit_entry(args.entry)
            verify_entry(entry, client.inclusion_proof(args.entry, body.tree_size), body)
            result["entry"] = {"index": entry.index, "type": entry.type, "included": True}
    profile.state_path.write_text(
        json.dumps({"note": _checkpoint_state(body)}, ensure_ascii=False), "utf-8"
    )
    _emit(args, result, "\n".join(f"{k}: {v}" for k, v in result.items()) + "\naudit log OK")


def _checkpoint_state(body: Any) -> dict[str, Any]:
    return {"origin": body.origin, "tree_size": body.tree_size, "root_hash": body.root_hash.hex()}


def _previous_checkpoint(profile: Profile) -> Any:
    from sealhub_sdk._internal.note import CheckpointBody

    try:
        saved = json.loads(profile.state_path.read_text("utf-8"))["note"]
        return CheckpointBody(
            saved["origin"], int(saved["tree_size"]), bytes.fromhex(saved["root_hash"])
        )
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None


def _parser() -> argparse.ArgumentParser:
    def options(suppress: bool) -> argparse.ArgumentParser:
        # Given before or after the command; SUPPRESS keeps a subcommand's default from
        # overwriting a value given before it.
        extra: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--profile", type=Path, help="profile dir (~/.config/sealhub)", **extra)
        common.add_argument("--json", action="store_true", help="machine-readable output", **extra)
        common.add_argument("--password-file", help="read the key password from a file", **extra)
        return common

    common = options(suppress=True)
    parser = argparse.ArgumentParser(
        prog="sealctl", description="sealhub client for officials", parents=[options(False)]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[..., None], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    enroll = add("enroll", cmd_enroll, "make a key on this device and enroll it")
    enroll.add_argument("--server", required=True, help="https://gateway origin")
    enroll.add_argument("--ca-file", required=True, help="the platform root CA (PEM)")
    enroll.add_argument("--official", required=True, help="your official id")
    enroll.add_argument("--code", required=True, help="the one-time enrollment code")
    enroll.add_argument("--key-file", help="where to keep the key (default: in the profile)")
    enroll.add_argument("--public-url", help="SEALHUB_PUBLIC_URL when it differs from --server")

    add("login", cmd_login, "log in and show who you are")

    send = add("send", cmd_send, "seal and send a PDF")
    send.add_argument("file")
    send.add_argument("--to", required=True, help="recipient codes, comma-separated")
    send.add_argument("--cc", help="copy codes, comma-separated")
    send.add_argument("--title", required=True)
    send.add_argument("--doc-number", required=True, help="发文字号, e.g. 玉政发〔2026〕12号")
    send.add_argument("--urgency", choices=["normal", "urgent", "very_urgent"], default="normal")
    send.add_argument("--classification", choices=["public", "internal"], default="internal")

    inbox = add("inbox", cmd_inbox, "list deliveries to your department")
    inbox.add_argument(
        "--state", default="pending", choices=["pending", "fetched", "received", "rejected"]
    )
    inbox.add_argument("--wait", type=int, help="long-poll this many seconds")

    fetch = add("fetch", cmd_fetch, "download a document's sealed PDF")
    fetch.add_argument("document", help="document id")
    fetch.add_argument("-o", "--output", help="file to write (default DOCUMENT.pdf)")

    for name, handler, text in (
        ("sign-for", cmd_sign_for, "sign for a delivery (签收)"),
        ("reject", cmd_reject, "return a delivery (退回)"),
    ):
        sub = add(name, handler, text)
        sub.add_argument("delivery", help="delivery id")
        sub.add_argument("--file", help="the fetched PDF (its SHA-256 is signed)")
        sub.add_argument("--sha256", help="SHA-256 of the fetched PDF")
        if name == "reject":
            sub.add_argument("--reason", required=True)

    verify = add("verify", cmd_verify, "verify a sealed PDF (locally, or --remote)")
    verify.add_argument("file")
    verify.add_argument("--remote", action="store_true", help="ask the gateway instead")

    audit = commands.add_parser("audit", help="audit log", parents=[common])
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_verify = audit_commands.add_parser(
        "verify", help="verify the signed checkpoint and the log's growth", parents=[common]
    )
    audit_verify.set_defaults(handler=cmd_audit_verify)
    audit_verify.add_argument("--log-key", help="the log's verifier key (pinned in the profile)")
    audit_verify.add_argument("--entry", type=int, help="also prove this entry is in the log")
    return parser


# Options whose values are free text or random codes, which may start with "-" (an
# enrollment code is URL-safe base64): "--code -x1y2" must not read as two options.
FREE_VALUE_OPTIONS = frozenset({"--code", "--title", "--doc-number", "--reason"})


def _glue_free_values(argv: Sequence[str]) -> list[str]:
    """``--code VALUE`` becomes ``--code=VALUE``, so argparse takes VALUE whatever it is."""
    glued: list[str] = []
    words = iter(argv)
    for word in words:
        value = next(words, None) if word in FREE_VALUE_OPTIONS else None
        glued.append(word if value is None else f"{word}={value}")
    return glued


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_glue_free_values(sys.argv[1:] if argv is None else argv))
    profile = Profile(args.profile or Path(os.environ.get("SEALCTL_PROFILE", DEFAULT_PROFILE)))
    try:
        args.handler(args, profile)
    except ConfigurationError as exc:
        print(f"sealctl: {exc.code}: {exc.detail}", file=sys.stderr)
        return EXIT_USAGE
    except SealhubError as exc:
        print(f"sealctl: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
