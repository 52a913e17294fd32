"""A bounded load generator: simulated departments exchanging documents over loopback.

Each department has one official (clerk and seal keeper, with an issued seal). Its worker
sends, withdraws, resends, downloads, signs for and rejects; its event stream and its
long-poll sit on other processes than most of its sends, so every wake-up crosses
processes. Requests go round-robin over the processes; at most ``concurrency`` ordinary
requests are in flight at once (streams and long-polls are not counted: they wait).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import ssl
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from keys.jws import TYP_RECEIPT, jwk_thumbprint, sign_jws
from storage.db import connect
from tests.load.cluster import Cluster
from tests.proofs import JWT_BEARER, dpop_proof, enrollment_proof, login_assertion

WAIT_SECONDS = 5  # long-poll wait: short, so a worker sees the deadline soon


@dataclass
class Stats:
    """Latency samples per endpoint, statuses, and every 5xx with its request."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    server_errors: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def record(self, endpoint: str, status: int, seconds: float, detail: str) -> None:
        self.samples[endpoint].append(seconds)
        self.statuses[endpoint][status] += 1
        if status >= 500:
            self.server_errors.append(f"{endpoint} -> {status}: {detail}")

    def table(self) -> str:
        duration = max(self.ended - self.started, 1e-9)
        rows = [f"{'endpoint':<44} {'n':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses"]
        for endpoint in sorted(self.samples):
            values = sorted(self.samples[endpoint])
            p50 = statistics.median(values) * 1000
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
            codes = " ".join(f"{c}:{n}" for c, n in sorted(self.statuses[endpoint].items()))
            rows.append(
                f"{endpoint:<44} {len(values):>6} {len(values) / duration:>7.1f}"
                f" {p50:>8.1f} {p99:>8.1f}  {codes}"
            )
        total = sum(len(v) for v in self.samples.values())
        rows.append(f"{'all':<44} {total:>6} {total / duration:>7.1f}")
        return "\n".join(rows)


class Client:
    """One official's key and token, speaking to any process of the cluster (DPoP ``htu``
    is always the shared public URL)."""

    def __init__(self, cluster: Cluster, http: list[httpx.AsyncClient], stats: Stats) -> None:
        self.cluster = cluster
        self.http = http
        self.stats = stats
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = jwk_thumbprint(self.key.public_key())
        self.official_id = ""
        self.access_token = ""
        self._turn = itertools.count(random.randrange(len(http)))

    def next_process(self) -> int:
        return next(self._turn) % len(self.http)

    def proof(self, method: str, path: str) -> str:
        return dpop_proof(
            self.key,
            method,
            self.cluster.public_url + path,
            access_token=self.access_token or None,
        )

    def headers(self, method: str, path: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {self.access_token}", "DPoP": self.proof(method, path)}

    async def request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        process: int | None = None,
        auth: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        process = self.next_process() if process is None else process
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers.update(self.headers(method, path))
        started = time.monotonic()
        response = await self.http[process].request(method, path, headers=headers, **kwargs)
        self.stats.record(
            endpoint,
            response.status_code,
            time.monotonic() - started,
            f"{method} {path} on process {process + 1}: {response.text[:300]}",
        )
        return response

    async def login(self, enrollment_code: str) -> None:
        enroll = enrollment_proof(self.key, self.official_id, enrollment_code)
        enrolled = await self.request(
            "POST /v1/officials/{id}/keys",
            "POST",
            f"/v1/officials/{self.official_id}/keys",
            auth=False,
            json={"proof": enroll},
        )
        assert enrolled.status_code == 201, enrolled.text
        challenged = await self.request(
            "POST /v1/auth/challenge",
            "POST",
            "/v1/auth/challenge",
            auth=False,
            json={"subject": self.official_id},
        )
        assert challenged.status_code == 200, challenged.text
        assertion = login_assertion(
            self.key,
            self.kid,
            self.official_id,
            self.cluster.public_url + "/v1/auth/token",
            challenged.json()["nonce"],
        )
        token = await self.request(
            "POST /v1/auth/token",
            "POST",
            "/v1/auth/token",
            auth=False,
            data={
                "grant_type": JWT_BEARER,
                "assertion": assertion,
            },
            headers={"DPoP": self.proof("POST", "/v1/auth/token")},
        )
        assert token.status_code == 200, token.text
        self.access_token = token.json()["access_token"]

    def receipt(self, delivery: str, sha256: str, action: str, reason: str = "") -> str:
        return sign_jws(
            {
                "delivery": delivery,
                "sha256": sha256,
                "action": action,
                "reason": reason,
                "iat": int(time.time()),
                "jti": uuid.uuid4().hex,
            },
            self.key,
            typ=TYP_RECEIPT,
        )

    async def events(self, process: int, endpoint: str) -> AsyncIterator[tuple[str, Any]]:
        """``(event, data)`` of ``/v1/inbox/events`` on *process*, until the stream ends."""
        path = "/v1/inbox/events"
        started = time.monotonic()
        async with self.http[process].stream(
            "GET", path, headers=self.headers("GET", path), timeout=httpx.Timeout(10, read=None)
        ) as response:
            self.stats.record(
                endpoint,
                response.status_code,
                time.monotonic() - started,
                f"GET {path} on process {process + 1}",
            )
            if response.status_code != 200:
                return
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    yield event, json.loads(line[6:])
                    event = ""


def http_clients(cluster: Cluster, limit: int) -> list[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(cluster.ca_path))
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    return [
        httpx.AsyncClient(base_url=g.base_url, verify=context, timeout=60, limits=limits)
        for g in cluster.gateways
    ]


async def department_codes(database_url: str, count: int) -> list[str]:
    connection = await connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT code FROM departments WHERE parent IS NOT NULL ORDER BY code LIMIT $1", count
        )
    finally:
        await connection.close()
    codes = [row["code"] for row in rows]
    assert len(codes) == count, f"only {len(codes)} departments in the demo directory"
    return codes


