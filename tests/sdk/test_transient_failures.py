"""The SDK against real transient failures: a real HTTPS proxy in front of the real gateway
answers 429/502/503/504 or cuts connections (with a FIN or a TCP reset, before or after the
gateway handled the request). Reads and POSTs carrying an ``Idempotency-Key`` are retried
and succeed; ``Retry-After`` is waited for, within a bound; a POST without a key is never
sent twice once it may have reached the server; and the SDK gives up with a clear error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sealhub_sdk import (
    AsyncClient,
    Client,
    DeviceKey,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
    verify_countersigned_receipt,
)

from tests.conftest import Gateway, create_official_in_db
from tests.sdk.conftest import SdkPlatform, simple_pdf
from tests.sdk.faultproxy import FaultProxy

SENDER, RECIPIENT = "yl-jyj", "yl-fgw"


@dataclass(frozen=True)
class CountingPolicy(RetryPolicy):
    """The SDK's own policy, recording each wait it chose: (attempt, Retry-After, delay)."""

    waits: list[tuple[int, float | None, float]] = field(default_factory=list, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        chosen = super().delay(attempt, retry_after)
        self.waits.append((attempt, retry_after, chosen))
        return chosen


def fast(attempts: int = 4) -> CountingPolicy:
    return CountingPolicy(attempts=attempts, base=0.01, cap=0.05)


@dataclass
class Official:
    id: str
    key: DeviceKey


def official(gateway: Gateway, department: str, roles: list[str]) -> Official:
    """An official with an enrolled key (enrolled straight at the gateway)."""
    official_id, code = create_official_in_db(gateway.database_url, department, roles)
    key = DeviceKey.generate()
    with Client(gateway.base_url, ca_file=gateway.ca_path, key=key) as client:
        client.enroll(official_id, code)
    return Official(official_id, key)


@pytest.fixture(scope="module")
def people(gateway: Gateway) -> dict[str, Official]:
    people = {
        "admin1": official(gateway, "yl", ["admin"]),
        "admin2": official(gateway, "yl", ["admin"]),
        "keeper": official(gateway, SENDER, ["seal_keeper"]),
    }
    admins = [direct(gateway, people[name]) for name in ("admin1", "admin2")]
    request = admins[0].request_seal(SENDER)
    admins[1].approve_seal_request(request.id)
    for admin in admins:
        admin.close()
    return people


def direct(gateway: Gateway, who: Official) -> Client:
    client = Client(gateway.base_url, ca_file=gateway.ca_path, key=who.key, official_id=who.id)
    client.login()
    return client


@pytest.fixture
def clerk(gateway: Gateway) -> Official:
    """A fresh clerk of the receiving department (logins are rate-limited per official)."""
    return official(gateway, RECIPIENT, ["clerk"])


@pytest.fixture
def proxy(gateway: Gateway, platform: SdkPlatform, tmp_path: Path) -> Iterator[FaultProxy]:
    with FaultProxy(platform, gateway.base_url, gateway.ca_path, tmp_path) as running:
        yield running


def through(
    proxy: FaultProxy, gateway: Gateway, who: Official, policy: RetryPolicy, *, login: bool = True
) -> Client:
    """A client of *who* that reaches the gateway through the proxy."""
    client = Client(
        proxy.url,
        ca_file=proxy.ca_file,
        key=who.key,
        official_id=who.id,
        public_url=gateway.base_url,
        retry=policy,
    )
    if login:
        client.login()
    return client


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("docs") / "通知.pdf"
    path.write_bytes(simple_pdf(pages=2))
    return path


# --- reads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_until_an_answer(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy, status: int
) -> None:
    policy = fast(attempts=4)
    with through(proxy, gateway, clerk, policy) as client:
        proxy.answer("GET", "/v1/me", status, times=3)
        assert client.me().id == clerk.id
    assert len(proxy.requests("GET", "/v1/me")) == 4
    assert [attempt for attempt, _, _ in policy.waits] == [0, 1, 2]
    assert all(0 <= delay <= 0.05 for _, _, delay in policy.waits)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_connections_cut_mid_request_are_retried_for_reads(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy, reset: bool
) -> None:
    with through(proxy, gateway, clerk, fast()) as client:
        proxy.cut("GET", "/v1/departments/yl", times=2, reset=reset)
        assert client.department("yl").code == "yl"
    assert len(proxy.requests("GET", "/v1/departments/yl")) == 3


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_for(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy, status: int
) -> None:
    policy = fast()
    with through(proxy, gateway, clerk, policy) as client:
        proxy.answer("GET", "/v1/me", status, headers={"Retry-After": "1"})
        client.me()
    first, second = proxy.requests("GET", "/v1/me")
    assert second.at - first.at >= 1.0  # not the policy's 0.05 s cap: the server's advice
    assert policy.waits == [(0, 1.0, 1.0)]


