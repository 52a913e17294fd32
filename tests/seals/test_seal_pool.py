"""The worker pool: limits kill or refuse a hostile job, and the pool carries on."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest

from seals.errors import NotAPdf, PdfTooComplex
from seals.pades import Level
from seals.pool import SealWorkerPool, WorkerLimits

from . import seal_corpus
from .conftest import Department, PdfsigSignature
from .seal_pki import SealTestPki


def allocate(megabytes: int) -> int:
    """Runs in a worker: needs far more memory than the worker may have."""
    blob = bytearray(megabytes * 1024 * 1024)
    return len(blob)


def spin() -> None:
    """Runs in a worker: a loop that never ends, as a parser bug might."""
    n = 0
    while True:
        n += 1


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture(scope="module")
def pool() -> Iterator[SealWorkerPool]:
    limits = WorkerLimits(memory_bytes=1024 * 1024 * 1024, cpu_seconds_per_task=2)
    with SealWorkerPool(workers=1, limits=limits) as p:
        yield p


def test_check_in_worker(pool: SealWorkerPool) -> None:
    summary = pool.check(seal_corpus.reportlab_pdf(3))
    assert (summary.pages, summary.signatures) == (3, 0)


def test_typed_errors_cross_the_process_boundary(pool: SealWorkerPool) -> None:
    with pytest.raises(NotAPdf):
        pool.check(seal_corpus.NOT_A_PDF)
    with pytest.raises(PdfTooComplex):
        pool.check(seal_corpus.decompression_bomb_pdf())


def test_memory_limit_refuses_and_pool_survives(pool: SealWorkerPool) -> None:
    with pytest.raises(PdfTooComplex):
        pool.run(allocate, 4096)
    assert pool.check(seal_corpus.reportlab_pdf()).pages == 1


def test_cpu_limit_kills_worker_and_pool_recovers(pool: SealWorkerPool) -> None:
    with pytest.raises(PdfTooComplex):
        pool.run(spin)
    assert pool.check(seal_corpus.reportlab_pdf()).pages == 1


def test_killed_worker_is_replaced(pool: SealWorkerPool) -> None:
    with pytest.raises(PdfTooComplex):
        pool.run(die)
    assert pool.check(seal_corpus.reportlab_pdf()).pages == 1


def test_seal_and_verify_through_pool(
    pool: SealWorkerPool,
    pki: SealTestPki,
    departments: list[Department],
    pdfsig: Callable[[bytes], list[PdfsigSignature]],
    qpdf_check: Callable[[bytes], None],
) -> None:
    doc = seal_corpus.reportlab_pdf()
    for dep in departments[:2]:
        doc = pool.seal(
            doc,
            dep.signer,
            dep.appearance,
            level=Level.B_LT,
            timestamper=pki.timestamper(),
            trust_roots=[pki.root_der()],
            crls=pki.crls(),
        )
    sigs = pdfsig(doc)
    assert [s.valid and s.trusted for s in sigs] == [True, True]
    assert sigs[-1].total
    qpdf_check(doc)
    report = pool.verify(doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert report.valid, report.problems
    assert [s.level for s in report.seals] == ["B-LT", "B-LT"]
