"""Hostile input against the real gateway: damaged and adversarial PDFs, oversized bodies,
slow clients, control characters, path separators and very long Chinese text in every text
field and code, invalid UTF-8, duplicate JSON keys, misordered multipart, raw bytes in the
request line. Every refusal is a 4xx problem+json, nothing is stored, the gateway stays up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Gateway, Session, _create_database, login_as, start_gateway
from tests.exchange.conftest import meta_for, send
from tests.seals import seal_corpus
from tests.security.conftest import (
    DEPT_A,
    DEPT_B,
    World,
    count_rows,
    doc_number,
    stored_objects,
)

SMALL_DOCUMENT_LIMIT = 64 * 1024
IDLE_TIMEOUT = 2.0
CLOSE_MARGIN = 3.0
LONG_CHINESE = "关于进一步加强公文处理工作的通知" * 1250  # 20 000 characters
HOSTILE_TEXT = {
    "nul": "标题\x00尾",
    "escape": "\x1b[31m红色\x1b[0m",
    "c1_next_line": "第一行\x85第二行",
    "newline": "第一行\n第二行",
    "slash_traversal": "../../etc/passwd",
    "backslash_traversal": "..\\..\\windows\\system32",
    "bidi_override": "文件\u202egpj.exe",
    "long_chinese": LONG_CHINESE,
}
# Refused in every free-text field: C0, C1 and bidirectional controls (Trojan Source).
CONTROL_KEYS = {"nul", "escape", "newline", "c1_next_line", "bidi_override"}


def problem(response: httpx.Response, status: int | None = None) -> dict[str, object]:
    """The problem+json body of a refusal, checked for its shape."""
    assert response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["code"], str) and body["code"]
    return body  # type: ignore[no-any-return]


def assert_healthy(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/healthz", timeout=5).status_code == 200


class Unchanged:
    """Nothing stored: no object file, no document row, no seal used."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.objects = stored_objects(gateway)
        self.rows = self._rows()

    def _rows(self) -> tuple[int, int]:
        return (
            count_rows(self.gateway, "SELECT count(*) FROM documents"),
            # The sequencer moves events from the outbox to the log: count both at once.
            count_rows(
                self.gateway,
                "SELECT (SELECT count(*) FROM audit_outbox WHERE type = 'seal.used')"
                " + (SELECT count(*) FROM audit_log WHERE type = 'seal.used')",
            ),
        )

    def check(self) -> None:
        assert stored_objects(self.gateway) == self.objects
        assert self._rows() == self.rows
        assert_healthy(self.gateway)


# --- damaged and adversarial PDFs -----------------------------------------------------------


def _corpus(tmp: Path) -> dict[str, tuple[bytes, int, str]]:
    good = seal_corpus.reportlab_pdf()
    return {
        "truncated": (seal_corpus.truncated(good), 422, "pdf_malformed"),
        "wrong_xref": (seal_corpus.wrong_xref(good), 422, "pdf_malformed"),
        "reference_loop": (seal_corpus.reference_loop_pdf(), 422, "pdf_malformed"),
        "decompression_bomb": (seal_corpus.decompression_bomb_pdf(), 422, "pdf_too_complex"),
        "encrypted": (seal_corpus.encrypted_pdf(tmp), 422, "pdf_encrypted"),
        "zip_not_pdf": (seal_corpus.NOT_A_PDF, 415, "not_a_pdf"),
        "empty": (b"", 415, "not_a_pdf"),
        "header_only": (b"%PDF-1.7\n", 422, "pdf_malformed"),
        "header_then_noise": (b"%PDF-1.7\n" + bytes(range(256)) * 40, 422, "pdf_malformed"),
    }


