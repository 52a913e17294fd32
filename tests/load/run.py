"""One load run against a cluster, and the checks that need every process: wake-ups across
processes, a key revoked through one process refused by the others, the audit log."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.load.cluster import Cluster, audit_verify, outbox_drained
from tests.load.generator import (
    Client,
    Department,
    Load,
    Stats,
    http_clients,
    logged_in,
    seq_diagnosis,
)

WAKE_LIMIT_S = 3.0


@dataclass
class Outcome:
    stats: Stats
    problems: list[str] = field(default_factory=list)
    sends: int = 0
    deliveries: int = 0
    audit_entries: int = 0
    wakes: dict[str, float] = field(default_factory=dict)

    def report(self) -> str:
        lines = [
            self.stats.table(),
            f"documents sent: {self.sends}; deliveries expected: {self.deliveries};"
            f" audit entries: {self.audit_entries}",
            "cross-process wake-ups (s): "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.wakes.items())),
        ]
        return "\n".join(lines)


async def _send(client: Client, process: int, recipient: str, pdf: bytes, label: str) -> str:
    meta = {
        "title": "跨进程唤醒测试",
        "doc_number": f"玉醒〔2026〕{label}号",
        "urgency": "normal",
        "classification": "internal",
        "recipients": [recipient],
    }
    files = {
        "meta": (None, json.dumps(meta, ensure_ascii=False), "application/json"),
        "file": ("document.pdf", pdf, "application/pdf"),
    }
    sent = await client.request(
        "POST /v1/documents", "POST", "/v1/documents", process=process, files=files
    )
    assert sent.status_code == 201, sent.text
    document: str = sent.json()["id"]
    return document


async def _end_cursor(client: Client, process: int) -> str:
    """The cursor after every delivery now in the caller's inbox."""
    cursor = ""
    while True:
        page = await client.request(
            "GET /v1/inbox", "GET", f"/v1/inbox?limit=500&cursor={cursor}", process=process
        )
        assert page.status_code == 200, page.text
        body = page.json()
        if not body["items"]:
            return cursor or str(body["next_cursor"])
        cursor = body["next_cursor"]


async def wake_checks(load: Load, outcome: Outcome) -> None:
    """A send through process i wakes a long-poll and an event stream on every j != i
    (the pairs side by side, each with a receiver of its own)."""
    processes = range(len(load.http))
    pairs = [(i, j) for i in processes for j in processes if i != j]
    assert len(load.departments) > len(pairs), "too few departments for the wake checks"
    sender = load.departments[0]
    await asyncio.gather(
        *(
            _wake_pair(load, outcome, sender, load.departments[1 + n], i, j)
            for n, (i, j) in enumerate(pairs)
        )
    )


async def _wake_pair(
    load: Load, outcome: Outcome, sender: Department, receiver: Department, i: int, j: int
) -> None:
    label = f"{i + 1}-{j + 1}"
    cursor = await _end_cursor(receiver.client, j)
    stream_seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        async for event, _ in receiver.client.events(j, "GET /v1/inbox/events"):
            if event == "delivery" and not stream_seen.done():
                stream_seen.set_result(time.monotonic())
                return

    listener = asyncio.create_task(listen())
    poll = asyncio.create_task(
        receiver.client.request(
            "GET /v1/inbox?wait", "GET", f"/v1/inbox?wait=20&cursor={cursor}", process=j
        )
    )
    await asyncio.sleep(0.5)  # both are waiting now
    document = await _send(sender.client, i, receiver.code, load.pdf, label)
    # From the send's 201 (committed): a waiter may wake before the response arrives.
    sent_at = time.monotonic()
    answer = await asyncio.wait_for(poll, 20)
    polled_at = time.monotonic()
    try:
        streamed_at = await asyncio.wait_for(stream_seen, 20)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    woke = [item["document"]["id"] for item in answer.json()["items"]]
    if woke != [document]:
        outcome.problems.append(f"long-poll {label}: woke with {woke}, not {document}")
    outcome.wakes[f"poll {label}"] = polled_at - sent_at
    outcome.wakes[f"stream {label}"] = streamed_at - sent_at
    for kind, at in (("poll", polled_at), ("stream", streamed_at)):
        if at - sent_at > WAKE_LIMIT_S:
            outcome.problems.append(f"{kind} {label} woke {at - sent_at:.2f} s after the send")


