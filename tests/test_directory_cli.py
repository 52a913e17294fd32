"""Migrations, roles, the directory repository and the ``sealhub`` commands, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from gateway.directory.orgs import OrgFileError, demo_orgs_csv, parse_orgs_csv
from storage import directory
from storage.db import connect, create_pool
from storage.migrate import available_migrations, migrate
from tests.conftest import REPO


def run_cli(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "SEALHUB_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_shipped_demo_file_is_the_yulin_file() -> None:
    departments = parse_orgs_csv(demo_orgs_csv())
    assert len(departments) == 234
    assert sum(d.kind == "county" for d in departments) == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,name\n", "line 1"),
        ("code,name,name_en,parent,kind\nBAD CODE,x,,,city\n", "line 2: invalid code"),
        (
            "code,name,name_en,parent,kind\nyl,x,,,city\nyl,y,,,city\n",
            "line 3: code 'yl' appears twice",
        ),
        ("code,name,name_en,parent,kind\nyl,,,,city\n", "line 2: name"),
        ("code,name,name_en,parent,kind\nyl,x,,,City!\n", "line 2: invalid kind"),
        ("code,name,name_en,parent,kind\nyl,x,,\n", "line 2: expected 5 columns"),
    ],
)
def test_bad_org_files_point_at_the_line(text: str, message: str) -> None:
    with pytest.raises(OrgFileError, match=message):
        parse_orgs_csv(text)


def test_import_orgs_is_idempotent_and_all_or_nothing(db_url: str, tmp_path: Path) -> None:
    source = tmp_path / "orgs.csv"
    source.write_text(demo_orgs_csv(), "utf-8")
    first = run_cli("import-orgs", str(source), database_url=db_url, data_dir=tmp_path / "d")
    assert first.returncode == 0, first.stderr
    assert "imported 234 units: 234 new, 0 updated" in first.stdout
    assert "importing" in first.stderr  # the progress bar
    again = run_cli("import-orgs", str(source), database_url=db_url, data_dir=tmp_path / "d")
    assert "234 units: 0 new, 234 updated" in again.stdout

    dangling = tmp_path / "dangling.csv"
    dangling.write_text("code,name,name_en,parent,kind\nzz-new,新单位,,zz-missing,department\n")
    refused = run_cli("import-orgs", str(dangling), database_url=db_url, data_dir=tmp_path / "d")
    assert refused.returncode == 2
    assert "parent" in refused.stderr

    async def count() -> int:
        connection = await connect(db_url)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM departments"))
        finally:
            await connection.close()

    assert asyncio.run(count()) == 234


def test_migrate_command_reports_and_is_idempotent(db_url: str, tmp_path: Path) -> None:
    result = run_cli("migrate", database_url=db_url, data_dir=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert "nothing, the schema is current" in result.stdout


def test_configuration_errors_exit_2_naming_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "SEALHUB_PORT": "not-a-port"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--data-dir", str(tmp_path), "migrate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SEALHUB_PORT" in result.stderr and "Traceback" not in result.stderr


async def test_schema_belongs_to_owner_and_concurrent_migrations_are_safe(db_url: str) -> None:
    results = await asyncio.gather(migrate(db_url), migrate(db_url), migrate(db_url))
    assert results == [[], [], []]
    connection = await connect(db_url, role=None)
    try:
        owner = await connection.fetchval(
            "SELECT tableowner FROM pg_tables"
            " WHERE schemaname = 'sealhub' AND tablename = 'departments'"
        )
        versions = await connection.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await connection.close()
    assert owner == "sealhub_owner"
    assert versions == len(available_migrations())


async def test_app_role_cannot_change_the_schema(db_url: str) -> None:
    pool = await create_pool(db_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT current_user") == "sealhub_app"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute("DROP TABLE departments")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute("CREATE TABLE sneaky (x int)")
    finally:
        await pool.close()


async def test_directory_repository(db_url: str) -> None:
    connection = await connect(db_url)
    try:
        departments = parse_orgs_csv(demo_orgs_csv())
        # Children before parents in one transaction is fine: the key is checked at commit.
        async with connection.transaction():
            assert await directory.upsert_departments(connection, list(reversed(departments))) == (
                234,
                0,
            )
            group = await directory.create_group(
                connection, "bureaus", "两个局", ["yl-jyj", "yl-czj", "yl-jyj"]
            )
        assert group.members == ("yl-czj", "yl-jyj")
        expanded = await directory.expand_recipients(connection, ["bureaus", "yl-czj", "yl.rx"])
        assert expanded == ["yl-czj", "yl-jyj", "yl.rx"]
        with pytest.raises(directory.UnknownRecipient, match="nope"):
            await directory.expand_recipients(connection, ["yl", "nope"])
        # Writers run in their caller's transaction: none of their own, none implied.
        with pytest.raises(RuntimeError, match="transaction"):
            await directory.create_group(connection, "solo", "x", ["yl"])
        assert await directory.list_groups(connection) == [group]
        page = await directory.list_departments(connection, query="50%_", limit=10)
        assert page == []  # LIKE wildcards in the query are literal
    finally:
        await connection.close()