CORPUS_NAMES = [
    "truncated",
    "wrong_xref",
    "reference_loop",
    "decompression_bomb",
    "encrypted",
    "zip_not_pdf",
    "empty",
    "header_only",
    "header_then_noise",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, int, str]]:
    return _corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_send_refuses_damaged_pdf(
    world: World, corpus: dict[str, tuple[bytes, int, str]], name: str
) -> None:
    pdf, status, code = corpus[name]
    unchanged = Unchanged(world.gateway)
    answer = send(world.sessions["seal_keeper"], meta_for([DEPT_B], doc_number()), pdf)
    assert problem(answer, status)["code"] == code
    unchanged.check()


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_verify_refuses_damaged_pdf(
    world: World, corpus: dict[str, tuple[bytes, int, str]], name: str
) -> None:
    pdf, status, code = corpus[name]
    unchanged = Unchanged(world.gateway)
    answer = world.sessions["clerk"].post(
        "/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"}
    )
    assert problem(answer, status)["code"] == code
    unchanged.check()


# --- oversized bodies -----------------------------------------------------------------------

MIB = 1024 * 1024


def test_oversized_json_bodies_are_413(world: World) -> None:
    padding = "玉" * MIB  # 3 MiB of UTF-8
    with world.gateway.client() as anonymous:
        challenge = anonymous.post("/v1/auth/challenge", json={"subject": padding})
    assert problem(challenge, 413)["code"] == "payload_too_large"
    created = world.sessions["admin"].post(
        "/v1/officials", json={"name": padding, "department": DEPT_A, "roles": ["clerk"]}
    )
    assert problem(created, 413)["code"] == "payload_too_large"
    unchanged = Unchanged(world.gateway)
    meta = meta_for([DEPT_B], doc_number(), title=padding)
    sent = send(world.sessions["seal_keeper"], meta, world.pdf)
    assert problem(sent, 413)["code"] == "payload_too_large"
    unchanged.check()


