"""Issue 16: an inbox event stream ends when the access token that opened it expires, so a
stolen (or simply old) token cannot keep a department's deliveries flowing for ever."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Gateway, login_as, start_gateway

TOKEN_SECONDS = 12


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        env={"SEALHUB_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS)},
    )
    try:
        yield running
    finally:
        running.stop()


def test_the_event_stream_ends_when_its_access_token_expires(gateway: Gateway) -> None:
    with login_as(gateway, "yl-lyj", ["clerk"]) as clerk:
        logged_in_at = time.monotonic()
        lines: list[str] = []
        ended_at: list[float] = []

        def stream() -> None:
            headers = clerk.headers("GET", "/v1/inbox/events")
            with clerk.client.stream("GET", "/v1/inbox/events", headers=headers) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    lines.append(line)
            ended_at.append(time.monotonic())

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        streamer.join(TOKEN_SECONDS + 20)
        assert not streamer.is_alive(), f"the stream outlived its token: {lines}"
        assert "event: end" in lines, lines
        reason = json.loads(lines[lines.index("event: end") + 1].removeprefix("data: "))["reason"]
        assert "expired" in reason
        # Not before the token's end (less a second for the whole-second exp claim).
        assert ended_at[0] - logged_in_at >= TOKEN_SECONDS - 1.5
        # And the token itself is refused now: the client must refresh.
        assert clerk.get("/v1/me").status_code == 401
        assert clerk.refresh().status_code == 200
        assert clerk.get("/v1/me").status_code == 200


def test_a_stopping_gateway_ends_open_event_streams_with_an_end_event(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGTERM: each open stream is told to reconnect (``event: end``) rather than being cut
    off, or holding the shutdown until aiohttp cancels it."""
    stopping = start_gateway(module_db_url, tmp_path_factory.mktemp("stopping"))
    try:
        with login_as(stopping, "yl-lyj", ["clerk"]) as clerk:
            lines: list[str] = []
            opened = threading.Event()

            def stream() -> None:
                headers = clerk.headers("GET", "/v1/inbox/events")
                with clerk.client.stream("GET", "/v1/inbox/events", headers=headers) as response:
                    assert response.status_code == 200
                    opened.set()
                    for line in response.iter_lines():
                        lines.append(line)

            streamer = threading.Thread(target=stream, daemon=True)
            streamer.start()
            assert opened.wait(30)
            stopping.stop()
            streamer.join(30)
            assert not streamer.is_alive()
            assert "event: end" in lines, lines
            data = lines[lines.index("event: end") + 1].removeprefix("data: ")
            assert "restarting" in json.loads(data)["reason"]
            assert stopping.process.returncode == 0
    finally:
        stopping.stop()