async def revocation_checks(load: Load, outcome: Outcome) -> None:
    """A key revoked through process 1 is refused at once by 2 and 3; a stream there ends."""
    code = load.departments[2].code
    (victim,) = await logged_in(load.cluster, load.http, load.stats, [(code, ["clerk"])], 1)
    for process in range(len(load.http)):
        me = await victim.request("GET /v1/me", "GET", "/v1/me", process=process)
        assert me.status_code == 200, me.text
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    last = len(load.http) - 1

    async def listen() -> None:
        async for event, data in victim.events(last, "GET /v1/inbox/events"):
            if event == "end" and not ended.done():
                ended.set_result(str(data.get("reason")))
        if not ended.done():
            ended.set_result("closed")

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.5)
    path = f"/v1/officials/{victim.official_id}/keys/{victim.kid}"
    revoked = await victim.request(
        "DELETE /v1/officials/{id}/keys/{kid}", "DELETE", path, process=0
    )
    assert revoked.status_code in (200, 204), revoked.text
    revoked_at = time.monotonic()
    for process in range(1, len(load.http)):
        me = await victim.request("GET /v1/me", "GET", "/v1/me", process=process)
        if me.status_code != 401:
            outcome.problems.append(
                f"revoked key accepted by process {process + 1}: {me.status_code} {me.text}"
            )
    try:
        reason = await asyncio.wait_for(ended, WAKE_LIMIT_S)
        outcome.wakes[f"stream end on {last + 1} after revocation on 1"] = (
            time.monotonic() - revoked_at
        )
        if reason == "closed":
            outcome.problems.append("the stream closed without event: end after revocation")
    except TimeoutError:
        outcome.problems.append(f"the stream on process {last + 1} outlived the revoked key")
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)


async def run_load(
    cluster: Cluster,
    *,
    seconds: float,
    departments: int,
    concurrency: int,
    pdf: bytes,
    state_dir: Path,
) -> Outcome:
    load = Load(cluster, departments=departments, concurrency=concurrency, pdf=pdf)
    # Streams and long-polls hold connections of their own; ordinary requests share the rest.
    load.http = http_clients(cluster, limit=concurrency + 2 * departments + 8)
    outcome = Outcome(load.stats)
    try:
        admins = await logged_in(
            cluster, load.http, load.stats, [("yl", ["admin"]), ("yl", ["admin"])], 2
        )
        await load.setup((admins[0], admins[1]))
        load.stats = Stats()  # the table is about the timed phase
        for department in load.departments:
            department.client.stats = load.stats
        for admin in admins:
            admin.stats = load.stats
        await load.run(seconds)
        outcome.stats = load.stats
        # The checks after the timed phase have their own statistics (5xx still count).
        load.stats = Stats()
        for department in load.departments:
            department.client.stats = load.stats
        outcome.problems.extend(outcome.stats.server_errors)
        outcome.sends = load.ledger.sends
        outcome.deliveries = len(load.ledger.expected)
        outcome.problems.extend(await load.exactly_once_problems())
        outcome.problems.extend(await seq_diagnosis(cluster.database_url, load))
        await wake_checks(load, outcome)
        await revocation_checks(load, outcome)
    finally:
        for client in load.http:
            await client.aclose()
    outcome.problems.extend(load.stats.server_errors)
    outcome.audit_entries = await outbox_drained(cluster.database_url)
    verified = await asyncio.to_thread(audit_verify, cluster, state_dir / "audit-state.json")
    if verified.returncode != 0 or not verified.stdout.startswith("OK"):
        outcome.problems.append(f"audit verify failed: {verified.stdout}{verified.stderr}")
    return outcome