@pytest.fixture(scope="module")
def small_gateway(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway with a tiny document limit and a short idle timeout, on its own database."""
    running = start_gateway(
        _create_database(pg_server_url, template_database),
        tmp_path_factory.mktemp("small"),
        env={
            "SEALHUB_MAX_DOCUMENT_BYTES": str(SMALL_DOCUMENT_LIMIT),
            "SEALHUB_MAX_VERIFY_BYTES": str(SMALL_DOCUMENT_LIMIT),
            "SEALHUB_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def small_keeper(small_gateway: Gateway) -> Iterator[Session]:
    session = login_as(small_gateway, DEPT_A, ["seal_keeper", "clerk"])
    yield session
    session.close()


def _padded_pdf(size: int) -> bytes:
    """A real PDF grown past *size* by a comment (still parseable up to the limit)."""
    pdf = seal_corpus.reportlab_pdf()
    return pdf + b"%" + b"x" * (size - len(pdf)) + b"\n"


def test_oversized_document_is_413_and_nothing_stored(
    small_gateway: Gateway, small_keeper: Session
) -> None:
    big = _padded_pdf(SMALL_DOCUMENT_LIMIT * 2)
    unchanged = Unchanged(small_gateway)
    sent = send(small_keeper, meta_for([DEPT_B], doc_number()), big)
    assert problem(sent, 413)["code"] == "payload_too_large"
    unchanged.check()


def test_oversized_verify_is_413_declared_or_chunked(
    small_gateway: Gateway, small_keeper: Session
) -> None:
    big = _padded_pdf(SMALL_DOCUMENT_LIMIT * 2)
    declared = small_keeper.post(
        "/v1/verify", content=big, headers={"Content-Type": "application/pdf"}
    )
    assert problem(declared, 413)["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 16 * 1024):
            yield big[start : start + 16 * 1024]

    chunked = small_keeper.post(
        "/v1/verify", content=chunks(), headers={"Content-Type": "application/pdf"}
    )
    assert problem(chunked, 413)["code"] == "payload_too_large"
    assert_healthy(small_gateway)


# --- slow clients ---------------------------------------------------------------------------

SLOW_CLIENTS = 16
DRIP_SECONDS = 0.2
GIVE_UP = 15.0


def _address(gateway: Gateway) -> tuple[str, int]:
    host, port = gateway.base_url.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


async def _closed_after(gateway: Gateway, prelude: bytes, drip: bytes) -> float:
    """Seconds from connect until the server closes a client that sends *prelude* and then
    *drip* one byte at a time (a slowloris when the headers never end), or stays silent
    when *drip* is empty. Gives up (and returns the elapsed time) after ``GIVE_UP``."""
    host, port = _address(gateway)
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    pending = iter(drip)
    try:
        writer.write(prelude)
        while time.monotonic() - started < GIVE_UP:
            byte = next(pending, None)
            if byte is not None:
                writer.write(bytes([byte]))
            try:
                await writer.drain()
                if await asyncio.wait_for(reader.read(65536), DRIP_SECONDS) == b"":
                    break
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                break
        return time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 2)


async def _slowloris(gateway: Gateway) -> tuple[list[float], list[float]]:
    never_ending = b"X-Slow: " + b"a" * 4000
    attackers = [
        asyncio.create_task(
            _closed_after(gateway, b"GET /healthz HTTP/1.1\r\nHost: sealhub\r\n", never_ending)
        )
        for _ in range(SLOW_CLIENTS)
    ]
    await asyncio.sleep(0.5)
    latencies = []
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    async with httpx.AsyncClient(base_url=gateway.base_url, verify=context) as client:
        for _ in range(5):
            started = time.monotonic()
            answer = await client.get("/healthz", timeout=5)
            assert answer.status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.2)
    return latencies, list(await asyncio.gather(*attackers))


def test_slow_clients_do_not_stall_others_and_are_cut(small_gateway: Gateway) -> None:
    latencies, lifetimes = asyncio.run(_slowloris(small_gateway))
    assert max(latencies) < 2, latencies
    assert max(lifetimes) < IDLE_TIMEOUT + CLOSE_MARGIN, lifetimes
    assert_healthy(small_gateway)


def test_idle_connections_are_closed(small_gateway: Gateway) -> None:
    """Silent after the handshake, and silent after a complete request and its answer."""

    async def both() -> tuple[float, float]:
        request = b"GET /healthz HTTP/1.1\r\nHost: sealhub\r\n\r\n"
        silent = _closed_after(small_gateway, b"", b"")
        after_answer = _closed_after(small_gateway, request, b"")
        first, second = await asyncio.gather(silent, after_answer)
        return first, second

    silent, after_answer = asyncio.run(both())
    assert silent < IDLE_TIMEOUT + CLOSE_MARGIN
    assert after_answer < IDLE_TIMEOUT + CLOSE_MARGIN


async def _post_body_slowly(
    gateway: Gateway, body: bytes, *, first: int, chunk: int, pause: float
) -> tuple[bytes, float]:
    """POST *body* to the unauthenticated challenge endpoint: *first* bytes at once, then
    *chunk* bytes every *pause* seconds. Returns what the server answered and when the
    connection ended (seconds from connect)."""
    host, port = _address(gateway)
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    head = (
        "POST /v1/auth/challenge HTTP/1.1\r\nHost: sealhub\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = b""

    async def read_all() -> None:
        nonlocal answer
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                answer += data

    reading = asyncio.create_task(read_all())
    try:
        writer.write(head + body[:first])
        position = first
        while position < len(body) and not reading.done():
            if time.monotonic() - started > GIVE_UP:
                break
            await asyncio.sleep(pause)
            writer.write(body[position : position + chunk])
            position += chunk
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), GIVE_UP)
        return answer, time.monotonic() - started
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 2)


def _status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["code"] if status >= 400 else ""


def test_a_stalled_or_trickling_body_is_cut_with_408(small_gateway: Gateway) -> None:
    """Headers complete, then the body stops (or drips at 5 bytes/s): the handler would
    otherwise wait for it forever, holding the request open."""
    body = json.dumps({"subject": "x" * 60}).encode()

    async def both() -> list[tuple[bytes, float]]:
        stalled = _post_body_slowly(small_gateway, body, first=10, chunk=0, pause=DRIP_SECONDS)
        trickling = _post_body_slowly(
            small_gateway, body + b" " * 400, first=10, chunk=1, pause=DRIP_SECONDS
        )
        return list(await asyncio.gather(stalled, trickling))

    for answer, lifetime in asyncio.run(both()):
        assert _status_and_code(answer) == (408, "request_timeout"), answer[:300]
        assert b"application/problem+json" in answer
        # Cut after the idle period; then aiohttp drains the body for at most as long again.
        assert lifetime < 2 * IDLE_TIMEOUT + CLOSE_MARGIN, lifetime
    assert_healthy(small_gateway)


def test_a_slow_but_steady_body_is_not_cut(small_gateway: Gateway) -> None:
    """About 4 KiB/s for longer than the idle period: a slow line, not an attack."""
    body = json.dumps({"subject": "slow-line"}).encode() + b" " * 14_000
    answer, lifetime = asyncio.run(
        _post_body_slowly(small_gateway, body, first=100, chunk=800, pause=0.2)
    )
    assert lifetime > IDLE_TIMEOUT
    status, _ = _status_and_code(answer)
    assert status == 200, answer[:300]


# --- hostile text in every field and code ---------------------------------------------------


def _refused_if_control(key: str, answer: httpx.Response) -> None:
    if key in CONTROL_KEYS or key == "long_chinese":
        problem(answer)
    else:
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            problem(answer)


@pytest.mark.parametrize("key", sorted(HOSTILE_TEXT))
@pytest.mark.parametrize("field", ["title", "doc_number"])
def test_meta_text_fields(world: World, field: str, key: str) -> None:
    value = HOSTILE_TEXT[key]
    meta = meta_for([DEPT_B], doc_number())
    meta[field] = value if field == "title" else value + doc_number()
    answer = send(world.sessions["seal_keeper"], meta, world.pdf)
    _refused_if_control(key, answer)


@pytest.mark.parametrize("key", sorted(HOSTILE_TEXT))
@pytest.mark.parametrize("field", ["recipients", "cc", "urgency", "classification", "deadline"])
def test_meta_codes_refuse_hostile_text(world: World, field: str, key: str) -> None:
    value = HOSTILE_TEXT[key]
    meta = meta_for([DEPT_B], doc_number())
    meta[field] = [value] if field in ("recipients", "cc") else value
    unchanged = Unchanged(world.gateway)
    problem(send(world.sessions["seal_keeper"], meta, world.pdf))
    unchanged.check()


PATH_TEMPLATES = [
    ("GET", "/v1/departments/{}"),
    ("GET", "/v1/groups/{}"),
    ("GET", "/v1/departments/{}/seals"),
    ("POST", "/v1/departments/{}/seal-requests"),
    ("GET", "/v1/documents/{}"),
    ("GET", "/v1/seals/{}"),
    ("GET", "/v1/officials/{}/keys"),
    ("GET", "/v1/audit/entries/{}"),
]


@pytest.mark.parametrize("key", sorted(HOSTILE_TEXT))
def test_codes_in_paths(world: World, key: str) -> None:
    """Percent-encoded into the path, exactly as a browser would send them."""
    value = HOSTILE_TEXT[key][:2000]
    admin = world.sessions["admin"]
    for method, template in PATH_TEMPLATES:
        path = template.format(quote(value, safe=""))
        body = {"json": {"purpose": "公文专用章"}} if method == "POST" else {}
        answer = admin.request(method, path, **body)
        assert 400 <= answer.status_code < 500, f"{method} {path[:80]}: {answer.text[:200]}"
        problem(answer)


QUERIES = [
    "/v1/departments?q={}",
    "/v1/departments?parent={}",
    "/v1/departments?kind={}",
    "/v1/departments?cursor={}",
    "/v1/audit/entries?type={}",
    "/v1/audit/entries?actor={}",
    "/v1/audit/entries?document={}",
    "/v1/audit/entries?department={}",
    "/v1/audit/entries?from={}",
    "/v1/inbox?state={}",
    "/v1/inbox?cursor={}",
    "/v1/audit/proof/inclusion?index={}&tree_size=1",
]


@pytest.mark.parametrize("key", sorted(HOSTILE_TEXT))
def test_query_strings(world: World, key: str) -> None:
    value = quote(HOSTILE_TEXT[key][:2000], safe="")
    clerk = world.sessions["clerk"]
    for template in QUERIES:
        answer = clerk.get(template.format(value))
        assert answer.status_code < 500, f"{template}: {answer.text[:200]}"
        if answer.status_code >= 400 or key in CONTROL_KEYS:
            problem(answer)


@pytest.mark.parametrize("key", sorted(HOSTILE_TEXT))
def test_official_and_seal_text_fields(world: World, key: str) -> None:
    value = HOSTILE_TEXT[key]
    admin = world.sessions["admin"]
    answers = [
        admin.post("/v1/officials", json={"name": value, "department": DEPT_A, "roles": ["clerk"]}),
        admin.post("/v1/officials", json={"name": "张三", "department": value, "roles": ["clerk"]}),
        admin.post("/v1/officials", json={"name": "张三", "department": DEPT_A, "roles": [value]}),
        admin.post(f"/v1/departments/{DEPT_A}/seal-requests", json={"purpose": value}),
        admin.post(f"/v1/seals/{world.params['seal']['id']}/revoke", json={"reason": value}),
        admin.post("/v1/auth/challenge", json={"subject": value}),
    ]
    for answer in answers:
        if key == "newline":  # a revocation reason may span lines
            assert answer.status_code < 500, answer.text
            continue
        _refused_if_control(key, answer)
    assert_healthy(world.gateway)


# --- malformed JSON and multipart ----------------------------------------------------------


def _multipart(parts: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, data, content_type in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                + (f'; filename="{name}.pdf"' if name == "file" else "")
                + f"\r\nContent-Type: {content_type}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _send_raw(session: Session, body: bytes, content_type: str) -> httpx.Response:
    return session.post("/v1/documents", content=body, headers={"Content-Type": content_type})


BAD_JSON = {
    "invalid_utf8": b'{"title": "\xff\xfe\xe7\x8e"}',
    "lone_surrogate_bytes": b'{"title": "\xed\xa0\x80"}',
    "duplicate_keys": b'{"subject": "a", "subject": "b"}',
    "nan": b'{"subject": NaN}',
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(BAD_JSON))
def test_malformed_json_is_400(world: World, name: str) -> None:
    raw = BAD_JSON[name]
    with world.gateway.client() as anonymous:
        challenge = anonymous.post(
            "/v1/auth/challenge", content=raw, headers={"Content-Type": "application/json"}
        )
    assert problem(challenge, 400)["code"] == "invalid_json"
    admin = world.sessions["admin"]
    created = admin.post("/v1/officials", content=raw, headers={"Content-Type": "application/json"})
    assert problem(created, 400)["code"] == "invalid_json"
    unchanged = Unchanged(world.gateway)
    body, content_type = _multipart(
        [("meta", raw, "application/json"), ("file", world.pdf, "application/pdf")]
    )
    sent = _send_raw(world.sessions["seal_keeper"], body, content_type)
    assert problem(sent, 400)["code"] == "invalid_json"
    unchanged.check()


def test_duplicate_meta_keys_are_refused(world: World) -> None:
    meta = json.dumps(meta_for([DEPT_B], doc_number()), ensure_ascii=False)
    doubled = meta[:-1] + ', "recipients": ["yl-czj"]}'
    unchanged = Unchanged(world.gateway)
    body, content_type = _multipart(
        [("meta", doubled.encode(), "application/json"), ("file", world.pdf, "application/pdf")]
    )
    answer = _send_raw(world.sessions["seal_keeper"], body, content_type)
    assert problem(answer, 400)["code"] == "invalid_json"
    unchanged.check()


def test_escaped_lone_surrogate_in_meta_is_refused(world: World) -> None:
    """``"\\ud800"`` is valid JSON but no valid text: it must not reach PostgreSQL."""
    meta = json.dumps(meta_for([DEPT_B], doc_number()), ensure_ascii=True)
    escaped = meta.replace('"title": "', '"title": "\\ud800', 1)
    unchanged = Unchanged(world.gateway)
    body, content_type = _multipart(
        [("meta", escaped.encode(), "application/json"), ("file", world.pdf, "application/pdf")]
    )
    answer = _send_raw(world.sessions["seal_keeper"], body, content_type)
    assert problem(answer, 400)["code"] == "invalid_request"
    assert "surrogate" in answer.json()["detail"]
    unchanged.check()


def test_token_form_with_invalid_utf8_is_400(world: World) -> None:
    with world.gateway.client() as anonymous:
        answer = anonymous.post(
            "/v1/auth/token",
            content=b"grant_type=\xff\xfe&assertion=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    problem(answer, 400)


MULTIPART_CASES: dict[str, Callable[[bytes, bytes], tuple[bytes, str]]] = {
    "file_before_meta": lambda meta, pdf: _multipart(
        [("file", pdf, "application/pdf"), ("meta", meta, "application/json")]
    ),
    "meta_twice": lambda meta, pdf: _multipart(
        [("meta", meta, "application/json"), ("meta", meta, "application/json")]
    ),
    "no_boundary_in_body": lambda meta, pdf: (b"garbage", "multipart/form-data; boundary=zz"),
    "control_char_in_part_header": lambda meta, pdf: (
        b'--zz\r\nContent-Disposition: form-data; name="\x1fmeta"\r\n\r\n{}\r\n--zz--\r\n',
        "multipart/form-data; boundary=zz",
    ),
    "no_end_boundary": lambda meta, pdf: (
        b'--zz\r\nContent-Disposition: form-data; name="meta"\r\n\r\n' + meta,
        "multipart/form-data; boundary=zz",
    ),
}


@pytest.mark.parametrize("name", sorted(MULTIPART_CASES))
def test_malformed_multipart_is_refused(world: World, name: str) -> None:
    meta = json.dumps(meta_for([DEPT_B], doc_number()), ensure_ascii=False).encode()
    body, content_type = MULTIPART_CASES[name](meta, world.pdf)
    unchanged = Unchanged(world.gateway)
    problem(_send_raw(world.sessions["seal_keeper"], body, content_type))
    unchanged.check()


# --- bytes the HTTP parser refuses ---------------------------------------------------------

RAW_REQUESTS = {
    "non_ascii_in_target": b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: sealhub\r\n\r\n",
    "utf8_in_method": b"G\xc3\x89T /healthz HTTP/1.1\r\nHost: sealhub\r\n\r\n",
    "nul_in_header": b"GET /healthz HTTP/1.1\r\nHost: sealhub\r\nX-A: a\x00b\r\n\r\n",
    "request_line_too_long": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: sealhub\r\n\r\n",
    "too_many_headers": b"GET /healthz HTTP/1.1\r\nHost: sealhub\r\n"
    + b"".join(b"X-%d: 1\r\n" % i for i in range(500))
    + b"\r\n",
    "bad_chunk_size": b"POST /v1/auth/challenge HTTP/1.1\r\nHost: sealhub\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
}


def _raw_exchange(gateway: Gateway, raw: bytes) -> bytes:
    context = ssl.create_default_context(cafile=str(gateway.ca_path))
    received = b""
    with (
        socket.create_connection(_address(gateway), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(raw)
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            while chunk := tls.recv(65536):
                received += chunk
    return received


@pytest.mark.parametrize("name", sorted(RAW_REQUESTS))
def test_unparsable_requests_get_problem_json(world: World, name: str) -> None:
    answer = _raw_exchange(world.gateway, RAW_REQUESTS[name])
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    assert 400 <= status < 500, answer[:300]
    content_types = [h for h in headers if h.lower().startswith("content-type:")]
    assert content_types and "application/problem+json" in content_types[0], head
    parsed = json.loads(body)
    assert parsed["status"] == status and parsed["code"]
    assert_healthy(world.gateway)
