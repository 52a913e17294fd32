"""The long form of the load run: ``python -m tests.load --seconds 60 --departments 200``.

Starts its own PostgreSQL (pgserver, or ``TEST_DATABASE_URL``), a moto S3 server for
``--store s3``, three gateway processes, runs the load, prints the table and the problems
found; exit status 1 when there were any.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from storage.migrate import migrate
from tests.conftest import _tune, database_url_for
from tests.load.cluster import start_cluster
from tests.load.run import run_load
from tests.s3server import MotoServer
from tests.seals.seal_corpus import reportlab_pdf


async def _new_database(server_url: str) -> str:
    import asyncpg

    name = "load_" + secrets.token_hex(4)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url_for(server_url, name)
    await migrate(url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--departments", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32, help="ordinary requests in flight")
    parser.add_argument("--store", choices=["filesystem", "s3"], default="filesystem")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="shload-", dir="/tmp"))
    server = None
    moto = None
    try:
        server_url = os.environ.get("TEST_DATABASE_URL")
        if not server_url:
            from pgserver.postgres_server import get_server

            os.chmod(root, 0o755)
            server = get_server(root / "pg", cleanup_mode="stop")
            server_url = server.get_uri()
            asyncio.run(_tune(server_url))
        database_url = asyncio.run(_new_database(server_url))
        env: dict[str, str] = {}
        if args.store == "s3":
            moto = MotoServer()
            moto.wait_ready()
            env = {
                "S3_ENDPOINT": f"http://{moto.endpoint}",
                "S3_ACCESS_KEY": "testing",
                "S3_SECRET_KEY": "testing",
                "S3_BUCKET": "sealhub-load",
            }
        cluster = start_cluster(database_url, root / "data", store_env=env)
        try:
            outcome = asyncio.run(
                run_load(
                    cluster,
                    seconds=args.seconds,
                    departments=args.departments,
                    concurrency=args.concurrency,
                    pdf=reportlab_pdf(pages=1),
                    state_dir=root,
                )
            )
        finally:
            cluster.stop()
        print(f"[{args.store}] {args.departments} departments, {args.seconds:g} s")
        print(outcome.report())
        for problem in outcome.problems:
            print(f"problem: {problem}")
        if outcome.problems:
            print("gateway logs:\n" + cluster.logs()[-20000:], file=sys.stderr)
        return 1 if outcome.problems else 0
    finally:
        if moto is not None:
            moto.stop()
        if server is not None:
            server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
