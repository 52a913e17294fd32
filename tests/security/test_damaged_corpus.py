"""No 5xx from any PDF (issue 17, item 1): the seeded damaged corpus of
:mod:`tests.security.damaged_pdfs`, every case sent over HTTPS to ``POST /v1/verify`` and
``POST /v1/documents`` of a real gateway, several at a time.

Every answer is below 500 and arrives within ``CASE_SECONDS``; every refusal is
problem+json with a code; a refused send leaves no document row, delivery, seal use or
object behind (checked in total: rows and objects grow by exactly what the 201s account for).
Bases are built here: reportlab, the same through qpdf's object streams, LibreOffice Writer's
PDF and PDF/A-2b export, and a document the gateway itself sealed.
"""

from __future__ import annotations

import collections
import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Gateway, Session, _create_database, login_as, start_gateway
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.seals import seal_corpus
from tests.seals.seal_pki import SealTestPki
from tests.security.conftest import DEPT_A, DEPT_B, PLATFORM, count_rows, doc_number, stored_objects
from tests.security.damaged_pdfs import Case, corpus
from tests.security.test_hostile_input import assert_healthy, problem

MIN_CASES = 300
CASE_SECONDS = 10.0
CLIENTS = 4
# Seal uses wait in the outbox until the sequencer moves them to the log: count both, in
# one statement (one snapshot), so a move in between is not counted twice or lost.
SEAL_USES = (
    "SELECT (SELECT count(*) FROM audit_outbox WHERE type = 'seal.used')"
    " + (SELECT count(*) FROM audit_log WHERE type = 'seal.used')"
)


@dataclass(frozen=True)
class Answer:
    case: str
    endpoint: str
    status: int
    code: str
    seconds: float


