"""Pushing new deliveries to department systems, safely.

A target must be ``https://`` and its host and port on the admins' allow-list. The host is
resolved once per attempt; every answer must be a public address (or private, if the
allow-list entry says so — never link-local, multicast or unspecified), and the connection
is pinned to the first answer: aiohttp's resolver is replaced by one that knows that single
address, while TLS still verifies the certificate for the host name (SNI). A second DNS
answer, whatever it says, is never asked for, so rebinding cannot move the connection.
Redirects are not followed (a 3xx is a failed attempt), proxies from the environment are
ignored.

Bodies are signed with HMAC-SHA256 over ``timestamp.body`` (the SDK's
``verify_webhook_signature`` checks it). Jobs come from the PostgreSQL queue; failures are
retried with exponential backoff and jitter and dead-lettered after the policy's attempts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.background import Listener, Loop, run_with_app
from gateway.runtime import RUNTIME, clock_of
from keys.clock import SYSTEM_CLOCK, Clock
from keys.codes import Code, CodedError
from keys.master import MasterKey, MasterKeyError
from storage import audit_events as events
from storage import webhooks as rows
from storage.audit_outbox import record_events
from storage.db import DbConnection
from storage.vocabulary import WebhookJobState

log = logging.getLogger(__name__)

ID_HEADER = "Sealhub-Webhook-Id"
TIMESTAMP_HEADER = "Sealhub-Timestamp"
SIGNATURE_HEADER = "Sealhub-Signature"
EVENT_HEADER = "Sealhub-Event"
DEFAULT_TIMEOUT = 10.0
POLL_SECONDS = 5.0
MAX_URL_CHARS = 2000
# The ``outcome`` an attempt's audit event names for the job's new state.
OUTCOMES = {
    WebhookJobState.DELIVERED: "delivered",
    WebhookJobState.DEAD: "dead",
    WebhookJobState.PENDING: "retry",
}

Resolver = Callable[[str, int], Awaitable[list[str]]]


class WebhookError(CodedError):
    code: str = Code.WEBHOOK_URL_INVALID


class InvalidWebhookUrl(WebhookError):
    code = Code.WEBHOOK_URL_INVALID


class TargetNotAllowed(WebhookError):
    code = Code.WEBHOOK_TARGET_NOT_ALLOWED


class AddressRefused(WebhookError):
    code = Code.WEBHOOK_ADDRESS_REFUSED


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int

    @property
    def is_ip_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def parse_target(url: object) -> Target:
    """An ``https://host[:port]/path`` URL without credentials or fragment."""
    if not isinstance(url, str) or not 9 <= len(url) <= MAX_URL_CHARS or not url.isascii():
        raise InvalidWebhookUrl("url must be an ASCII https:// URL of at most 2000 characters")
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise InvalidWebhookUrl("url must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise InvalidWebhookUrl("webhooks are delivered over https:// only")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidWebhookUrl("url must not carry credentials")
    if parts.fragment:
        raise InvalidWebhookUrl("url must not have a fragment")
    try:
        port = parts.port or 443
    except ValueError:
        raise InvalidWebhookUrl("url has an invalid port") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidWebhookUrl("url needs a host")
    return Target(url, host, port)


def normalize_host(value: object) -> str:
    """An allow-list host: a DNS name or an IP address, lowercase, no trailing dot."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidWebhookUrl("host must be a DNS name or an IP address")
    host = value.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not address_allowed(str(ip), allow_private=True) or str(ip).startswith(":"):
            raise InvalidWebhookUrl(f"{host} can never be a webhook target")
        return str(ip)
    labels = host.split(".")
    if len(host) > 253 or not all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        for label in labels
    ):
        raise InvalidWebhookUrl("host must be a DNS name or an IP address")
    return host


# IPv6 outside global unicast, or carrying an IPv4 address a gateway may unwrap (6to4,
# Teredo; NAT64 and IPv4-compatible fall outside 2000::/3), could reach inside networks.
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_TUNNELS_V6 = (ipaddress.ip_network("2002::/16"), ipaddress.ip_network("2001::/32"))
_UNIQUE_LOCAL_V6 = ipaddress.ip_network("fc00::/7")
_THIS_NETWORK_V4 = ipaddress.ip_network("0.0.0.0/8")


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Public unicast addresses; private and loopback only when the entry allows them."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            return False
        if ip in _GLOBAL_UNICAST_V6 and ip.is_global:
            return not any(ip in tunnel for tunnel in _TUNNELS_V6)
        return allow_private and (ip.is_loopback or ip in _UNIQUE_LOCAL_V6)
    if ip.is_multicast or ip.is_link_local or ip in _THIS_NETWORK_V4:
        return False
    if ip.is_loopback:
        return allow_private
    if ip.is_global:
        return True
    return allow_private and ip.is_private and not ip.is_reserved


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def pin_address(
    target: Target,
    resolver: Resolver,
    *,
    allow_private: bool,
    resolve_seconds: float = DEFAULT_TIMEOUT,
) -> str:
    """Resolve once and choose the address the connection will use (or refuse).

    Every answer is checked, not only the one used: a name answering with an inside
    address among outside ones is how rebinding attacks hedge their bets.
    """
    if target.is_ip_literal:
        addresses = [target.host]
    else:
        try:
            # A slow name server must not hold a worker lane, its job lock and transaction.
            addresses = await asyncio.wait_for(resolver(target.host, target.port), resolve_seconds)
        except TimeoutError:
            raise AddressRefused(
                f"{target.host} did not resolve within {resolve_seconds:g} s"
            ) from None
        except OSError as exc:
            raise AddressRefused(f"{target.host} does not resolve ({exc.strerror})") from None
    if not addresses:
        raise AddressRefused(f"{target.host} does not resolve")
    for address in addresses:
        if not address_allowed(address, allow_private=allow_private):
            raise AddressRefused(f"{target.host} resolves to a refused address ({address})")
    return addresses[0]


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver for one connection: the pinned address for the pinned host only."""

    def __init__(self, host: str, address: str) -> None:
        self._host = host
        self._address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".").lower() != self._host:
            raise OSError(f"connections are pinned to {self._host}")
        ip = ipaddress.ip_address(self._address)
        return [
            ResolveResult(
                hostname=host,
                host=self._address,
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(
        secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256
    ).hexdigest()


def backoff_delay(attempt: int, policy: rows.Policy, rand: Callable[[], float]) -> float:
    """Exponential with "equal jitter": half the capped delay plus a random half."""
    capped = min(policy.max_delay, policy.base_delay * 2.0 ** max(attempt - 1, 0))
    return float(capped / 2 + rand() * capped / 2)


def client_ssl_context(extra_ca_file: Path | None) -> ssl.SSLContext:
    """The system's trust store, plus the operator's CA file for internal receivers."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=str(extra_ca_file))
    return context


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status: int | None
    error: str | None
    address: str | None


async def post_once(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    resolver: Resolver,
    allow_private: bool,
    ssl_context: ssl.SSLContext,
    total_seconds: float = DEFAULT_TIMEOUT,
) -> AttemptResult:
    """One POST over a connection pinned to the address resolved here; never redirected."""
    try:
        address = await pin_address(
            target, resolver, allow_private=allow_private, resolve_seconds=total_seconds
        )
    except AddressRefused as exc:
        return AttemptResult(False, None, f"address_refused: {exc.detail}", None)
    connector = aiohttp.TCPConnector(
        resolver=PinnedResolver(target.host, address),
        ssl=ssl_context,
        use_dns_cache=False,
        force_close=True,
    )
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=total_seconds),
            ) as session,
            session.post(target.url, data=body, headers=headers, allow_redirects=False) as answer,
        ):
            status = answer.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return AttemptResult(False, None, f"{type(exc).__name__}: {exc}"[:300], address)
    if 300 <= status < 400:
        return AttemptResult(False, status, "redirect_refused", address)
    if not 200 <= status < 300:
        return AttemptResult(False, status, f"http_{status}", address)
    return AttemptResult(True, status, None, address)


def _secret_context(webhook_id: object) -> bytes:
    return f"sealhub webhook secret\x00{webhook_id}".encode()


def wrap_secret(master_key: MasterKey, webhook_id: object, secret: str) -> bytes:
    return master_key.wrap(secret.encode("utf-8"), _secret_context(webhook_id))


class WebhookWorker:
    """Claims due jobs and attempts them; several lanes per process, many processes."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        master_key: MasterKey,
        *,
        ssl_context: ssl.SSLContext,
        resolver: Resolver = system_resolver,
        clock: Clock = SYSTEM_CLOCK,
        rand: Callable[[], float] = random.random,
        timeout: float = DEFAULT_TIMEOUT,
        lanes: int = 2,
    ) -> None:
        self._pool = pool
        self._master_key = master_key
        self._ssl_context = ssl_context
        self._resolver = resolver
        self._clock = clock
        self._rand = rand
        self._timeout = timeout
        self.lanes = [
            Loop(f"webhook-lane-{n}", self._lane_step, POLL_SECONDS, logger=log)
            for n in range(lanes)
        ]

    def wake(self) -> None:
        for lane in self.lanes:
            lane.wake()

    async def run_once(self) -> bool:
        """Attempt one due job; False when none is due.

        Three steps, so no connection or row lock is held while a receiver answers: claim the
        job, count the attempt and lease it (commit); POST; record the result and its audit
        events (commit). Should the result never land, the lease runs out after the longest
        an attempt can take, a margin and the backoff, and the job is tried again: at least
        once delivered, as receivers expect (they dedupe by ``Sealhub-Webhook-Id``). An
        attempt whose result was lost leaves no ``webhook.attempted`` event; the next
        attempt's number shows it was made.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            now = self._clock()
            job = await rows.claim_due(connection, now)
            if job is None:
                return False
            policy = await rows.get_policy(connection)
            if job.attempts >= policy.max_attempts:
                # The last attempt was counted but its result never recorded.
                unrecorded = AttemptResult(False, None, "result_not_recorded", None)
                await self._finish(connection, job, job.attempts, unrecorded, policy)
                return True
            attempt = job.attempts + 1
            # Resolving and posting take at most twice the timeout; one more covers waiting
            # for a connection to record the result and the clocks of other processes.
            lease = 3 * self._timeout + backoff_delay(attempt, policy, self._rand)
            await rows.lease_job(
                connection, job.id, attempts=attempt, until=now + timedelta(seconds=lease)
            )
            if job.withdrawn:  # 撤回: the receiver must not learn of it after the fact
                withdrawn = AttemptResult(False, None, "delivery_withdrawn", None)
                await self._finish(connection, job, attempt, withdrawn, policy)
                return True
        result = await self._attempt(job)
        async with (
            self._pool.acquire(timeout=self._timeout) as connection,
            connection.transaction(),
        ):
            await self._finish(connection, job, attempt, result, policy)
        return True

    async def _finish(
        self,
        connection: DbConnection,
        job: rows.ClaimedJob,
        attempt: int,
        result: AttemptResult,
        policy: rows.Policy,
    ) -> None:
        """The job's new state and the attempt's audit events, in the caller's transaction."""
        finished = self._clock()
        next_at: datetime | None = None
        if result.ok:
            state = WebhookJobState.DELIVERED
        elif job.withdrawn or attempt >= policy.max_attempts:
            state = WebhookJobState.DEAD
        else:
            state = WebhookJobState.PENDING
            next_at = finished + timedelta(seconds=backoff_delay(attempt, policy, self._rand))
        recorded = await rows.finish_job(
            connection,
            job.id,
            state=state,
            attempts=attempt,
            now=finished,
            next_attempt_at=next_at,
            status=result.status,
            error=result.error,
        )
        outcome = OUTCOMES[state]
        if not recorded:
            log.warning("webhook job %s moved on during its attempt %d", job.id, attempt)
            outcome, next_at = "superseded", None
        changes = [
            events.webhook_attempted(
                finished,
                department=job.department,
                document=job.document,
                webhook=job.webhook,
                job=job.id,
                delivery=job.delivery,
                attempt=attempt,
                status=result.status,
                error=result.error,
                address=result.address,
                outcome=outcome,
                next_attempt_at=next_at,
            )
        ]
        if state == WebhookJobState.DEAD and recorded:
            changes.append(
                events.webhook_dead_lettered(
                    finished,
                    department=job.department,
                    document=job.document,
                    webhook=job.webhook,
                    job=job.id,
                    delivery=job.delivery,
                    attempts=attempt,
                    error=result.error,
                )
            )
        await record_events(connection, changes)

    async def _attempt(self, job: rows.ClaimedJob) -> AttemptResult:
        try:
            target = parse_target(job.url)
        except InvalidWebhookUrl as exc:
            return AttemptResult(False, None, f"url_invalid: {exc.detail}", None)
        if not job.allowed:
            return AttemptResult(False, None, "target_not_allowed", None)
        try:
            secret = self._master_key.unwrap(job.secret_wrapped, _secret_context(job.webhook))
        except MasterKeyError:
            return AttemptResult(False, None, "secret_unreadable", None)
        body = json.dumps(job.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            ID_HEADER: str(job.id),
            EVENT_HEADER: "delivery.created",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: "sha256=" + signature(secret, timestamp, body),
            "User-Agent": "sealhub-webhooks/1",
        }
        return await post_once(
            target,
            body,
            headers,
            resolver=self._resolver,
            allow_private=job.allow_private,
            ssl_context=self._ssl_context,
            total_seconds=self._timeout,
        )

    async def _lane_step(self) -> float:
        """One job, or the seconds until the next is due (at most the poll interval); a
        NOTIFY, even one that arrives meanwhile, cuts the wait short."""
        if await self.run_once():
            return 0.0
        async with self._pool.acquire() as connection:
            due = await rows.next_due(connection)
        if due is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(0.0, (due - self._clock()).total_seconds()))


def notify_listener(dsn: str, worker: WebhookWorker) -> Listener:
    """NOTIFY from the enqueue trigger (or a replay) wakes the lanes."""
    return Listener(
        dsn,
        {rows.NOTIFY_CHANNEL: lambda *_args: worker.wake()},
        name="webhook-listener",
        on_connect=worker.wake,
        logger=log,
    )


WEBHOOK_WORKER: web.AppKey[WebhookWorker] = web.AppKey("webhook_worker", WebhookWorker)


def install_webhooks(app: web.Application) -> None:
    """The worker's lanes and its listener for the app's lifetime."""
    runtime = app[RUNTIME]
    worker = WebhookWorker(
        runtime.pool,
        runtime.master_key,
        ssl_context=client_ssl_context(runtime.settings.webhook_ca_file),
        clock=clock_of(app),
        timeout=runtime.settings.webhook_timeout_seconds,
    )
    app[WEBHOOK_WORKER] = worker
    run_with_app(app, *worker.lanes, notify_listener(runtime.database_url, worker))
