"""``POST /v1/verify`` cannot starve sealing (issue 16, item 8), over HTTPS against a real
gateway: its own worker pool, its own size limit, a per-process cap and a per-official rate.

A verification that costs seconds of CPU is easy to make and perfectly legal (a document
of thousands of pages, each checked), so any authenticated caller can keep workers busy.
Sealing must not queue behind that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Gateway, Session, _create_database, login_as, start_gateway
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.security.conftest import DEPT_A, DEPT_B, PLATFORM, doc_number
from tests.security.damaged_pdfs import PAGE_CONTENT, one_page, raw_pdf, stream
from tests.security.test_hostile_input import problem

VERIFY_LIMIT = 8 * 1024 * 1024
RATE = 8
FLOOD = 4  # = SEALHUB_VERIFY_CONCURRENCY below


def slow_to_verify_pdf(pages: int = 9000, streams_per_page: int = 2) -> bytes:
    """A valid PDF of many pages (the checks allow 10 000): walking the page tree and
    decoding every content stream of every page costs the worker seconds of CPU."""
    step = streams_per_page + 1
    kids = b" ".join(b"%d 0 R" % (10 + step * i) for i in range(pages))
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
    }
    for i in range(pages):
        page = 10 + step * i
        contents = b" ".join(b"%d 0 R" % (page + 1 + j) for j in range(streams_per_page))
        objects[page] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents [%s] >>" % contents
        )
        for j in range(streams_per_page):
            objects[page + 1 + j] = stream(PAGE_CONTENT)
    return raw_pdf(objects)


def small_pdf() -> bytes:
    return raw_pdf(one_page())


def verify(session: Session, pdf: bytes) -> httpx.Response:
    return session.post("/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})


@pytest.fixture(scope="module")
def isolated_gateway(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    running = start_gateway(
        _create_database(pg_server_url, template_database),
        tmp_path_factory.mktemp("verify-iso"),
        env={
            "SEALHUB_VERIFY_WORKERS": "1",
            "SEALHUB_SEAL_WORKERS": "1",
            "SEALHUB_VERIFY_CONCURRENCY": str(FLOOD),
            "SEALHUB_VERIFY_RATE_PER_OFFICIAL": str(RATE),
            "SEALHUB_MAX_VERIFY_BYTES": str(VERIFY_LIMIT),
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keeper(isolated_gateway: Gateway) -> Iterator[Session]:
    admins = (
        login_as(isolated_gateway, PLATFORM, ["admin"], name="管理员甲"),
        login_as(isolated_gateway, PLATFORM, ["admin"], name="管理员乙"),
    )
    issue_seal(admins, DEPT_A)
    session = login_as(isolated_gateway, DEPT_A, ["seal_keeper", "clerk"], name="用印员")
    warm = send(session, meta_for([DEPT_B], doc_number()), small_pdf())  # starts the seal worker
    assert warm.status_code == 201, warm.text
    yield session
    session.close()
    for admin in admins:
        admin.close()


def clerk(gateway: Gateway, name: str) -> Session:
    return login_as(gateway, DEPT_B, ["clerk"], name=name)


def test_sealing_proceeds_while_every_verify_worker_is_busy(
    isolated_gateway: Gateway, keeper: Session
) -> None:
    """FLOOD slow verifications fill the one verify worker and every queue slot; a send
    started after them is sealed and answered before the first of them is.

    With one pool for both (main before this change) the seal's task queued behind the
    verifications and the send was answered only after most of them.
    """
    slow = slow_to_verify_pdf()
    clerks = [clerk(isolated_gateway, f"核验员{i}") for i in range(FLOOD + 1)]
    answered: dict[int, tuple[float, httpx.Response]] = {}
    lock = threading.Lock()

    def flood(index: int) -> None:
        answer = verify(clerks[index], slow)
        with lock:
            answered[index] = (time.monotonic(), answer)

    with ThreadPoolExecutor(FLOOD) as threads:
        for index in range(FLOOD):
            threads.submit(flood, index)
        time.sleep(1.0)  # every flood request admitted: one in the worker, the rest queued
        busy = verify(clerks[FLOOD], small_pdf())
        sent = send(keeper, meta_for([DEPT_B], doc_number()), small_pdf())
        sent_at = time.monotonic()
        with lock:
            verifies_done_before_send = sum(1 for at, _ in answered.values() if at < sent_at)
    assert sent.status_code == 201, sent.text
    assert verifies_done_before_send == 0, (
        f"the send waited for {verifies_done_before_send} of {FLOOD} verifications"
    )
    assert busy.status_code == 503, busy.text  # load shedding, not a fault
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert busy.json()["code"] == "verify_busy"
    assert int(busy.headers["Retry-After"]) >= 1
    for _, answer in answered.values():
        assert answer.status_code == 200, answer.text
        assert answer.json()["valid"] is False  # readable, carries no seal
    for session in clerks:
        session.close()


def test_verify_has_its_own_size_limit(isolated_gateway: Gateway, keeper: Session) -> None:
    """Over SEALHUB_MAX_VERIFY_BYTES is 413 for verify, declared or streamed, while the
    same document is still small enough to send."""
    big = raw_pdf(one_page(extra={9: b"(" + b"x" * (VERIFY_LIMIT + 1024) + b")"}))
    session = clerk(isolated_gateway, "核验员大")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    declared = verify(session, big)
    assert problem(declared, 413)["code"] == "payload_too_large"
    streamed = session.post(
        "/v1/verify", content=chunks(), headers={"Content-Type": "application/pdf"}
    )
    assert problem(streamed, 413)["code"] == "payload_too_large"
    sent = send(keeper, meta_for([DEPT_B], doc_number()), big)
    assert sent.status_code == 201, sent.text
    session.close()


def _same_minute_ahead(calls: int) -> None:
    """Fixed one-minute windows: start where ``calls`` quick calls end in the same one."""
    if time.time() % 60 > 60 - max(5, calls):
        time.sleep(60 - time.time() % 60 + 0.2)


def test_verify_rate_per_official_is_429_with_retry_after(isolated_gateway: Gateway) -> None:
    eager, other = clerk(isolated_gateway, "核验员急"), clerk(isolated_gateway, "核验员缓")
    pdf = small_pdf()
    _same_minute_ahead(RATE + 2)
    statuses = [verify(eager, pdf).status_code for _ in range(RATE)]
    assert statuses == [200] * RATE
    refused = verify(eager, pdf)
    assert problem(refused, 429)["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert verify(other, pdf).status_code == 200  # the limit is per official
    eager.close()
    other.close()
