"""The webhook transport without the gateway: URL rules, address rules, DNS pinning over
real TLS, backoff. Resolvers here are controlled by the test (rebinding simulated)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sealhub_sdk import verify_webhook_signature

from gateway.webhooks.worker import (
    AddressRefused,
    InvalidWebhookUrl,
    PinnedResolver,
    Target,
    address_allowed,
    backoff_delay,
    client_ssl_context,
    normalize_host,
    parse_target,
    pin_address,
    post_once,
    signature,
)
from storage.webhooks import Policy
from tests.webhooks.conftest import RECEIVER_NAME, Receiver, ReceiverCa


class ScriptedDns:
    """Answers from a script, one list per question: a name whose answer changes."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.questions: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.questions.append((host, port))
        return self.answers.pop(0)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.gov.cn/in", "https"),
        ("ftp://hooks.example.gov.cn/in", "https"),
        ("https://user:pw@hooks.example.gov.cn/in", "credentials"),
        ("https://hooks.example.gov.cn/in#x", "fragment"),
        ("https:///in", "host"),
        ("https://hooks.example.gov.cn/a b", "spaces"),
    ],
)
def test_urls_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match=why):
        parse_target(url)


def test_url_parts() -> None:
    assert parse_target("https://Hooks.Example.gov.cn./in?a=1") == Target(
        "https://Hooks.Example.gov.cn./in?a=1", "hooks.example.gov.cn", 443
    )
    assert parse_target("https://10.1.2.3:8443/x").port == 8443


@pytest.mark.parametrize(
    ("address", "public_only", "with_private"),
    [
        ("8.8.8.8", True, True),
        ("2001:4860:4860::8888", True, True),
        ("10.20.30.40", False, True),
        ("192.168.1.1", False, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("169.254.169.254", False, False),  # cloud metadata: never
        ("fe80::1", False, False),
        ("0.0.0.0", False, False),  # noqa: S104
        ("224.0.0.1", False, False),
        ("0.0.0.1", False, False),  # "this network": never
        ("fd12:3456::1", False, True),  # unique local: a government network's own
        # IPv6 that a gateway may unwrap into an inside IPv4 address: never.
        ("64:ff9b::a9fe:a9fe", False, False),  # NAT64 of 169.254.169.254
        ("64:ff9b::a00:1", False, False),  # NAT64 of 10.0.0.1
        ("64:ff9b:1::a00:1", False, False),  # local-use NAT64
        ("2002:a9fe:a9fe::1", False, False),  # 6to4 around 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False, False),  # Teredo
        ("::a9fe:a9fe", False, False),  # IPv4-compatible (deprecated)
        ("fec0::1", False, False),  # site-local (deprecated)
        ("fe80::1%eth0", False, False),  # scoped
    ],
)
def test_address_rules(address: str, public_only: bool, with_private: bool) -> None:
    assert address_allowed(address, allow_private=False) is public_only
    assert address_allowed(address, allow_private=True) is with_private


def test_every_answer_is_checked_before_pinning() -> None:
    target = parse_target("https://hooks.example.gov.cn/in")
    mixed = ScriptedDns(["8.8.8.8", "127.0.0.1"])
    with pytest.raises(AddressRefused):
        asyncio.run(pin_address(target, mixed, allow_private=False))
    public = ScriptedDns(["8.8.4.4", "8.8.8.8"])
    assert asyncio.run(pin_address(target, public, allow_private=False)) == "8.8.4.4"
    # An IP literal is its own answer: DNS is never asked.
    literal = ScriptedDns()
    with pytest.raises(AddressRefused):
        asyncio.run(pin_address(parse_target("https://127.0.0.1/x"), literal, allow_private=False))
    assert literal.questions == []


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("Hooks.Example.gov.cn.", "hooks.example.gov.cn"),
        ("10.1.2.3", "10.1.2.3"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::1", None),  # begins with ':'; allow-list 127.0.0.1 instead
        ("fe80::1%eth0", None),
        ("169.254.169.254", None),
        ("64:ff9b::a9fe:a9fe", None),
        ("224.0.0.1", None),
    ],
)
def test_allow_list_hosts(host: str, normal: str | None) -> None:
    if normal is None:
        with pytest.raises(InvalidWebhookUrl):
            normalize_host(host)
    else:
        assert normalize_host(host) == normal