@pytest.fixture(scope="module")
def corpus_gateway(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Room for the whole corpus from a few officials (the defaults would rate-limit it)."""
    running = start_gateway(
        _create_database(pg_server_url, template_database),
        tmp_path_factory.mktemp("corpus-gw"),
        env={
            "SEALHUB_VERIFY_RATE_PER_OFFICIAL": "100000",
            "SEALHUB_VERIFY_CONCURRENCY": str(2 * CLIENTS),
            "SEALHUB_LOGIN_RATE_PER_SOURCE": "100000",
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def keepers(corpus_gateway: Gateway) -> Iterator[list[Session]]:
    admins = (
        login_as(corpus_gateway, PLATFORM, ["admin"], name="管理员甲"),
        login_as(corpus_gateway, PLATFORM, ["admin"], name="管理员乙"),
    )
    issue_seal(admins, DEPT_A)
    sessions = [
        login_as(corpus_gateway, DEPT_A, ["seal_keeper", "clerk"], name=f"用印员{i}")
        for i in range(CLIENTS)
    ]
    yield sessions
    for session in (*sessions, *admins):
        session.close()


def sealed_by_gateway(keeper: Session, pdf: bytes) -> bytes:
    sent = send(keeper, meta_for([DEPT_B], doc_number()), pdf)
    assert sent.status_code == 201, sent.text
    content = keeper.get(f"/v1/documents/{sent.json()['id']}/content")
    assert content.status_code == 200, content.text
    return content.content


@pytest.fixture(scope="module")
def cases(keepers: list[Session], tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    tmp = tmp_path_factory.mktemp("bases")
    profile = tmp / "lo-profile"
    reportlab = seal_corpus.reportlab_pdf(2)
    bases = {
        "reportlab": reportlab,
        "objstm": seal_corpus.xref_stream_pdf(tmp),
        "libreoffice": seal_corpus.libreoffice_pdf(tmp, profile),
        "pdfa": seal_corpus.pdfa_2b_pdf(tmp, profile),
        "sealed": sealed_by_gateway(keepers[0], reportlab),
    }
    return corpus(bases, seed=17)


def _post(session: Session, endpoint: str, case: Case) -> Answer:
    started = time.monotonic()
    if endpoint == "verify":
        answer = session.post(
            "/v1/verify", content=case.data, headers={"Content-Type": "application/pdf"}
        )
    else:
        answer = send(session, meta_for([DEPT_B], doc_number()), case.data)
    seconds = time.monotonic() - started
    code = ""
    if answer.status_code >= 400:
        code = _checked_problem(answer, case)
    return Answer(case.name, endpoint, answer.status_code, code, seconds)


def _checked_problem(answer: httpx.Response, case: Case) -> str:
    if answer.status_code >= 500:
        return f"{answer.status_code}: {answer.text[:300]}"
    try:
        return str(problem(answer)["code"])
    except (AssertionError, ValueError) as exc:
        return f"not problem+json ({exc}) for {case.name}"


def test_damaged_corpus_gets_no_5xx_and_leaves_nothing_behind(
    corpus_gateway: Gateway,
    keepers: list[Session],
    cases: list[Case],
    record_property: pytest.RecordProperty,
) -> None:
    assert len(cases) >= MIN_CASES
    documents_before = count_rows(corpus_gateway, "SELECT count(*) FROM documents")
    deliveries_before = count_rows(corpus_gateway, "SELECT count(*) FROM deliveries")
    uses_before = count_rows(corpus_gateway, SEAL_USES)
    objects_before = stored_objects(corpus_gateway)

    free = list(keepers)
    lock = threading.Lock()

    def run(job: tuple[str, Case]) -> Answer:
        with lock:
            session = free.pop()
        try:
            return _post(session, *job)
        finally:
            with lock:
                free.append(session)

    jobs = [(endpoint, case) for case in cases for endpoint in ("verify", "send")]
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as threads:
        answers = list(threads.map(run, jobs))
    elapsed = time.monotonic() - started

    server_errors = [a for a in answers if a.status >= 500]
    slow = [a for a in answers if a.seconds >= CASE_SECONDS]
    malformed = [a for a in answers if a.code.startswith("not problem+json")]
    codes = collections.Counter(f"{a.endpoint} {a.status} {a.code}".strip() for a in answers)
    summary = {
        "cases": len(cases),
        "requests": len(answers),
        "answers_5xx": len(server_errors),
        "slowest_seconds": round(max(a.seconds for a in answers), 2),
        "total_seconds": round(elapsed, 1),
        "by_outcome": dict(sorted(codes.items())),
    }
    print(f"\ndamaged corpus: {len(cases)} cases, {len(server_errors)} >= 500\n")
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    record_property("damaged_corpus", json.dumps(summary))
    assert server_errors == [], server_errors[:10]
    assert slow == [], slow[:10]
    assert malformed == [], malformed[:10]

    healthy = {a.case: a for a in answers if a.case.endswith("/healthy") and a.endpoint == "send"}
    assert {name: a.status for name, a in healthy.items()} == dict.fromkeys(healthy, 201)

    sealed = sum(1 for a in answers if a.endpoint == "send" and a.status == 201)
    assert count_rows(corpus_gateway, "SELECT count(*) FROM documents") == (
        documents_before + sealed
    )
    assert count_rows(corpus_gateway, "SELECT count(*) FROM deliveries") == (
        deliveries_before + sealed
    )
    assert count_rows(corpus_gateway, SEAL_USES) == uses_before + sealed
    # Each accepted send stores its draft and its sealed PDF; a refused one stores nothing.
    assert len(stored_objects(corpus_gateway) - objects_before) == 2 * sealed
    assert_healthy(corpus_gateway)


def certified_locked_pdf() -> bytes:
    """A client's document certified with DocMDP P=1 (no changes at all) by its own key."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    pki = SealTestPki.create(root_cn="Client Root")
    signer = pki.signer(pki.issue_seal("某外部单位"))
    writer = IncrementalPdfFileWriter(io.BytesIO(seal_corpus.reportlab_pdf()))
    meta = signers.PdfSignatureMetadata(
        field_name="Author",
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    return bytes(signers.PdfSigner(meta, signer).sign_pdf(writer).getvalue())


def test_certified_locked_pdf_is_refused_with_422(
    corpus_gateway: Gateway, keepers: list[Session]
) -> None:
    """Used to be 500: certification_forbids_seal had no status. Since issue 16 the
    existing-seal check refuses it first: a certification by a key outside the platform is
    no sound seal to build on."""
    pdf = certified_locked_pdf()
    documents_before = count_rows(corpus_gateway, "SELECT count(*) FROM documents")
    objects_before = stored_objects(corpus_gateway)
    sent = send(keepers[0], meta_for([DEPT_B], doc_number()), pdf)
    assert problem(sent, 422)["code"] == "existing_seal_invalid"
    assert count_rows(corpus_gateway, "SELECT count(*) FROM documents") == documents_before
    assert stored_objects(corpus_gateway) == objects_before
    checked = keepers[0].post(
        "/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"}
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["seals"][0]["certifying"] is True