def test_retry_after_beyond_the_bound_is_not_waited_for(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy
) -> None:
    policy = CountingPolicy(attempts=4, base=0.01, cap=0.05, max_retry_after=5)
    with through(proxy, gateway, clerk, policy) as client:
        proxy.answer("GET", "/v1/me", 429, headers={"Retry-After": "3600"})
        started = time.monotonic()
        with pytest.raises(RateLimited) as limited:
            client.me()
    assert time.monotonic() - started < 2
    assert limited.value.retry_after == 3600 and limited.value.status == 429
    assert len(proxy.requests("GET", "/v1/me")) == 1


def test_retries_give_up_with_the_last_error(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy
) -> None:
    with through(proxy, gateway, clerk, fast(attempts=3)) as client:
        proxy.answer("GET", "/v1/me", 503, times=3)
        with pytest.raises(ServerError) as unavailable:
            client.me()
        assert unavailable.value.status == 503 and unavailable.value.code == "unavailable"
        assert unavailable.value.request_id == f"proxy-{len(proxy.seen)}"  # the last attempt
        assert len(proxy.requests("GET", "/v1/me")) == 3

        proxy.answer("GET", "/v1/groups", 429, times=3, headers={"Retry-After": "0"})
        with pytest.raises(RateLimited) as limited:
            list(client.groups())
        assert limited.value.retry_after == 0
        assert len(proxy.requests("GET", "/v1/groups")) == 3

        proxy.cut("GET", "/v1/me", times=3, reset=True)
        with pytest.raises(TransportError) as cut:
            client.me()
        assert cut.value.code == "transport_error" and cut.value.status is None
        assert "3 attempts" in str(cut.value)
        assert len(proxy.requests("GET", "/v1/me")) == 6


# --- state-changing calls --------------------------------------------------------------------


def test_send_lost_answer_is_retried_under_the_same_key_and_sent_once(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy, pdf: Path
) -> None:
    title = "关于重试的通知 " + str(time.time_ns())
    with through(proxy, gateway, people["keeper"], fast()) as keeper:
        # First a 503 before the gateway saw it, then the gateway seals and dispatches it
        # but the answer is lost: the third attempt gets the first result back.
        proxy.answer("POST", "/v1/documents", 503)
        proxy.cut("POST", "/v1/documents", after_forwarding=True)
        sent = keeper.send(pdf, title=title, recipients=[RECIPIENT], doc_number="玉教发〔2026〕9号")
    assert sent.status == "dispatched" and sent.deliveries == 1
    attempts = proxy.requests("POST", "/v1/documents")
    assert len(attempts) == 3
    keys = {seen.headers.get("idempotency-key") for seen in attempts}
    assert len(keys) == 1 and None not in keys
    assert len({seen.headers["dpop"] for seen in attempts}) == 3  # a fresh proof each time

    with direct(gateway, clerk) as clerk:
        delivered = [i for i in clerk.inbox(limit=100).items if i.document.title == title]
    assert [i.document.id for i in delivered] == [sent.id]  # dispatched once, not twice


