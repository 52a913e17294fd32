"""Worker processes for everything that parses uploaded PDFs.

Each worker runs under an address-space limit (RLIMIT_AS) and a per-task CPU-time budget
(RLIMIT_CPU, re-armed before every task), so a decompression bomb or a parser loop kills
or starves one worker and surfaces as ``pdf_too_complex`` instead of taking the gateway
down. A broken pool is replaced transparently.

When a worker dies, its executor fails every task queued or running on it, not only the
one that killed it. Each task records in shared memory which worker started it, so after
a break the pool knows the culprit (the task whose worker died of its own accord; the
executor terminates the others with SIGTERM): the culprit gets ``pdf_too_complex`` at
once, every other task is run again, once, on the fresh executor. Worker tasks are pure
(parse, lay out, verify), so running one again has no second effect.

Keys never enter a worker. Sealing is split: the worker parses the upload and lays out the
sealed revision (:func:`seals.pades.prepare_seal`) and returns the document digest; the
calling process builds and signs the CMS through the :class:`SealKey` and splices it in,
which needs no PDF parsing. So an HSM-backed key works, and a compromised worker holds
nothing worth stealing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import math
import multiprocessing
import os
import resource
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pyhanko.sign.timestamps.api import TimeStamper

from seals.errors import PdfTooComplex, SealError, UnreadablePdf
from seals.pades import (
    DEFAULT_OPTIONS,
    PreparedSeal,
    ReservedSpaceTooSmall,
    SealAppearance,
    SealJob,
    SealOptions,
    SealPosition,
    async_finish_seal,
    async_finish_seal_into,
    prepare_seal,
    seal_position,
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

# Slots in shared memory, one per task in flight: the pid of the worker that started it.
_SLOTS = 1024
_NO_SLOT = -1  # all slots taken: the task cannot be told apart from the culprit
# A task that a broken executor failed runs once more; a culprit never does.
_ATTEMPTS = 2
_started_by: ctypes.Array[ctypes.c_int64] | None = None


def _init_worker(
    memory_bytes: int, cpu_seconds: int, tasks: int, started_by: ctypes.Array[ctypes.c_int64]
) -> None:
    global _task_budget, _started_by
    _task_budget = cpu_seconds
    _started_by = started_by
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # The hard limit bounds the whole life of the worker; the soft one is re-armed per task.
    hard = cpu_seconds * (tasks + 1) + 60
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, hard))


def _arm_cpu_budget() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (min(used + _task_budget, hard), hard))


def _in_worker(slot: int, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """Run one task; whatever escapes it leaves the worker as a typed input error.

    Parsers meet damaged files with assertions, lookups and decoder errors of their own
    (pyhanko, asn1crypto, zlib) that no list of expected exceptions ever covers; in a worker
    every one of them means "this document cannot be processed", never a gateway bug.
    """
    if slot != _NO_SLOT and _started_by is not None:
        _started_by[slot] = os.getpid()  # if this worker dies now, this task killed it
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
    log.warning("a worker could not process a document: %s: %s", exc.origin, exc.detail)


_TOO_COMPLEX = "processing the document exceeded the worker's memory or CPU-time limit"


class _Generation:
    """One executor and, once it broke, which of its workers died of their own task."""

    def __init__(self, executor: concurrent.futures.ProcessPoolExecutor) -> None:
        self.executor = executor
        self._lock = threading.Lock()
        self._self_killed: frozenset[int] | None = None

    def workers_that_died_of_their_task(self) -> frozenset[int]:
        """Blocks until every worker of the broken executor is gone; computed once.

        The executor terminates its surviving workers with SIGTERM after a break; any other
        end (SIGXCPU, SIGKILL, a crash) was the doing of the task that worker ran. Only one
        thread may reap: the forkserver reports each exit status once.
        """
        with self._lock:
            if self._self_killed is None:
                workers = list((self.executor._processes or {}).values())
                self.executor.shutdown(wait=True)  # joins the manager, which joins the workers
                self._self_killed = frozenset(
                    w.pid for w in workers if w.pid is not None and w.exitcode != -signal.SIGTERM
                )
            return self._self_killed


@dataclass
class _Task(Generic[T]):
    generation: _Generation
    slot: int
    future: concurrent.futures.Future[T]
    released: bool = field(default=False)


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
        self._started_by = self._context.RawArray(ctypes.c_int64, _SLOTS)
        self._slot_lock = threading.Lock()
        self._free_slots = list(range(_SLOTS))
        self._lock = threading.Lock()
        self._generation = _Generation(self._new_executor())

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        lim = self._limits
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(
                lim.memory_bytes,
                lim.cpu_seconds_per_task,
                lim.tasks_per_worker,
                self._started_by,
            ),
            max_tasks_per_child=lim.tasks_per_worker,
        )

    def _submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> _Task[T]:
        with self._slot_lock:
            slot = self._free_slots.pop() if self._free_slots else _NO_SLOT
        if slot != _NO_SLOT:
            self._started_by[slot] = 0
        for _ in range(_ATTEMPTS):
            with self._lock:
                generation = self._generation
            try:
                future = generation.executor.submit(_in_worker, slot, fn, args)
                return _Task(generation, slot, future)
            except BrokenProcessPool:
                self._replace(generation)
        self._release_slot(slot)
        raise PdfTooComplex(_TOO_COMPLEX)

    def _replace(self, broken: _Generation) -> None:
        """Swap in a fresh executor, once however many tasks saw *broken* break."""
        with self._lock:
            if self._generation is broken:
                self._generation = _Generation(self._new_executor())

    def _release_slot(self, slot: int) -> None:
        if slot != _NO_SLOT:
            with self._slot_lock:
                self._free_slots.append(slot)

    def _release(self, task: _Task[Any]) -> None:
        with self._slot_lock:
            if task.released:
                return
            task.released = True
        self._release_slot(task.slot)

    def _release_when_done(self, task: _Task[Any]) -> None:
        """Free the slot only once no worker can still write to it."""
        if task.future.done():
            self._release(task)
        else:
            task.future.add_done_callback(lambda _: self._release(task))

    def _killed_its_worker(self, task: _Task[Any]) -> bool:
        """After a break: did this task kill its worker (blocks until the workers are gone)?

        A task without a slot cannot be cleared, so it counts as innocent: its retry is
        its last attempt, and if it breaks the pool again it fails as the culprit would.
        """
        self._replace(task.generation)
        culprits = task.generation.workers_that_died_of_their_task()
        started_by = None if task.slot == _NO_SLOT else self._started_by[task.slot]
        self._release(task)
        return started_by is not None and started_by in culprits

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a picklable module-level function in a worker; a killed worker is refused input."""
        for attempt in range(1, _ATTEMPTS + 1):
            task = self._submit(fn, args)
            try:
                return task.future.result()
            except UnreadablePdf as exc:
                _log_unreadable(exc)
                raise
            except BrokenProcessPool:
                if self._killed_its_worker(task) or attempt == _ATTEMPTS:
                    raise PdfTooComplex(_TOO_COMPLEX) from None
            finally:
                self._release_when_done(task)
        raise AssertionError("unreachable")

    async def run_async(self, fn: Callable[..., T], *args: Any) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            task = self._submit(fn, args)
            try:
                return await asyncio.wrap_future(task.future)
            except UnreadablePdf as exc:
                _log_unreadable(exc)
                raise
            except BrokenProcessPool:
                if await asyncio.to_thread(self._killed_its_worker, task) or attempt == _ATTEMPTS:
                    raise PdfTooComplex(_TOO_COMPLEX) from None
            finally:
                self._release_when_done(task)
        raise AssertionError("unreachable")

    async def aposition(
        self, path: Path, max_bytes: int | None = DEFAULT_MAX_BYTES
    ) -> SealPosition:
        """Where the next seal would go on the PDF in *path* (parsed in a worker)."""
        return await self.run_async(_position, path, max_bytes)

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
        options: SealOptions = DEFAULT_OPTIONS,
        *,
        timestamper: TimeStamper | None = None,
    ) -> bytes:
        """Seal: the worker prepares the document, this process signs through the SealKey."""
        ts = options.check(timestamper)
        job = SealJob.for_signer(signer, appearance, options)
        prepared: PreparedSeal = await self.run_async(prepare_seal, data, job)
        try:
            return await async_finish_seal(prepared, signer, ts)
        except ReservedSpaceTooSmall as exc:
            prepared = await self.run_async(prepare_seal, data, job.with_room(exc.needed))
            return await async_finish_seal(prepared, signer, ts)

    async def aseal_file(
        self,
        source: Path,
        target: Path,
        signer: SealSigner,
        appearance: SealAppearance,
        options: SealOptions = DEFAULT_OPTIONS,
        *,
        timestamper: TimeStamper | None = None,
    ) -> None:
        """Seal the PDF in *source* into *target* (both files): the worker reads the draft
        from its file and writes the sealed revision to the other, this process signs and
        writes the CMS at its offset. No process ever holds the document in memory."""
        ts = options.check(timestamper)
        job = SealJob.for_signer(signer, appearance, options)
        prepared: PreparedSeal = await self.run_async(_prepare_file, source, target, job)
        try:
            with target.open("r+b") as output:
                await async_finish_seal_into(prepared, signer, output, ts)
        except ReservedSpaceTooSmall as exc:
            bigger = job.with_room(exc.needed)
            prepared = await self.run_async(_prepare_file, source, target, bigger)
            with target.open("r+b") as output:
                await async_finish_seal_into(prepared, signer, output, ts)

    def seal(
        self,
        data: bytes,
        signer: SealSigner,
        appearance: SealAppearance,
        options: SealOptions = DEFAULT_OPTIONS,
        *,
        timestamper: TimeStamper | None = None,
    ) -> bytes:
        return asyncio.run(self.aseal(data, signer, appearance, options, timestamper=timestamper))

    def close(self) -> None:
        with self._lock:
            executor = self._generation.executor
        executor.shutdown(wait=True, cancel_futures=True)

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


def _position(path: Path, max_bytes: int | None) -> SealPosition:
    with path.open("rb") as stream:
        return seal_position(stream, max_bytes=max_bytes)


def _check(data: bytes | Path, max_bytes: int | None) -> PdfSummary:
    if isinstance(data, Path):
        with data.open("rb") as stream:
            return check_pdf(stream, max_bytes)
    return check_pdf(data, max_bytes)


def _prepare_file(source: Path, target: Path, job: SealJob) -> PreparedSeal:
    """In the worker: read the draft from *source*, write the sealed revision to *target*."""
    with source.open("rb") as draft, target.open("w+b") as output:
        return prepare_seal(draft, job, output)
