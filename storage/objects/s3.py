"""S3 backend on the (synchronous) ``minio`` SDK, run in worker threads.

Objects larger than one part go up as a multipart upload that is completed only after the
last part, and aborted on any error or limit, so a partial object is never visible (a
killed process leaves an incomplete upload, which S3 does not list; a bucket lifecycle
rule ``AbortIncompleteMultipartUpload`` reclaims its space). Reads are HTTP Range
requests on the stored offsets, streamed in bounded chunks and resumed where they broke.
Transient failures (connection errors, 5xx, SlowDown) are retried with exponential
backoff and jitter; other 4xx answers are not.

Uploads use the SDK's own request builders (``_put_object``, ``_create_multipart_upload``
and friends, unchanged through minio 7.x): its public ``put_object`` pulls from a blocking
reader, copies every part and retries on its own terms, which fits neither an async
source nor our abort and retry rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypeVar, cast

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import InvalidResponseError, S3Error, ServerError

from keys.clock import SYSTEM_CLOCK
from keys.master import MasterKey
from storage.objects._engine import (
    SealedStore,
    StoredHead,
    StoredWriter,
    check_object_key,
    is_object_key,
    require_aware,
)
from storage.objects.api import ObjectNotFound, StorageUnavailable
from storage.objects.config import S3StoreConfig
from storage.objects.crypto import MAX_HEADER_SIZE

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"}
)
_LIST_PAGE = 1000
_MAX_DELAY = 5.0


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the network or the server failed, not our request."""
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_CODES or exc.response.status >= 500
    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    if isinstance(exc, InvalidResponseError):
        status = getattr(exc, "_code", 0)
        return isinstance(status, int) and status >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, S3Error) and exc.code in {"NoSuchKey", "NoSuchObject"}


def _unavailable(exc: BaseException) -> StorageUnavailable:
    if isinstance(exc, S3Error):
        return StorageUnavailable(f"S3 refused the request: {exc.code}")
    return StorageUnavailable(f"S3 is unreachable: {type(exc).__name__}")


