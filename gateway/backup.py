"""``sealhub backup`` and ``sealhub restore --to TIME``: point-in-time recovery of the embedded
PostgreSQL, and a consistent copy of the filesystem object store.

Why pg_basebackup and WAL archiving rather than pgBackRest: the embedded server is
PostgreSQL 16 from the pgserver wheel, which ships pg_basebackup, pg_verifybackup and
pg_archivecleanup of exactly its own version; pgBackRest is another package (Debian's 2.45
predates PostgreSQL 16 support), with its own configuration and stanza to keep in step with a
server that pip installs. Everything here is the server's own tooling, in ``DIR/backups/``:

- ``wal/``: the WAL archive. The server's ``archive_command`` copies each segment there
  (never over an existing file unless identical, fsynced before and after the rename).
- ``base/<label>/``: base backups (plain format, WAL streamed into it, SHA-256 manifest,
  checked with pg_verifybackup), each beside ``<label>.json`` saying when it finished.
- ``objects/``: the object files. Objects are written once (temp file, rename) and never
  changed, only deleted when no row references them, so adding the files that are new since
  the last run gives every object referenced at backup time, plus later ones; it is copied
  after the base backup ends, so nothing the backup's rows reference can be missing.

A restore stops the world: the gateway must be stopped. The chosen base backup goes into a
fresh cluster directory with ``recovery_target_time``; that cluster replays the archive (and
the old cluster's unarchived WAL) up to TIME, is promoted and stopped; only then does it take
the place of ``DIR/postgres`` (the old one is kept aside, never deleted). The audit log is
then compared with the checkpoints inspectors cosigned (``DIR/audit/cosigned/``, kept outside
the database): a restore that lost cosigned entries is reported as a rollback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.config import Settings
from keys.files import atomic_write, fsync_dir
from storage import cosigned, pitr
from storage.db import APP_ROLE, connect
from storage.embedded import embedded_postgres, postgres_bin
from storage.signed_note import NoteError, NoteVerifier

if TYPE_CHECKING:
    from gateway.runtime import Runtime

ARCHIVE_TIMEOUT_S = 60
RECOVERY_TIMEOUT_S = 3600
DEFAULT_KEEP = 7
# archive_command is a shell line in a SQL literal: paths are limited to characters that
# need quoting in neither.
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._+@-]+")
_RECOVERY_KEYS = (
    "restore_command",
    "recovery_target_time",
    "recovery_target_action",
    "recovery_target_timeline",
)
_WAL_NAME = re.compile(r"[0-9A-F]{24}")


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says what to do."""


class RollbackDetected(Exception):
    """The restored audit log lost or changed entries that an inspector cosigned."""


@dataclass(frozen=True)
class BackupInfo:
    label: str
    started_at: datetime
    finished_at: datetime
    start_wal: str

    @property
    def path_name(self) -> str:
        return self.label


@dataclass(frozen=True)
class Layout:
    """Where a data directory's cluster and backups live."""

    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def backups(self) -> Path:
        return self.data_dir / "backups"

    @property
    def wal(self) -> Path:
        return self.backups / "wal"

    @property
    def base(self) -> Path:
        return self.backups / "base"

    @property
    def objects(self) -> Path:
        return self.data_dir / "objects"

    @property
    def object_copies(self) -> Path:
        return self.backups / "objects"


def archive_command(wal: Path) -> str:
    """Copy ``%p`` to ``wal/%f``: an existing file is accepted only when identical (a retry
    after a crash between the copy and PostgreSQL noting it), otherwise copied to a temp
    name, fsynced, renamed, and the directory fsynced; any failure is a non-zero exit and
    PostgreSQL keeps the segment and retries."""
    w = _checked(wal)
    target = f"{w}/%f"
    return (
        f'if test -f {target}; then cmp -s "%p" {target}; '
        f'else cp "%p" {target}.part && sync {target}.part && mv {target}.part {target}'
        f" && sync {w}; fi"
    )


def restore_command(wal: Path) -> str:
    return f'cp {_checked(wal)}/%f "%p"'


def _checked(path: Path) -> str:
    text = str(path.resolve())
    if not _SAFE_PATH.fullmatch(text):
        raise BackupError(
            f"the backup directory {text} has characters archive_command cannot carry:"
            " use letters, digits and / . _ + @ - only"
        )
    return text


def _require_embedded(settings: Settings, what: str) -> None:
    if settings.database_url:
        raise BackupError(
            f"`sealhub {what}` manages the embedded PostgreSQL; with DATABASE_URL the server"
            " is yours to back up (pgBackRest, or pg_basebackup and WAL archiving): see"
            " docs/operations.md, 'Backups and restore drills'"
        )