def test_sign_for_lost_answer_returns_the_receipt(
    gateway: Gateway,
    people: dict[str, Official],
    clerk: Official,
    proxy: FaultProxy,
    pdf: Path,
    tmp_path: Path,
) -> None:
    with direct(gateway, people["keeper"]) as keeper:
        sent = keeper.send(
            pdf, title="签收重试", recipients=[RECIPIENT], doc_number="玉教发〔2026〕10号"
        )
    with through(proxy, gateway, clerk, fast()) as client:
        item = next(i for i in client.inbox(limit=100).items if i.document.id == sent.id)
        proxy.answer("GET", f"/v1/documents/{sent.id}/content", 502)
        download = client.download(sent.id, tmp_path / "in.pdf", expected_sha256=sent.sha256)
        proxy.cut("POST", f"/v1/deliveries/{item.id}/receipt", after_forwarding=True)
        receipt = client.sign_for(item.id, sha256=download.sha256)
    # The first try was signed for; its answer was lost, the retry found the delivery
    # decided by that same signature and returns the stored receipt.
    assert len(proxy.requests("POST", f"/v1/deliveries/{item.id}/receipt")) == 2
    assert len(proxy.requests("GET", f"/v1/documents/{sent.id}/content")) == 2
    assert receipt.state == "received"
    checked = verify_countersigned_receipt(
        receipt.countersigned,
        ca_pem=gateway.ca_path.read_bytes(),
        expected_delivery=item.id,
        expected_sha256=download.sha256,
        official_key=clerk.key.public_key,
    )
    assert checked.action == "receive" and checked.audit_index == receipt.audit_index


@pytest.mark.parametrize("after_forwarding", [False, True], ids=["unseen", "handled"])
def test_post_without_idempotency_key_is_not_sent_twice(
    gateway: Gateway,
    people: dict[str, Official],
    clerk: Official,
    proxy: FaultProxy,
    after_forwarding: bool,
) -> None:
    """The token request (a single-use assertion) carries no key: once it may have reached
    the gateway, a lost answer is reported, not retried."""
    with through(proxy, gateway, clerk, fast(), login=False) as client:
        proxy.cut("POST", "/v1/auth/token", after_forwarding=after_forwarding)
        with pytest.raises(TransportError) as lost:
            client.login()
        assert "Idempotency-Key" in str(lost.value)
        assert len(proxy.requests("POST", "/v1/auth/token")) == 1
        assert "idempotency-key" not in proxy.requests("POST", "/v1/auth/token")[0].headers

        proxy.answer("POST", "/v1/auth/token", 503)
        with pytest.raises(ServerError):
            client.login()
        assert len(proxy.requests("POST", "/v1/auth/token")) == 2

        client.login()  # a fresh assertion goes through
        assert client.me().id == clerk.id


def test_async_client_retries_the_same_way(
    gateway: Gateway, people: dict[str, Official], clerk: Official, proxy: FaultProxy
) -> None:
    who = clerk

    async def scenario() -> None:
        async with AsyncClient(
            proxy.url,
            ca_file=proxy.ca_file,
            key=who.key,
            official_id=who.id,
            public_url=gateway.base_url,
            retry=fast(),
        ) as client:
            proxy.cut("POST", "/v1/auth/token", after_forwarding=True)
            with pytest.raises(TransportError):
                await client.login()
            await client.login()
            proxy.answer("GET", "/v1/me", 429, headers={"Retry-After": "1"})
            proxy.cut("GET", "/v1/me", reset=True)
            proxy.answer("GET", "/v1/me", 504)
            assert (await client.me()).id == who.id

    asyncio.run(scenario())
    assert len(proxy.requests("POST", "/v1/auth/token")) == 2
    me = proxy.requests("GET", "/v1/me")
    assert len(me) == 4 and me[1].at - me[0].at >= 1.0


def test_reads_sent_as_post_are_retried(
    gateway: Gateway, clerk: Official, proxy: FaultProxy, pdf: Path
) -> None:
    """The login challenge (a stateless nonce) and remote verification change nothing on the
    gateway: like reads, they are sent again after a 503 or a lost answer."""
    with through(proxy, gateway, clerk, fast(), login=False) as client:
        proxy.answer("POST", "/v1/auth/challenge", 503)
        client.login()
        proxy.cut("POST", "/v1/verify", after_forwarding=True)
        report = client.verify(pdf)
    assert not report.valid  # an unsealed PDF, verified on the second try
    assert len(proxy.requests("POST", "/v1/auth/challenge")) == 2
    assert len(proxy.requests("POST", "/v1/verify")) == 2