class S3ObjectStore(SealedStore):
    def __init__(
        self,
        config: S3StoreConfig,
        master_key: MasterKey,
        previous_keys: Sequence[MasterKey] = (),
    ) -> None:
        super().__init__(master_key, previous_keys)
        self.config = config
        self.bucket = config.bucket
        # No urllib3 retries: ours (below) know which failures are worth a retry.
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=120),
            maxsize=10,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            region=config.region,
            http_client=self._http,
        )

    def __repr__(self) -> str:
        return f"S3ObjectStore(endpoint={self.config.endpoint!r}, bucket={self.bucket!r})"

    async def aclose(self) -> None:
        self._http.clear()

    async def _call(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run one SDK call in a thread, retrying transient failures with backoff."""
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await asyncio.to_thread(func, *args, **kwargs)
            except Exception as exc:
                if _not_found(exc):
                    raise ObjectNotFound("no object with this key") from None
                if attempt == attempts or not is_transient(exc):
                    raise _unavailable(exc) from exc
                delay = self._backoff(attempt)
                log.info(
                    "S3 call failed (%s), retry %d in %.2fs", type(exc).__name__, attempt, delay
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        base = self.config.retry_base_delay * 2 ** (attempt - 1)
        return float(min(_MAX_DELAY, base * (0.5 + random.random())))  # noqa: S311 - jitter

    async def prepare(self) -> None:
        """Create the bucket if missing (two processes may race to do it)."""
        if await self._call(self.client.bucket_exists, self.bucket):
            return
        try:
            await self._call(self.client.make_bucket, self.bucket, location=self.config.region)
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, S3Error)
                and cause.code in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}
            ):
                raise

    async def _begin_write(self, key: str) -> StoredWriter:
        return _MultipartWriter(self, key)

    async def _read_head(self, key: str) -> StoredHead:
        def fetch() -> StoredHead:
            try:
                response = self.client.get_object(
                    self.bucket, key, offset=0, length=MAX_HEADER_SIZE
                )
            except S3Error as exc:
                if exc.code != "InvalidRange":
                    raise
                # Only an empty stored object has no byte 0; the header check refuses it.
                return StoredHead(data=b"", stored_size=0, created_at=SYSTEM_CLOCK())
            try:
                data = response.read()
                headers = response.headers
            finally:
                response.close()
                response.release_conn()
            content_range = headers.get("Content-Range", "")
            if "/" in content_range:
                stored_size = int(content_range.rsplit("/", 1)[1])
            else:
                stored_size = len(data)
            modified = headers.get("Last-Modified")
            created = parsedate_to_datetime(modified) if modified else SYSTEM_CLOCK()
            return StoredHead(data=data, stored_size=stored_size, created_at=created)

        return await self._call(fetch)

    async def _read_stored(self, key: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        position = start
        failures = 0
        chunk_size = self.config.read_chunk_size
        while position < end:
            response = await self._call(
                self.client.get_object, self.bucket, key, offset=position, length=end - position
            )
            try:
                while position < end:
                    try:
                        data = await asyncio.to_thread(response.read, chunk_size)
                    except Exception as exc:
                        failures += 1
                        if failures >= self.config.max_attempts or not is_transient(exc):
                            raise _unavailable(exc) from exc
                        await asyncio.sleep(self._backoff(failures))
                        break  # resume from `position` with a new ranged request
                    if not data:
                        return  # shorter than its layout: the decoder reports truncation
                    position += len(data)
                    yield data
            finally:
                response.close()
                response.release_conn()

    async def delete(self, key: str) -> None:
        check_object_key(key)
        with contextlib.suppress(ObjectNotFound):
            await self._call(self.client.remove_object, self.bucket, key)

    async def list_keys(self, older_than: datetime) -> AsyncIterator[str]:
        cutoff = require_aware(older_than)
        after: str | None = None
        while True:
            page = await self._call(self._list_page, after)
            for name, modified in page:
                if is_object_key(name) and modified.timestamp() < cutoff:
                    yield name
            if len(page) < _LIST_PAGE:
                return
            after = page[-1][0]

    def _list_page(self, after: str | None) -> list[tuple[str, datetime]]:
        objects = self.client.list_objects(self.bucket, recursive=True, start_after=after)
        return [
            (obj.object_name, obj.last_modified or SYSTEM_CLOCK())
            for obj in itertools.islice(objects, _LIST_PAGE)
        ]


def _body(buffer: bytearray) -> bytes:
    """The SDK annotates bodies as bytes but only hashes and sends them: any buffer works,
    and passing ours avoids copying a whole part."""
    return cast(bytes, buffer)


class _MultipartWriter(StoredWriter):
    """Buffers up to one part; small objects become a single PUT on commit."""

    def __init__(self, store: S3ObjectStore, key: str) -> None:
        self._store = store
        self._client = store.client
        self._bucket = store.bucket
        self._key = key
        self._part_size = store.config.part_size
        # One growing buffer handed to the SDK as is: joining chunks would double the peak.
        self._pending = bytearray()
        self._upload_id: str | None = None
        self._parts: list[Part] = []

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._pending += data
        if len(self._pending) >= self._part_size:
            await self._upload_part(self._take())

    def _take(self) -> bytearray:
        blob, self._pending = self._pending, bytearray()
        return blob

    async def _upload_part(self, blob: bytearray) -> None:
        call = self._store._call
        headers: dict[str, Any] = {"Content-Type": "application/octet-stream"}
        if self._upload_id is None:
            self._upload_id = await call(
                self._client._create_multipart_upload, self._bucket, self._key, headers
            )
        number = len(self._parts) + 1
        etag = await call(
            self._client._upload_part,
            self._bucket,
            self._key,
            _body(blob),
            None,
            self._upload_id,
            number,
        )
        self._parts.append(Part(number, etag))

    async def commit(self) -> None:
        call = self._store._call
        if self._upload_id is None:
            blob = self._take()
            await call(self._put_single, blob)
            return
        if self._pending:
            await self._upload_part(self._take())
        await call(
            self._client._complete_multipart_upload,
            self._bucket,
            self._key,
            self._upload_id,
            self._parts,
        )
        self._upload_id = None

    def _put_single(self, blob: bytearray) -> None:
        headers: dict[str, Any] = {"Content-Type": "application/octet-stream"}
        self._client._put_object(self._bucket, self._key, _body(blob), headers)

    async def abort(self) -> None:
        self._pending = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            with contextlib.suppress(ObjectNotFound):
                await self._store._call(
                    self._client._abort_multipart_upload, self._bucket, self._key, upload_id
                )
