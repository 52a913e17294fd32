"""``sealhub official create``: the bootstrap path for the first officials.

Local access to the data directory and the database is the trust anchor here, so any
role may be granted (API.md); the enrollment code is printed once and stored hashed.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from gateway.config import Settings
from gateway.console.links import enrollment_link, served_origin
from keys.clock import SYSTEM_CLOCK, Clock
from keys.codes import Code, CodedError


class OfficialCommandError(CodedError):
    """A bad argument or a refusal from the database; the message is for the operator."""

    code = Code.OFFICIAL_COMMAND_ERROR


def add_official_commands(subparsers: Any) -> None:
    """Register ``official create`` on the ``sealhub`` command's subparsers."""
    official = subparsers.add_parser("official", help="manage officials")
    official.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    actions = official.add_subparsers(dest="official_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an official; prints its enrollment code")
    create.add_argument("--data-dir", dest="sub_data_dir", help="data directory")
    create.add_argument("--department", required=True, help="department code, e.g. yl-jyj")
    create.add_argument("--name", required=True, help="the official's name")
    create.add_argument("--roles", required=True, help="comma-separated roles, e.g. clerk,leader")
    create.add_argument("--json", action="store_true", help="print JSON")


async def run_official_command(
    args: argparse.Namespace, settings: Settings, *, clock: Clock = SYSTEM_CLOCK
) -> None:
    from gateway.identity.service import create_official
    from gateway.runtime import admin_connection, database_urls, prepare_data_dir
    from storage.audit_outbox import OutboxSink
    from storage.identity.errors import IdentityError

    if args.official_command != "create":
        raise OfficialCommandError(f"unknown action {args.official_command!r}")
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    prepare_data_dir(settings)
    async with database_urls(settings) as urls:
        connection = await admin_connection(urls)
        try:
            created = await create_official(
                connection,
                name=args.name,
                department=args.department,
                roles=roles,
                now=clock(),
                audit=OutboxSink(),
                actor=None,
                via="cli",
            )
        except IdentityError as exc:
            raise OfficialCommandError(exc.detail) from None
        finally:
            await connection.close()
    expires = created.code_expires_at.isoformat().replace("+00:00", "Z")
    origin = served_origin(
        settings.data_dir,
        settings.public_origin,
        explicit=bool(os.environ.get("SEALHUB_PUBLIC_URL")),
    )
    link = enrollment_link(origin, created.official.id, created.enrollment_code)
    if args.json:
        print(
            json.dumps(
                {
                    "id": created.official.id,
                    "enrollment_code": created.enrollment_code,
                    "enrollment_code_expires_at": expires,
                    "department": created.official.department,
                    "roles": list(created.official.roles),
                    "enrollment_link": link,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(f"official id:      {created.official.id}")
        print(f"enrollment code:  {created.enrollment_code}  (one use, expires {expires})")
        print(f"enroll in the console (open it in the official's own browser): {link}")