async def create_officials(
    database_url: str, requests: list[tuple[str, list[str]]]
) -> list[tuple[str, str]]:
    """(id, enrollment code) per (department, roles), as ``sealhub official create`` does."""
    from gateway.identity import service as identity
    from storage.audit_outbox import OutboxSink
    from storage.db import connect

    connection = await connect(database_url)
    made = []
    try:
        for department, roles in requests:
            created = await identity.create_official(
                connection,
                name="负载测试员",
                department=department,
                roles=roles,
                now=datetime.now(UTC),
                audit=OutboxSink(),
                actor=None,
                via="test",
            )
            made.append((created.official.id, created.enrollment_code))
    finally:
        await connection.close()
    return made


async def logged_in(
    cluster: Cluster,
    http: list[httpx.AsyncClient],
    stats: Stats,
    requests: list[tuple[str, list[str]]],
    concurrency: int,
) -> list[Client]:
    made = await create_officials(cluster.database_url, requests)
    gate = asyncio.Semaphore(concurrency)

    async def one(official: str, code: str) -> Client:
        client = Client(cluster, http, stats)
        client.official_id = official
        async with gate:
            await client.login(code)
        return client

    return list(await asyncio.gather(*(one(o, c) for o, c in made)))


@dataclass
class Department:
    code: str
    index: int
    client: Client
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    streamed: Counter[str] = field(default_factory=Counter)  # delivery id -> times streamed
    polled: Counter[str] = field(default_factory=Counter)  # delivery id -> times long-polled
    decided: Counter[str] = field(default_factory=Counter)  # delivery id -> 2xx decisions
    queued: set[str] = field(default_factory=set)


@dataclass
class Ledger:
    """What the senders were told: (document, recipient) pairs that must be in an inbox."""

    expected: set[tuple[str, str]] = field(default_factory=set)
    withdrawn: set[str] = field(default_factory=set)
    sends: int = 0