def test_a_name_that_never_answers_is_refused_in_time() -> None:
    """A slow name server must not hold a worker lane and its job lock."""

    async def silent(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return ["8.8.8.8"]

    target = parse_target("https://hooks.example.gov.cn/in")
    with pytest.raises(AddressRefused, match="did not resolve within"):
        asyncio.run(pin_address(target, silent, allow_private=False, resolve_seconds=0.2))


def test_pinned_resolver_answers_only_for_its_host() -> None:
    resolver = PinnedResolver("hooks.test", "127.0.0.1")
    answer = asyncio.run(resolver.resolve("hooks.test", 8443))
    assert [(a["hostname"], a["host"], a["port"]) for a in answer] == [
        ("hooks.test", "127.0.0.1", 8443)
    ]
    with pytest.raises(OSError, match="pinned"):
        asyncio.run(resolver.resolve("evil.test", 443))


def test_connection_is_pinned_to_the_first_answer_over_real_tls(
    receiver_factory: Callable[[], Receiver], test_ca: ReceiverCa
) -> None:
    """``hooks.test`` is in no DNS: reaching the receiver proves the pinned address was
    used, with SNI and certificate checks on the name; the later, rebound answers are
    refused or never asked for."""
    receiver = receiver_factory()
    context = client_ssl_context(test_ca.ca_pem)
    target = parse_target(f"https://{RECEIVER_NAME}:{receiver.port}/in")
    dns = ScriptedDns(["127.0.0.1"], ["169.254.169.254"], ["127.0.0.1", "169.254.169.254"])
    body = b'{"id":"job-1"}'
    secret = b"whsec_test"
    headers = {
        "Sealhub-Timestamp": "1700000000",
        "Sealhub-Signature": "sha256=" + signature(secret, 1_700_000_000, body),
    }

    first = asyncio.run(
        post_once(target, body, headers, resolver=dns, allow_private=True, ssl_context=context)
    )
    assert first.ok, first
    assert first.address == "127.0.0.1"
    assert dns.questions == [(RECEIVER_NAME, receiver.port)]  # resolved once
    [request] = receiver.requests
    assert request.server_name == RECEIVER_NAME
    assert request.headers["host"] == f"{RECEIVER_NAME}:{receiver.port}"
    verify_webhook_signature(
        secret=secret,
        timestamp=request.headers["sealhub-timestamp"],
        body=request.body,
        signature=request.headers["sealhub-signature"],
        now=1_700_000_001,
    )

    # The name now answers with the metadata address, then hides it second: refused.
    for _ in range(2):
        rebound = asyncio.run(
            post_once(target, body, headers, resolver=dns, allow_private=True, ssl_context=context)
        )
        assert not rebound.ok
        assert rebound.error is not None and rebound.error.startswith("address_refused")
    assert len(receiver.requests) == 1

    # Without allow_private a loopback answer is refused outright.
    refused = asyncio.run(
        post_once(
            target,
            body,
            headers,
            resolver=ScriptedDns(["127.0.0.1"]),
            allow_private=False,
            ssl_context=context,
        )
    )
    assert not refused.ok and len(receiver.requests) == 1


def test_tls_is_verified_and_redirects_are_not_followed(
    receiver_factory: Callable[[], Receiver], test_ca: ReceiverCa
) -> None:
    receiver = receiver_factory()
    other = receiver_factory()
    target = parse_target(receiver.url())
    untrusted = asyncio.run(
        post_once(
            target,
            b"{}",
            {},
            resolver=ScriptedDns(),
            allow_private=True,
            ssl_context=client_ssl_context(None),
        )
    )
    assert not untrusted.ok and "Certificate" in (untrusted.error or "")
    assert receiver.requests == []

    receiver.status = 307
    receiver.location = other.url()
    redirected = asyncio.run(
        post_once(
            target,
            b"{}",
            {},
            resolver=ScriptedDns(),
            allow_private=True,
            ssl_context=client_ssl_context(test_ca.ca_pem),
        )
    )
    assert (redirected.ok, redirected.status, redirected.error) == (
        False,
        307,
        "redirect_refused",
    )
    assert len(receiver.requests) == 1 and other.requests == []


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = Policy(max_attempts=8, base_delay=30.0, max_delay=600.0)
    lowest = [backoff_delay(n, policy, lambda: 0.0) for n in range(1, 8)]
    highest = [backoff_delay(n, policy, lambda: 1.0) for n in range(1, 8)]
    assert highest == [30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    assert lowest == [h / 2 for h in highest]
    assert 15.0 < backoff_delay(1, policy, lambda: 0.5) < 30.0
