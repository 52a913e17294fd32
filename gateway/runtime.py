"""Everything a running gateway holds: settings, database pool, keys. Opened once, closed once."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from gateway.config import Settings
from gateway.orgs import (
    DEMO_GROUP_CODE,
    DEMO_GROUP_NAME,
    county_governments,
    demo_orgs_csv,
    parse_orgs_csv,
)
from keys.master import MasterKey, load_or_create_master_key
from keys.platform import PlatformPki, ensure_platform_pki
from storage import directory
from storage.db import create_pool
from storage.embedded import embedded_postgres
from storage.migrate import migrate
from storage.objects import (
    FilesystemStoreConfig,
    ObjectStore,
    S3StoreConfig,
    StoreConfig,
    open_store,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    master_key: MasterKey
    pki: PlatformPki
    objects: ObjectStore
    database_url: str = field(repr=False)


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)


def object_store_config(settings: Settings) -> StoreConfig:
    """S3/MinIO when ``S3_ENDPOINT`` is set, else encrypted files in the data directory."""
    if settings.s3 is None:
        return FilesystemStoreConfig(root=settings.data_dir / "objects")
    return S3StoreConfig(
        endpoint=settings.s3.endpoint,
        access_key=settings.s3.access_key,
        secret_key=settings.s3.secret_key,
        bucket=settings.s3.bucket,
        region=settings.s3.region,
        secure=settings.s3.secure,
    )


@contextlib.asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """``DATABASE_URL``, or the embedded server started for as long as the block runs."""
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_postgres(settings.data_dir) as url:
        yield url


async def load_demo_data(pool: asyncpg.Pool) -> None:
    departments = parse_orgs_csv(demo_orgs_csv())
    async with pool.acquire() as connection:
        inserted, _ = await directory.upsert_departments(connection, departments)
        await directory.ensure_group(
            connection, DEMO_GROUP_CODE, DEMO_GROUP_NAME, county_governments(departments)
        )
    log.info("demo data loaded", extra={"departments": len(departments), "new": inserted})


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, demo: bool = False) -> AsyncIterator[Runtime]:
    prepare_data_dir(settings)
    master_key = load_or_create_master_key(
        settings.data_dir / "secrets" / "master.key", settings.master_key
    )
    pki = ensure_platform_pki(
        settings.data_dir,
        public_url=settings.public_origin,
        hostnames=settings.public_hostnames,
        master_key=master_key,
        now=datetime.now(UTC),
    )
    async with database_url(settings) as url:
        applied = await migrate(url)
        if applied:
            log.info("migrations applied", extra={"migrations": ",".join(applied)})
        objects = await open_store(object_store_config(settings), master_key)
        pool = await create_pool(url)
        try:
            if demo:
                await load_demo_data(pool)
            yield Runtime(
                settings=settings,
                pool=pool,
                master_key=master_key,
                pki=pki,
                objects=objects,
                database_url=url,
            )
        finally:
            await pool.close()
            await objects.aclose()
