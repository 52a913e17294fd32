"""Worker processes for everything that parses uploaded PDFs.

Each worker runs under an address-space limit (RLIMIT_AS) and a per-task CPU-time budget
(RLIMIT_CPU, re-armed before every task), so a decompression bomb or a parser loop kills
or starves one worker and surfaces as ``pdf_too_complex`` instead of taking the gateway
down. A broken pool is replaced transparently.

Keys never enter a worker. Sealing is split: the worker parses the upload and lays out the
sealed revision (:func:`seals.pades.prepare_seal`) and returns the document digest; the
calling process builds and signs the CMS through the :class:`SealKey` and splices it in,
which needs no PDF parsing. So an HSM-backed key works, and a compromised worker holds
nothing worth stealing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import multiprocessing
import resource
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pyhanko.sign.timestamps.api import TimeStamper

from seals.errors import PdfTooComplex, SealError, UnreadablePdf
from seals.pades import (
    FieldPlacement,
    Level,
    PreparedSeal,
    ReservedSpaceTooSmall,
    SealAppearance,
    SealRequest,
    async_finish_seal,
    async_finish_seal_into,
    check_level,
    prepare_seal,
)
from seals.pdfcheck import DEFAULT_MAX_BYTES, PdfSummary, check_pdf
from seals.signer import SealSigner
from seals.verify import SealIssuer, VerificationReport, verify

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int = 1536 * 1024 * 1024
    cpu_seconds_per_task: int = 20
    tasks_per_worker: int = 500


_task_budget = 0


def _init_worker(memory_bytes: int, cpu_seconds: int, tasks: int) -> None:
    global _task_budget
    _task_budget = cpu_seconds
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # The hard limit bounds the whole life of the worker; the soft one is re-armed per task.
    hard = cpu_seconds * (tasks + 1) + 60
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, hard))


def _arm_cpu_budget() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (min(used + _task_budget, hard), hard))


def _in_worker(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """Run one task; whatever escapes it leaves the worker as a typed input error.

    Parsers meet damaged files with assertions, lookups and decoder errors of their own
    (pyhanko, asn1crypto, zlib) that no list of expected exceptions ever covers; in a worker
    every one of them means "this document cannot be processed", never a gateway bug.
    """
    _arm_cpu_budget()
    try:
        return fn(*args)
    except SealError:
        raise
    except MemoryError:
        raise PdfTooComplex("the document needs more memory than a worker may use") from None
    except RecursionError:
        raise PdfTooComplex("the document's structure nests too deeply") from None
    except Exception as exc:
        raise UnreadablePdf.wrapping(exc) from None


def _log_unreadable(exc: UnreadablePdf) -> None:
    """The caller gets pdf_malformed; the log keeps where the parser gave up, in case it
    was our bug rather than the document's."""
    log.warning("a worker could not process a document: %s: %s", exc.origin, exc.message)


