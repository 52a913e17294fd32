"""Revoking a key ends that key's waiting long-polls and event streams at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.conftest import Gateway, login_as


def test_revocation_ends_a_waiting_long_poll_and_stream(gateway: Gateway) -> None:
    with (
        login_as(gateway, "yl-lyj", ["clerk"]) as clerk,
        login_as(gateway, "yl-lyj", ["dept_admin"]) as admin,
    ):
        cursor = clerk.get("/v1/inbox").json()["next_cursor"]
        result: dict[str, Any] = {}

        def poll() -> None:
            started = time.monotonic()
            result["response"] = clerk.get(f"/v1/inbox?wait=50&cursor={cursor}")
            result["waited"] = time.monotonic() - started

        stream_lines: list[str] = []

        def stream() -> None:
            headers = clerk.headers("GET", "/v1/inbox/events")
            with clerk.client.stream("GET", "/v1/inbox/events", headers=headers) as response:
                for line in response.iter_lines():
                    stream_lines.append(line)

        poller = threading.Thread(target=poll)
        streamer = threading.Thread(target=stream)
        poller.start()
        streamer.start()
        time.sleep(1.5)
        revoked = admin.delete(f"/v1/officials/{clerk.official_id}/keys/{clerk.kid}")
        assert revoked.status_code in (200, 204), revoked.text
        poller.join(20)
        streamer.join(20)
        assert not poller.is_alive() and not streamer.is_alive()
        assert result["response"].status_code == 401
        assert result["response"].json()["code"] == "invalid_token"
        assert result["waited"] < 15
        assert "event: end" in stream_lines
