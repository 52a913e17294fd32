"""The worker pool: limits kill or refuse a hostile job, and the pool carries on."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms

from seals.errors import NotAPdf, PdfMalformed, PdfTooComplex, UnreadablePdf
from seals.pades import Level, SealOptions
from seals.pool import SealWorkerPool, WorkerLimits
from tests.largepdf import write_large_pdf
from tests.security import damaged_pdfs

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


def die_counted(tally: Path, after: float) -> None:
    """Runs in a worker: notes that it ran, then kills its worker as an rlimit would."""
    with tally.open("a") as runs:
        runs.write("ran\n")
    time.sleep(after)
    os.kill(os.getpid(), signal.SIGKILL)


def nap(seconds: float, value: int) -> int:
    """Runs in a worker: a sound task that takes a while."""
    time.sleep(seconds)
    return value


def fail_with(kind: str) -> None:
    """Runs in a worker: fails the way parsers fail on damaged files."""
    if kind == "assertion":
        raise AssertionError
    if kind == "key":
        raise KeyError("/Root")
    if kind == "index":
        raise IndexError("list index out of range")
    if kind == "zlib":
        zlib.decompress(b"not zlib at all")
    if kind == "asn1":
        asn1_cms.ContentInfo.load(b"\x30\x82\xff\xff\x02")["content"].native  # noqa: B018
    if kind == "recursion":
        fail_with(kind)


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


@pytest.mark.parametrize("kind", ["assertion", "key", "index", "zlib", "asn1"])
def test_any_exception_in_a_worker_is_pdf_malformed(pool: SealWorkerPool, kind: str) -> None:
    with pytest.raises(PdfMalformed) as raised:
        pool.run(fail_with, kind)
    assert raised.value.code == "pdf_malformed"
    assert isinstance(raised.value, UnreadablePdf) and raised.value.origin


def test_recursion_in_a_worker_is_pdf_too_complex(pool: SealWorkerPool) -> None:
    with pytest.raises(PdfTooComplex):
        pool.run(fail_with, "recursion")


def test_parser_assertion_on_a_damaged_file_is_pdf_malformed(
    pool: SealWorkerPool, pki: SealTestPki, departments: list[Department]
) -> None:
    """A PNG predictor over a billion columns trips an assertion inside pyhanko's decoder."""
    damaged = next(
        case.data
        for case in damaged_pdfs.huge_lengths()
        if case.name == "lengths/predictor-columns-huge"
    )
    with pytest.raises(PdfMalformed, match="AssertionError"):
        pool.verify(damaged, [pki.root_der()], seal_issuer=pki.seal_issuer)
    dept = departments[0]
    with pytest.raises(PdfMalformed, match="AssertionError"):
        pool.seal(damaged, dept.signer, dept.appearance)


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


@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_that_kills_its_worker_fails_alone_and_only_once(
    workers: int, tmp_path: Path
) -> None:
    """The broken executor fails every task in flight; only the culprit may see that. With
    one worker the others were queued behind it, with two one ran beside it and was
    terminated by the executor: all of them are retried, the culprit is not."""
    tally = tmp_path / "runs"

    async def together(pool: SealWorkerPool) -> list[object]:
        culprit = asyncio.ensure_future(pool.run_async(die_counted, tally, 0.5))
        await asyncio.sleep(0.2)  # the culprit is running
        bystanders = [pool.run_async(nap, 1.0, n) for n in range(3)]
        return await asyncio.gather(culprit, *bystanders, return_exceptions=True)

    with SealWorkerPool(workers=workers) as fresh:
        fresh.run(nap, 0, 0)  # the workers are up
        started = time.monotonic()
        outcomes = asyncio.run(together(fresh))
        elapsed = time.monotonic() - started
        assert isinstance(outcomes[0], PdfTooComplex), outcomes
        assert outcomes[1:] == [0, 1, 2]
        assert tally.read_text() == "ran\n"  # never run again
        assert elapsed < 30
        assert fresh.run(nap, 0, 7) == 7


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
            SealOptions(level=Level.B_LT, trust_roots=(pki.root_der(),), crls=tuple(pki.crls())),
            timestamper=pki.timestamper(),
        )
    sigs = pdfsig(doc)
    assert [s.valid and s.trusted for s in sigs] == [True, True]
    assert sigs[-1].total
    qpdf_check(doc)
    report = pool.verify(doc, [pki.root_der()], pki.crls(), seal_issuer=pki.seal_issuer)
    assert report.valid, report.problems
    assert [s.level for s in report.seals] == ["B-LT", "B-LT"]


def reset_own_peak_rss() -> None:
    """Runs in a worker: the peak RSS starts again from the current RSS."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def own_peak_rss() -> int:
    """Runs in a worker: its peak RSS in bytes since the last reset."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_seal_file_to_file_never_holds_the_document(
    pki: SealTestPki,
    departments: list[Department],
    tmp_path: Path,
) -> None:
    """The worker reads the draft from its file and writes the sealed one to another; its
    peak RSS stays below the document's size, so the document was never in its memory."""
    size = 128 * 1024 * 1024
    draft, sealed = tmp_path / "draft.pdf", tmp_path / "sealed.pdf"
    write_large_pdf(draft, size)
    dep = departments[0]
    with SealWorkerPool(workers=1) as big:
        big.run(reset_own_peak_rss)
        asyncio.run(
            big.aseal_file(
                draft,
                sealed,
                dep.signer,
                dep.appearance,
                SealOptions(
                    level=Level.B_LT,
                    trust_roots=(pki.root_der(),),
                    crls=tuple(pki.crls()),
                    max_bytes=2 * size,
                ),
                timestamper=pki.timestamper(),
            )
        )
        report = big.verify(
            sealed, [pki.root_der()], pki.crls(), max_bytes=2 * size, seal_issuer=pki.seal_issuer
        )
        assert big.check(sealed, max_bytes=2 * size).signatures == 1
        peak = big.run(own_peak_rss)
    assert report.valid, report.problems
    assert report.seals[0].covers_whole_document
    with draft.open("rb") as original, sealed.open("rb") as result:
        assert result.read(size // 2) == original.read(size // 2)  # an incremental update
    assert peak < size, f"the worker peaked at {peak >> 20} MiB"