class SealWorkerPool:
    """Run parsing, verification and the document side of sealing in limited workers."""

    def __init__(
        self,
        workers: int = 2,
        limits: WorkerLimits | None = None,
        start_method: str = "forkserver",
    ) -> None:
        self._workers = workers
        self._limits = limits or WorkerLimits()
        self._context = multiprocessing.get_context(start_method)
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        lim = self._limits
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(lim.memory_bytes, lim.cpu_seconds_per_task, lim.tasks_per_worker),
            max_tasks_per_child=lim.tasks_per_worker,
        )

    def _submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> concurrent.futures.Future[T]:
        with self._lock:
            executor = self._executor
        try:
            return executor.submit(_in_worker, fn, args)
        except BrokenProcessPool:
            self._replace(executor)
            with self._lock:
                return self._executor.submit(_in_worker, fn, args)

    def _replace(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a picklable module-level function in a worker; a killed worker is refused input."""
        future = self._submit(fn, args)
        try:
            return future.result()
        except UnreadablePdf as exc:
            _log_unreadable(exc)
            raise
        except BrokenProcessPool:
            self._replace_after(future)
            raise PdfTooComplex(
                "processing the document exceeded the worker's memory or CPU-time limit"
            ) from None

    async def run_async(self, fn: Callable[..., T], *args: Any) -> T:
        future = self._submit(fn, args)
        try:
            return await asyncio.wrap_future(future)
        except UnreadablePdf as exc:
            _log_unreadable(exc)
            raise
        except BrokenProcessPool:
            self._replace_after(future)
            raise PdfTooComplex(
                "processing the document exceeded the worker's memory or CPU-time limit"
            ) from None

    def _replace_after(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            executor = self._executor
        self._replace(executor)

    def check(self, data: bytes | Path, max_bytes: int | None = DEFAULT_MAX_BYTES) -> PdfSummary:
        return self.run(_check, data, max_bytes)

    def verify(
        self,
        data: bytes | Path,
        trust_roots: Sequence[bytes],
        crls: Sequence[bytes] = (),
        known_seals: Mapping[str, str] | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        *,
        seal_issuer: SealIssuer,
    ) -> VerificationReport:
        return self.run(
            _verify, data, tuple(trust_roots), tuple(crls), known_seals, max_bytes, seal_issuer
        )

    async def averify(
        self,
        data: bytes | Path,
        trust_roots: Sequence[bytes],
        crls: Sequence[bytes] = (),
        known_seals: Mapping[str, str] | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        *,
        seal_issuer: SealIssuer,
    ) -> VerificationReport:
        return await self.run_async(
            _verify, data, tuple(trust_roots), tuple(crls), known_seals, max_bytes, seal_issuer
        )

    async def aseal(
        self,
        data: bytes,
        signer: SealSigner,
        appearance: SealAppearance,
        *,
        level: Level | str = Level.B_B,
        timestamper: TimeStamper | None = None,
        trust_roots: Sequence[bytes] = (),
        crls: Sequence[bytes] = (),
        placement: FieldPlacement | None = None,
        field_name: str | None = None,
        reason: str | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> bytes:
        """Seal: the worker prepares the document, this process signs through the SealKey."""
        request = SealRequest.for_signer(
            signer,
            appearance,
            level=Level(level),
            trust_roots=tuple(trust_roots),
            crls=tuple(crls),
            placement=placement or FieldPlacement(),
            field_name=field_name,
            reason=reason,
            max_bytes=max_bytes,
        )
        check_level(request.level, timestamper)
        ts = timestamper if request.level is not Level.B_B else None
        prepared: PreparedSeal = await self.run_async(prepare_seal, data, request)
        try:
            return await async_finish_seal(prepared, signer, ts)
        except ReservedSpaceTooSmall as exc:
            bigger = replace(request, bytes_reserved=exc.needed + 8192)
            prepared = await self.run_async(prepare_seal, data, bigger)
            return await async_finish_seal(prepared, signer, ts)

    async def aseal_file(
        self,
        source: Path,
        target: Path,
        signer: SealSigner,
        appearance: SealAppearance,
        *,
        level: Level | str = Level.B_B,
        timestamper: TimeStamper | None = None,
        trust_roots: Sequence[bytes] = (),
        crls: Sequence[bytes] = (),
        placement: FieldPlacement | None = None,
        field_name: str | None = None,
        reason: str | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        """Seal the PDF in *source* into *target* (both files): the worker reads the draft
        from its file and writes the sealed revision to the other, this process signs and
        writes the CMS at its offset. No process ever holds the document in memory."""
        request = SealRequest.for_signer(
            signer,
            appearance,
            level=Level(level),
            trust_roots=tuple(trust_roots),
            crls=tuple(crls),
            placement=placement or FieldPlacement(),
            field_name=field_name,
            reason=reason,
            max_bytes=max_bytes,
        )
        check_level(request.level, timestamper)
        ts = timestamper if request.level is not Level.B_B else None
        prepared: PreparedSeal = await self.run_async(_prepare_file, source, target, request)
        try:
            with target.open("r+b") as output:
                await async_finish_seal_into(prepared, signer, output, ts)
        except ReservedSpaceTooSmall as exc:
            bigger = replace(request, bytes_reserved=exc.needed + 8192)
            prepared = await self.run_async(_prepare_file, source, target, bigger)
            with target.open("r+b") as output:
                await async_finish_seal_into(prepared, signer, output, ts)

    def seal(self, data: bytes, signer: SealSigner, appearance: SealAppearance, **kw: Any) -> bytes:
        return asyncio.run(self.aseal(data, signer, appearance, **kw))

    def close(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SealWorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _verify(
    data: bytes | Path,
    trust_roots: tuple[bytes, ...],
    crls: tuple[bytes, ...],
    known_seals: Mapping[str, str] | None,
    max_bytes: int | None,
    seal_issuer: SealIssuer,
) -> VerificationReport:
    if isinstance(data, Path):
        with data.open("rb") as stream:
            return verify(
                stream,
                trust_roots,
                crls,
                seal_issuer=seal_issuer,
                known_seals=known_seals,
                max_bytes=max_bytes,
            )
    return verify(
        data,
        trust_roots,
        crls,
        seal_issuer=seal_issuer,
        known_seals=known_seals,
        max_bytes=max_bytes,
    )


def _check(data: bytes | Path, max_bytes: int | None) -> PdfSummary:
    if isinstance(data, Path):
        with data.open("rb") as stream:
            return check_pdf(stream, max_bytes)
    return check_pdf(data, max_bytes)


def _prepare_file(source: Path, target: Path, request: SealRequest) -> PreparedSeal:
    """In the worker: read the draft from *source*, write the sealed revision to *target*."""
    with source.open("rb") as draft, target.open("w+b") as output:
        return prepare_seal(draft, request, output)
