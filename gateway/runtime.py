"""Everything a running gateway holds: settings, database pool, keys. Opened once, closed once."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from gateway.config import Settings
from gateway.directory.orgs import (
    DEMO_GROUP_CODE,
    DEMO_GROUP_NAME,
    county_governments,
    demo_orgs_csv,
    parse_orgs_csv,
)
from keys.clock import SYSTEM_CLOCK, Clock
from keys.keystore import FileKeyStore, KeyStore
from keys.master import MasterKey, load_or_create_master_key
from keys.platform import PlatformPki, ensure_platform_pki
from storage import directory
from storage.db import APP_ROLE, OWNER_ROLE, check_application_login, create_pool, with_login
from storage.embedded import embedded_postgres
from storage.migrate import MigrationError, create_logins, migrate, pending_migrations
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
# The gateway's clock: the wall clock unless a test puts another under this key.
CLOCK: web.AppKey[Clock] = web.AppKey("clock")


def clock_of(app: web.Application) -> Clock:
    """The clock the app's services and loops take: ``app[CLOCK]`` when a test injected one
    (even after the app was built), else the wall clock."""
    return lambda: app.get(CLOCK, SYSTEM_CLOCK)()


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


@dataclass(frozen=True)
class DatabaseUrls:
    """The two logins: the gateway's (``app``) and the owner's for migrations (``owner``)."""

    app: str = field(repr=False)
    owner: str | None = field(repr=False)

    @property
    def admin(self) -> str:
        """For the local admin commands: the owner's login when there is one."""
        return self.owner or self.app


@contextlib.asynccontextmanager
async def database_urls(settings: Settings) -> AsyncIterator[DatabaseUrls]:
    """``DATABASE_URL`` (+ ``DATABASE_OWNER_URL``), or the embedded server started for as
    long as the block runs, with both logins made by its superuser."""
    if settings.database_url:
        yield DatabaseUrls(settings.database_url, settings.database_owner_url)
        return
    with embedded_postgres(settings.data_dir) as superuser_url:
        await create_logins(superuser_url)
        yield DatabaseUrls(
            with_login(superuser_url, APP_ROLE), with_login(superuser_url, OWNER_ROLE)
        )


async def admin_connection(urls: DatabaseUrls) -> asyncpg.Connection:
    """The local admin commands' connection: the owner when its login is configured, else the
    application login (which is all that creating officials or importing units needs)."""
    from storage.db import connect

    if urls.owner is not None:
        if migrated := await migrate(urls.owner):
            log.info("migrations applied", extra={"migrations": ",".join(migrated)})
        return await connect(urls.owner, role=OWNER_ROLE)
    return await connect(urls.app, role=APP_ROLE)


async def load_demo_data(pool: asyncpg.Pool) -> None:
    departments = parse_orgs_csv(demo_orgs_csv())
    async with pool.acquire() as connection, connection.transaction():
        inserted, _ = await directory.upsert_departments(connection, departments)
        await directory.ensure_group(
            connection, DEMO_GROUP_CODE, DEMO_GROUP_NAME, county_governments(departments)
        )
    log.info("demo data loaded", extra={"departments": len(departments), "new": inserted})


def open_keystore(settings: Settings, master_key: MasterKey) -> KeyStore:
    """The key store ``SEALHUB_KEYSTORE`` chooses: the file store, or the PKCS#11 token for
    the purposes :func:`keys.hsm.held_in_token` names and the file store for the others."""
    files = FileKeyStore(settings.data_dir / "keystore", master_key)
    if settings.pkcs11 is None:
        return files
    from keys.hsm import open_token_store  # python-pkcs11 is loaded only when a token is used

    store, on_file = open_token_store(
        files,
        module=str(settings.pkcs11.module),
        token_label=settings.pkcs11.token_label,
        pin=settings.pkcs11.pin,
    )
    log.info("PKCS#11 key store", extra={"token": settings.pkcs11.token_label})
    for purpose in on_file:
        log.warning(
            "the token cannot make these keys; they stay in the file store",
            extra={"purpose": purpose},
        )
    return store


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
        keystore=open_keystore(settings, master_key),
        now=SYSTEM_CLOCK(),
    )
    async with database_urls(settings) as urls:
        if urls.owner is not None:
            # The owner's login is used here, before the pool opens, and then never again.
            applied = await migrate(urls.owner)
            if applied:
                log.info("migrations applied", extra={"migrations": ",".join(applied)})
        objects = await open_store(object_store_config(settings), master_key)
        pool = await create_pool(urls.app)
        try:
            async with pool.acquire() as connection:
                await check_application_login(connection)
                pending = await pending_migrations(connection)
            if pending:
                raise MigrationError(
                    "the schema is not current (missing " + ", ".join(pending) + "):"
                    " run `sealhub migrate` or set DATABASE_OWNER_URL"
                )
            if demo:
                await load_demo_data(pool)
            yield Runtime(
                settings=settings,
                pool=pool,
                master_key=master_key,
                pki=pki,
                objects=objects,
                database_url=urls.app,
            )
        finally:
            await pool.close()
            await objects.aclose()