class Load:
    """The run: setup, the timed phase, and the checks of what it left behind."""

    def __init__(self, cluster: Cluster, *, departments: int, concurrency: int, pdf: bytes) -> None:
        self.cluster = cluster
        self.count = departments
        self.concurrency = concurrency
        self.pdf = pdf
        self.stats = Stats()
        self.ledger = Ledger()
        self.gate = asyncio.Semaphore(concurrency)
        self.departments: list[Department] = []
        self.http: list[httpx.AsyncClient] = []
        self.stopping = asyncio.Event()
        self.random = random.Random(20)
        self.missed_polls: list[tuple[str, str]] = []
        # The mix over all departments: every 4th send withdrawn, every 3rd other one
        # resent to one more department, every 3rd answer a rejection.
        self.sent_count = itertools.count(1)
        self.answer_count = itertools.count(1)

    async def setup(self, admins: tuple[Client, Client]) -> None:
        codes = await department_codes(self.cluster.database_url, self.count)
        for code in codes:  # one seal per department: two admins agree
            async with self.gate:
                asked = await admins[0].request(
                    "POST /v1/departments/{code}/seal-requests",
                    "POST",
                    f"/v1/departments/{code}/seal-requests",
                    json={"purpose": "公文专用章"},
                )
                assert asked.status_code == 201, asked.text
                approved = await admins[1].request(
                    "POST /v1/seal-requests/{id}/approve",
                    "POST",
                    f"/v1/seal-requests/{asked.json()['id']}/approve",
                )
                assert approved.status_code == 201, approved.text
        clients = await logged_in(
            self.cluster,
            self.http,
            self.stats,
            [(code, ["clerk", "seal_keeper"]) for code in codes],
            self.concurrency,
        )
        self.departments = [
            Department(c, n, cl) for n, (c, cl) in enumerate(zip(codes, clients, strict=True))
        ]

    async def call(self, client: Client, endpoint: str, method: str, path: str, **kw: Any) -> Any:
        async with self.gate:
            return await client.request(endpoint, method, path, **kw)

    def arrived(self, department: Department, item: dict[str, Any]) -> None:
        if item["id"] not in department.queued and item["state"] == "pending":
            department.queued.add(item["id"])
            department.queue.put_nowait(item)

    async def stream(self, department: Department) -> None:
        process = department.index % len(self.http)
        while not self.stopping.is_set():
            async for event, data in department.client.events(process, "GET /v1/inbox/events"):
                if event == "delivery":
                    department.streamed[data["id"]] += 1
                    self.arrived(department, data)
                elif event == "end":
                    break
            await asyncio.sleep(0.2)

    async def poll(self, department: Department) -> None:
        process = (department.index + 1) % len(self.http)
        client = department.client
        cursor = await self._latest_cursor(client)
        while not self.stopping.is_set():
            path = f"/v1/inbox?wait={WAIT_SECONDS}&limit=100&cursor={cursor}"
            page = await client.request("GET /v1/inbox?wait", "GET", path, process=process)
            if page.status_code != 200:
                await asyncio.sleep(0.5)
                continue
            body = page.json()
            for item in body["items"]:
                department.polled[item["id"]] += 1
                self.arrived(department, item)
            cursor = body["next_cursor"]

    async def _latest_cursor(self, client: Client) -> str:
        """The cursor after everything there now (an empty inbox at the start)."""
        page = await self.call(client, "GET /v1/inbox", "GET", "/v1/inbox?limit=500")
        assert page.status_code == 200, page.text
        assert page.json()["items"] == [], "the load starts from empty inboxes"
        cursor: str = page.json()["next_cursor"]
        return cursor

    async def work(self, department: Department, deadline: float) -> None:
        others = [d.code for d in self.departments if d is not department]
        turn = 0
        while time.monotonic() < deadline:
            turn += 1
            # Answer what arrived first (签收 or 退回), then send something new.
            while not department.queue.empty() and time.monotonic() < deadline:
                await self.answer(department, department.queue.get_nowait())
            if turn % 2 == 1:
                await self.send(department, self.random.sample(others, 2), turn)
            else:
                try:
                    item = await asyncio.wait_for(department.queue.get(), 1.0)
                except TimeoutError:
                    continue
                await self.answer(department, item)

    async def send(self, department: Department, recipients: list[str], turn: int) -> None:
        client = department.client
        meta = {
            "title": "关于做好负载测试工作的通知",
            "doc_number": f"玉负〔2026〕{department.index}-{turn}号",
            "urgency": "normal",
            "classification": "internal",
            "recipients": recipients,
        }
        files = {
            "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
            "file": ("document.pdf", self.pdf, "application/pdf"),
        }
        sent = await self.call(client, "POST /v1/documents", "POST", "/v1/documents", files=files)
        if sent.status_code != 201:
            return
        document = sent.json()["id"]
        self.ledger.sends += 1
        self.ledger.expected.update((document, r) for r in recipients)
        nth = next(self.sent_count)
        if nth % 4 == 0:  # 撤回, unless a recipient signed for it already
            withdrawn = await self.call(
                client,
                "POST /v1/documents/{id}/withdraw",
                "POST",
                f"/v1/documents/{document}/withdraw",
            )
            if withdrawn.status_code == 200:
                self.ledger.withdrawn.add(document)
                self.ledger.expected -= {(document, r) for r in recipients}
        elif nth % 3 == 0:  # 补发 to one more department
            more = self.random.choice(
                [d.code for d in self.departments if d.code not in {department.code, *recipients}]
            )
            resent = await self.call(
                client,
                "POST /v1/documents/{id}/resend",
                "POST",
                f"/v1/documents/{document}/resend",
                json={"recipients": [more]},
            )
            if resent.status_code in (200, 201):
                self.ledger.expected.add((document, more))

    async def answer(self, department: Department, item: dict[str, Any]) -> None:
        client = department.client
        document = item["document"]["id"]
        content = await self.call(
            client,
            "GET /v1/documents/{id}/content",
            "GET",
            f"/v1/documents/{document}/content",
        )
        if content.status_code != 200:
            return  # withdrawn meanwhile
        sha256 = hashlib.sha256(content.content).hexdigest()
        delivery = item["id"]
        if next(self.answer_count) % 3 == 0:
            action, verb, reason = "reject", "reject", "文号有误，请核实"
        else:
            action, verb, reason = "receive", "receipt", ""
        answered = await self.call(
            client,
            f"POST /v1/deliveries/{{id}}/{verb}",
            "POST",
            f"/v1/deliveries/{delivery}/{verb}",
            json={"signature": client.receipt(delivery, sha256, action, reason)},
        )
        if answered.status_code == 200:
            department.decided[delivery] += 1

    async def run(self, seconds: float) -> None:
        """The timed phase; then streams and polls get a moment to catch up, and stop."""
        waiters = [
            asyncio.create_task(job(d))
            for d in self.departments
            for job in (self.stream, self.poll)
        ]
        await asyncio.sleep(1.0)  # streams and polls are open before the first send
        self.stats.started = time.monotonic()
        deadline = self.stats.started + seconds
        await asyncio.gather(*(self.work(d, deadline) for d in self.departments))
        self.stats.ended = time.monotonic()
        await asyncio.sleep(WAIT_SECONDS / 2)
        self.stopping.set()
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

    async def final_inboxes(self) -> dict[str, list[dict[str, Any]]]:
        """Every department's inbox after the run (every state but withdrawn), all pages."""
        inboxes: dict[str, list[dict[str, Any]]] = {}
        for department in self.departments:
            items: list[dict[str, Any]] = []
            cursor = ""
            while True:
                page = await self.call(
                    department.client,
                    "GET /v1/inbox",
                    "GET",
                    f"/v1/inbox?limit=500&cursor={cursor}",
                )
                assert page.status_code == 200, page.text
                body = page.json()
                items.extend(body["items"])
                if not body["items"]:
                    break
                cursor = body["next_cursor"]
            inboxes[department.code] = items
        return inboxes

    async def exactly_once_problems(self) -> list[str]:
        """Each expected delivery in its recipient's inbox once; nothing else there; every
        delivery streamed and long-polled once; nothing decided twice."""
        problems: list[str] = []
        inboxes = await self.final_inboxes()
        found: Counter[tuple[str, str]] = Counter()
        for department in self.departments:
            ids = [item["id"] for item in inboxes[department.code]]
            for item in inboxes[department.code]:
                found[(item["document"]["id"], department.code)] += 1
            for delivery in ids:
                if department.streamed[delivery] != 1:
                    self.missed_polls.append((department.code, delivery))
                    problems.append(
                        f"{department.code}: delivery {delivery} streamed"
                        f" {department.streamed[delivery]} times"
                    )
                if department.polled[delivery] != 1:
                    self.missed_polls.append((department.code, delivery))
                    problems.append(
                        f"{department.code}: delivery {delivery} long-polled"
                        f" {department.polled[delivery]} times"
                    )
            for delivery, times in department.decided.items():
                if times != 1:
                    problems.append(f"{department.code}: delivery {delivery} decided {times}x")
        for pair in self.ledger.expected:
            if found[pair] != 1:
                problems.append(f"document {pair[0]} to {pair[1]}: {found[pair]} deliveries")
        for pair, times in found.items():
            if pair not in self.ledger.expected:
                problems.append(f"document {pair[0]} to {pair[1]}: unexpected ({times})")
        return problems


async def seq_diagnosis(database_url: str, load: Load) -> list[str]:
    """For a delivery a long-poll or stream never returned: its seq against the others (a
    lower seq committed after a higher one was read falls behind the cursor)."""
    lines = []
    connection = await connect(database_url)
    try:
        for code, delivery in dict.fromkeys(load.missed_polls):
            department = next(d for d in load.departments if d.code == code)
            rows = await connection.fetch(
                "SELECT id::text, seq, created_at FROM deliveries WHERE recipient = $1"
                " ORDER BY seq",
                code,
            )
            for row in rows:
                seen = (
                    f"polled {department.polled[row['id']]}"
                    f" streamed {department.streamed[row['id']]}"
                )
                mark = ("MISSED " if row["id"] == delivery else "") + seen
                lines.append(f"{code} seq {row['seq']} {row['created_at']} {mark} {row['id']}")
    finally:
        await connection.close()
    return lines
