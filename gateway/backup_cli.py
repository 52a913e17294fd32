"""``sealhub backup`` and ``sealhub restore --to TIME`` on the command line (the work is in
:mod:`gateway.backup`)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.backup import DEFAULT_KEEP, RollbackDetected, backup, parse_time, restore
from gateway.config import Settings


def add_backup_commands(subparsers: Any) -> None:
    take = subparsers.add_parser(
        "backup", help="base backup of the embedded PostgreSQL (WAL archived) and the objects"
    )
    take.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    take.add_argument(
        "--keep",
        type=int,
        default=DEFAULT_KEEP,
        help=f"base backups to keep, with the WAL they need (default {DEFAULT_KEEP})",
    )
    back = subparsers.add_parser(
        "restore", help="point-in-time recovery of the embedded PostgreSQL (gateway stopped)"
    )
    back.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    back.add_argument(
        "--to", dest="target", required=True, help="RFC 3339 time, e.g. 2026-12-08T02:15:00Z"
    )


def run_backup_command(args: argparse.Namespace, settings: Settings) -> int:
    """Exit status: 0 done, 2 refused (the message says why), 3 restored but the audit log
    is behind a cosigned checkpoint (a rollback: the gateway will not start on it)."""
    if args.command == "backup":
        taken = asyncio.run(backup(settings, keep=args.keep))
        print(
            f"base backup {taken.info.label} finished at {taken.info.finished_at.isoformat()};"
            f" {taken.objects_copied} new object files copied;"
            f" pruned: {', '.join(taken.removed) or 'nothing'}"
        )
        print(f"restorable to any time after {taken.info.finished_at.isoformat()}")
        return 0
    result = asyncio.run(restore(settings, parse_time(args.target)))
    print(
        f"restored to {result.target.isoformat()} from base backup {result.backup.label};"
        f" audit log: {result.log_size} entries; {result.objects_restored} object files"
        " put back"
    )
    if result.kept_aside is not None:
        print(f"the cluster it replaced is kept in {result.kept_aside}")
    if result.rollbacks:
        for message in result.rollbacks:
            print(message)
        raise RollbackDetected(
            f"the restored audit log ({result.log_size} entries) is behind a checkpoint an"
            " inspector cosigned: `sealhub serve` refuses to start on it"
        )
    return 0