def _owner_of(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(root, uid, gid)
    for directory, subdirs, files in os.walk(root):
        for name in subdirs + files:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def _run(command: list[str], *, user: int | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, user=user, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed:\n{done.stderr or done.stdout}")
    return done.stdout


def _handles(pgdata: Path) -> list[int]:
    """The processes that hold the embedded server open (pgserver's list)."""
    path = pgdata / ".handle_pids.json"
    try:
        return [int(pid) for pid in json.loads(path.read_text())]
    except (OSError, ValueError):
        return []


def _server_pid(pgdata: Path) -> int | None:
    """The running postmaster of *pgdata*, if any."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


# --- backup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    info: BackupInfo
    objects_copied: int
    removed: list[str]


async def backup(settings: Settings, *, keep: int = DEFAULT_KEEP) -> BackupResult:
    """A base backup of the embedded server, new object files, and pruning to *keep*."""
    _require_embedded(settings, "backup")
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    layout = Layout(settings.data_dir)
    for directory in (layout.wal, layout.base, layout.object_copies):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = archive_command(layout.wal)
    with embedded_postgres(settings.data_dir) as url:
        uid, gid = _owner_of(layout.pgdata)
        if os.geteuid() == 0:  # the archiver runs as the server's own OS user
            os.chown(layout.wal, uid, gid)
            os.chmod(layout.backups, 0o711)  # noqa: S103 - traversal to wal/ only
        connection = await connect(url, role=None)
        try:
            now = await pitr.archiving(connection)
            if now.mode != "on" or now.command != command:
                await pitr.set_archiving(connection, command, ARCHIVE_TIMEOUT_S)
                restart = True
            else:
                restart = False
        finally:
            await connection.close()
        alone = _handles(layout.pgdata) in ([], [os.getpid()])
    if restart and not alone:
        raise BackupError(
            "WAL archiving was off and is now configured; it starts when the embedded"
            " PostgreSQL restarts: stop every gateway on this data directory, run"
            " `sealhub backup` again (it restarts the server), then start the gateways"
        )
    with embedded_postgres(settings.data_dir) as url:  # after a restart, archiving is on
        info = _base_backup(layout, url)
    copied = copy_new_files(layout.objects, layout.object_copies)
    removed = _prune(layout, keep)
    return BackupResult(info, copied, removed)


def _base_backup(layout: Layout, url: str) -> BackupInfo:
    started = datetime.now(UTC)
    label = started.strftime("%Y%m%dT%H%M%S%fZ")
    partial = layout.base / f".{label}.part"
    _run(
        [
            str(postgres_bin("pg_basebackup")),
            "--dbname",
            url,
            "--pgdata",
            str(partial),
            "--format=plain",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--manifest-checksums=SHA256",
            "--label",
            f"sealhub {label}",
            "--no-password",
        ]
    )
    _run([str(postgres_bin("pg_verifybackup")), str(partial)])
    finished = datetime.now(UTC)  # after the backup's end: any later time is consistent
    start_wal = _start_wal(partial / "backup_label")
    final = layout.base / label
    os.replace(partial, final)
    info = BackupInfo(label, started, finished, start_wal)
    record = {
        "label": label,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "start_wal": start_wal,
    }
    atomic_write(layout.base / f"{label}.json", json.dumps(record, indent=1).encode(), 0o600)
    return info


def _start_wal(backup_label: Path) -> str:
    match = re.search(r"\(file ([0-9A-F]{24})\)", backup_label.read_text())
    if match is None:
        raise BackupError(f"no START WAL LOCATION in {backup_label}")
    return match.group(1)


def list_backups(layout: Layout) -> list[BackupInfo]:
    """Finished base backups, oldest first (a backup without its record is not finished)."""
    found: list[BackupInfo] = []
    for record in sorted(layout.base.glob("*.json")) if layout.base.is_dir() else []:
        data = json.loads(record.read_text())
        if (layout.base / data["label"]).is_dir():
            found.append(
                BackupInfo(
                    data["label"],
                    datetime.fromisoformat(data["started_at"]),
                    datetime.fromisoformat(data["finished_at"]),
                    data["start_wal"],
                )
            )
    return sorted(found, key=lambda b: b.finished_at)


def _prune(layout: Layout, keep: int) -> list[str]:
    """Drop base backups beyond the newest *keep*, and archived WAL the oldest kept one does
    not need (pg_archivecleanup keeps timeline history files)."""
    backups = list_backups(layout)
    removed = []
    for old in backups[:-keep]:
        shutil.rmtree(layout.base / old.label)
        (layout.base / f"{old.label}.json").unlink()
        removed.append(old.label)
    kept = backups[-keep:]
    if kept:
        _run([str(postgres_bin("pg_archivecleanup")), str(layout.wal), kept[0].start_wal])
    return removed


def _files(root: Path) -> Iterator[Path]:
    """Complete object files under *root* (a writer's hidden temp files are skipped)."""
    if not root.is_dir():
        return
    for directory, _, names in os.walk(root):
        for name in names:
            if not name.startswith("."):
                yield Path(directory, name)


def copy_new_files(source: Path, target: Path) -> int:
    """Copy the files of *source* that *target* lacks (write-once files: same name, same
    bytes), each through a temp file, fsynced and renamed; returns how many."""
    copied = 0
    for path in _files(source):
        destination = target / path.relative_to(source)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = destination.with_name(f".{destination.name}.part")
        try:
            shutil.copyfile(path, temporary)
        except FileNotFoundError:  # swept while we walked: no row references it
            continue
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, destination)
        fsync_dir(destination.parent)
        copied += 1
    return copied


# --- restore ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    backup: BackupInfo
    target: datetime
    kept_aside: Path | None
    log_size: int
    objects_restored: int
    rollbacks: list[str]


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with its offset (``2026-12-08T02:15:00Z``)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BackupError(f"--to {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise BackupError(f"--to {text!r} needs an offset (Z or +08:00)")
    return moment.astimezone(UTC)


async def restore(settings: Settings, target: datetime) -> RestoreResult:
    """Replace the embedded cluster by the state it had at *target* (see the module doc)."""
    _require_embedded(settings, "restore")
    layout = Layout(settings.data_dir)
    if _server_pid(layout.pgdata) is not None:
        raise BackupError(
            "the embedded PostgreSQL is running: stop every gateway and command on this data"
            " directory first (a restore replaces the database under them)"
        )
    candidates = [b for b in list_backups(layout) if b.finished_at < target]
    if not candidates:
        have = ", ".join(b.finished_at.isoformat() for b in list_backups(layout)) or "none"
        raise BackupError(
            f"no base backup finished before {target.isoformat()} (finished backups: {have})"
        )
    chosen = candidates[-1]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    fresh = settings.data_dir / f"postgres.restore-{stamp}"
    shutil.copytree(layout.base / chosen.label, fresh, symlinks=True)
    try:
        for leftover in (".handle_pids.json", "log", "backup_manifest"):
            (fresh / leftover).unlink(missing_ok=True)
        if layout.pgdata.is_dir():
            _take_unarchived_wal(layout.pgdata / "pg_wal", fresh / "pg_wal")
        _write_recovery_settings(fresh, layout.wal, target)
        owner = _owner_of(layout.pgdata) if layout.pgdata.exists() else _owner_of(layout.wal)
        _chown_tree(fresh, *owner)
        os.chmod(fresh, 0o700)
        if os.geteuid() == 0:  # the server's OS user reaches its cluster (as pgserver does)
            mode = settings.data_dir.stat().st_mode | 0o011
            os.chmod(settings.data_dir, mode)  # traversal only, no listing
        size, rollbacks = await _recover(fresh, owner[0], settings)
        _drop_recovery_settings(fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    aside = None
    if layout.pgdata.exists():
        aside = settings.data_dir / f"postgres.before-restore-{stamp}"
        os.replace(layout.pgdata, aside)
    os.replace(fresh, layout.pgdata)
    fsync_dir(settings.data_dir)
    restored = copy_new_files(layout.object_copies, layout.objects)
    return RestoreResult(chosen, target, aside, size, restored, rollbacks)


def _take_unarchived_wal(old: Path, new: Path) -> None:
    """WAL the old cluster wrote but had not archived yet (its last, partial segment): the
    restore can then reach a TIME after the last archived segment."""
    if not old.is_dir():
        return
    for path in old.iterdir():
        if path.is_file() and (_WAL_NAME.fullmatch(path.name) or path.suffix == ".history"):
            shutil.copy2(path, new / path.name)


def _write_recovery_settings(pgdata: Path, wal: Path, target: datetime) -> None:
    settings = {
        "restore_command": restore_command(wal),
        "recovery_target_time": target.isoformat(sep=" "),
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
    }
    auto = pgdata / "postgresql.auto.conf"
    lines = [line for line in auto.read_text().splitlines() if not _is_recovery_line(line)]
    lines += [f"{key} = '{value}'" for key, value in settings.items()]
    auto.write_text("\n".join(lines) + "\n")
    (pgdata / "recovery.signal").touch()


def _drop_recovery_settings(pgdata: Path) -> None:
    auto = pgdata / "postgresql.auto.conf"
    lines = [line for line in auto.read_text().splitlines() if not _is_recovery_line(line)]
    auto.write_text("\n".join(lines) + "\n")


def _is_recovery_line(line: str) -> bool:
    return line.split("=", 1)[0].strip() in _RECOVERY_KEYS


async def _recover(pgdata: Path, uid: int, settings: Settings) -> tuple[int, list[str]]:
    """Run the fresh cluster until it has replayed to the target and promoted itself, check
    its audit log against the cosigned checkpoints, stop it."""
    user = uid if os.geteuid() == 0 else None
    sockets = Path(tempfile.mkdtemp(prefix="sealhub-restore-", dir="/tmp"))
    if user is not None:
        os.chown(sockets, uid, -1)
    try:
        await asyncio.to_thread(_start_cluster, pgdata, sockets, user)
        try:
            url = f"postgresql://postgres@/postgres?host={sockets}"
            return await _after_recovery(url, settings)
        finally:
            pg_ctl = str(postgres_bin("pg_ctl"))
            stop = [pg_ctl, "--pgdata", str(pgdata), "--wait", "--mode=fast", "stop"]
            await asyncio.to_thread(_run, stop, user=user)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _start_cluster(pgdata: Path, sockets: Path, user: int | None) -> None:
    """Start *pgdata* listening on a socket in *sockets* only; it recovers as it starts."""
    log_file = sockets / "postgres.log"
    start = subprocess.run(
        [
            str(postgres_bin("pg_ctl")),
            "--pgdata",
            str(pgdata),
            "--wait",
            "--timeout",
            str(RECOVERY_TIMEOUT_S),
            "--options",
            f"-h '' -k {sockets}",
            "--log",
            str(log_file),
            "start",
        ],
        capture_output=True,
        text=True,
        user=user,
        check=False,
    )
    if start.returncode != 0:
        log = log_file.read_text() if log_file.exists() else start.stderr
        raise BackupError(
            "the restored cluster did not recover (is TIME after the last transaction the"
            " archive holds?):\n" + "\n".join(log.splitlines()[-15:])
        )


async def _after_recovery(url: str, settings: Settings) -> tuple[int, list[str]]:
    from gateway.audit.cli import log_public_key, rollback_problems

    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECOVERY_TIMEOUT_S
    connection = await connect(url, role=None)
    try:
        while await pitr.in_recovery(connection):
            if loop.time() > deadline:
                raise BackupError("the restored cluster is still recovering; giving up")
            await asyncio.sleep(0.2)
        if not await pitr.has_audit_log(connection):
            size, messages = 0, _rollbacks_without_log(settings)
            return size, messages
    finally:
        await connection.close()
    witnessed = cosigned.read_all(cosigned.cosigned_dir(settings.data_dir))
    verifiers = _log_verifiers(log_public_key(settings), witnessed) if witnessed else []
    connection = await connect(url, role=APP_ROLE)
    try:
        from storage import audit_log

        size = await audit_log.log_size(connection)
        return size, await rollback_problems(connection, witnessed, verifiers)
    finally:
        await connection.close()


def _rollbacks_without_log(settings: Settings) -> list[str]:
    from gateway.audit.cli import rollback_message

    copies = cosigned.read_all(cosigned.cosigned_dir(settings.data_dir))
    return [rollback_message(_size_of(copy.note), 0, copy.source) for copy in copies]


def _size_of(note: str) -> int:
    """The tree size line of a checkpoint note (the second line), unverified: only to word
    a message when the restored database has no log to verify against."""
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0


def _log_verifiers(
    public: Ed25519PublicKey, copies: list[cosigned.CosignedCopy]
) -> list[NoteVerifier]:
    """The log's checkpoint key under each origin the kept notes name: a restore may run
    without the gateway's public URL, and the URL may have changed since a note was signed;
    a note proves something only if this key signed it, whatever the name."""
    origins = {copy.note.split("\n", 1)[0] for copy in copies}
    verifiers = []
    for origin in sorted(origins):
        try:
            verifiers.append(NoteVerifier.from_public_key(origin, public))
        except NoteError:
            continue  # not a note name: rollback_problems reports the file
    return verifiers


async def refuse_rolled_back(runtime: Runtime) -> None:
    """At the gateway's start: a log behind a checkpoint cosigned here (``DIR/audit/cosigned``)
    would be extended into a fork of witnessed history, so the gateway does not serve it."""
    from gateway.audit.cli import rollback_problems
    from gateway.audit.sequencer import checkpoint_key

    directory = cosigned.cosigned_dir(runtime.settings.data_dir)
    copies = cosigned.read_all(directory)
    if not copies:
        return
    async with runtime.pool.acquire() as connection:
        public = checkpoint_key(runtime.pki.keystore).public_key()
        messages = await rollback_problems(connection, copies, _log_verifiers(public, copies))
    if messages:
        raise RollbackDetected(
            "\n".join(messages) + "\nthe gateway does not start on an audit log behind a"
            " cosigned checkpoint: new entries would fork witnessed history. Restore to a"
            " later time, or, once the inspectors know of the loss, move"
            f" {directory} aside and start again"
        )
