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
