"""Issue 16 item 7: an official probing another department's documents, deliveries and audit
entries gets 404 every time, and every probe is counted as ``access.denied`` (aggregated per
official and minute), so the burst alert fires. Over HTTPS against a real gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.auth.conftest import audit_events, sql
from tests.conftest import Gateway, Session, login_as, start_gateway
from tests.exchange.conftest import SENDER, meta_for, send
from tests.supervision.test_http import alerts, eventually

BURST = 8


@pytest.fixture(scope="module")
def gateway(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = start_gateway(
        module_db_url,
        tmp_path_factory.mktemp("gw"),
        env={"SEALHUB_SUPERVISION_INTERVAL": "0.5", "SEALHUB_DENIED_ACCESS_BURST": str(BURST)},
    )
    try:
        yield running
    finally:
        running.stop()


def test_probing_another_departments_resources_is_audited_and_alerts(
    gateway: Gateway, seal_keeper: Session, sample_pdf: bytes
) -> None:
    sent = send(seal_keeper, meta_for(["yl-jyj"], "玉政办发〔2026〕301号"), sample_pdf)
    assert sent.status_code == 201, sent.text
    document = sent.json()["id"]
    delivery = seal_keeper.get(f"/v1/documents/{document}").json()["deliveries"][0]["id"]
    entries = seal_keeper.get("/v1/audit/entries?limit=500").json()["items"]
    own_entry = next(e["index"] for e in entries if e["department"] == SENDER)
    with (
        login_as(gateway, "yl-gaj", ["clerk", "dept_admin"], name="公安局探测者") as prober,
        login_as(gateway, "yl", ["inspector"], name="监察员") as inspector,
    ):
        probes = [
            ("GET", f"/v1/documents/{document}"),
            ("GET", f"/v1/documents/{document}/content"),
            ("POST", f"/v1/documents/{document}/withdraw"),
            ("POST", f"/v1/documents/{document}/resend"),
            ("GET", f"/v1/deliveries/{delivery}/receipt"),
            ("POST", f"/v1/deliveries/{delivery}/receipt"),
            ("GET", f"/v1/audit/entries/{own_entry}"),
            ("GET", f"/v1/documents/{uuid.uuid4()}"),  # a guessed id: probing too
            ("GET", f"/v1/documents/{document}"),
        ]
        for method, path in probes:
            kwargs = (
                {"json": {"recipients": ["yl-gaj"], "signature": "x"}} if method == "POST" else {}
            )
            refused = prober.request(method, path, **kwargs)
            assert refused.status_code == 404, (path, refused.text)
            assert refused.json()["code"] == "not_found"

        # The log holds the aggregate, not one entry per probe.
        denied = [
            e
            for e in audit_events(gateway, "access.denied")
            if e.get("source") and e.get("aggregated") and e.get("reason")
        ]
        mine = [e for e in denied if e.get("path", "").startswith(("/v1/documents", "/v1/deliv"))]
        assert 1 <= len(mine) <= 2, mine

        # Counted, each one: one row per minute (two if the probes crossed a minute).
        counted = sql(
            gateway,
            "SELECT sum(count) AS n, count(*) AS rows FROM denied_access_counts"
            " WHERE official = $1",
            prober.official_id,
        )[0]
        assert counted["n"] == len(probes)
        assert counted["rows"] <= 2

        def burst() -> dict[str, object] | None:
            for alert in alerts(inspector, "?rule=denied_access_burst&limit=500"):
                if alert["subject"] == f"official:{prober.official_id}":
                    return alert
            return None

        alert = eventually(burst, "the denied-access burst alert")
        assert alert["department"] == "yl-gaj"
