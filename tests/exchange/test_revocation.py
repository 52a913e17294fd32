"""Issue 16, item 4: a revocation reaches every gateway process at once, stops a document
being sealed at that moment, and a compromised key may be revoked from an earlier date."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest
from cryptography import x509

from storage.db import connect
from tests.conftest import Gateway, Session, login_as, start_gateway
from tests.exchange.conftest import issue_seal, meta_for, send

PROPAGATION_LIMIT_S = 2.0


def verify(session: Session, pdf: bytes) -> httpx.Response:
    return session.post("/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})


def revoke(admins: tuple[Session, Session], seal_id: object, **body: object) -> httpx.Response:
    """Two admins: one asks, the other approves (the approval's response is returned)."""
    first, second = admins
    asked = first.post(
        f"/v1/seals/{seal_id}/revoke",
        json={"reason": "印章密钥疑似泄露", "reason_code": "key_compromise", **body},
    )
    assert asked.status_code == 201, asked.text
    return second.post(f"/v1/seal-requests/{asked.json()['id']}/approve")


def serial_of(seal: dict[str, object]) -> int:
    pem = str(seal["certificate_pem"]).encode()
    return x509.load_pem_x509_certificate(pem).serial_number


def crl_entry(client: httpx.Client, serial: int) -> x509.RevokedCertificate | None:
    response = client.get("/v1/pki/crl/seal-ca")
    assert response.status_code == 200, response.text
    return x509.load_der_x509_crl(response.content).get_revoked_certificate_by_serial_number(serial)


def sealed_copy(keeper: Session, doc_number: str, pdf: bytes) -> bytes:
    sent = send(keeper, meta_for(["yl-jtj"], doc_number), pdf)
    assert sent.status_code == 201, sent.text
    return keeper.get(f"/v1/documents/{sent.json()['id']}/content").content


@pytest.fixture(scope="module")
def second_gateway(gateway: Gateway) -> Iterator[Gateway]:
    """Another ``sealhub serve`` on the same database and data volume (as in docker/)."""
    running = start_gateway(gateway.database_url, gateway.data_dir, demo=False)
    try:
        yield running
    finally:
        running.stop()


def test_a_revocation_on_one_process_is_seen_by_the_other_within_two_seconds(
    gateway: Gateway,
    second_gateway: Gateway,
    admins: tuple[Session, Session],
    sample_pdf: bytes,
) -> None:
    seal = issue_seal(admins, "yl-sjj")
    serial = serial_of(seal)
    with (
        login_as(gateway, "yl-sjj", ["seal_keeper"]) as keeper,
        login_as(second_gateway, "yl-jtj", ["clerk"]) as reader,
        second_gateway.client() as anonymous,
    ):
        sealed = sealed_copy(keeper, "玉审发〔2026〕1号", sample_pdf)
        # The other process has served and verified with the CRL from before the revocation.
        assert crl_entry(anonymous, serial) is None
        before = verify(reader, sealed).json()
        assert before["valid"] is True and before["seals"][0]["revoked"] is False

        approved = revoke(admins, seal["id"])  # on the first process
        assert approved.status_code == 200, approved.text
        revoked_at = time.monotonic()

        in_crl = in_verify = None
        while time.monotonic() - revoked_at < PROPAGATION_LIMIT_S + 3:
            if in_crl is None and crl_entry(anonymous, serial) is not None:
                in_crl = time.monotonic() - revoked_at
            if in_verify is None and verify(reader, sealed).json()["seals"][0]["revoked"]:
                in_verify = time.monotonic() - revoked_at
            if in_crl is not None and in_verify is not None:
                break
            time.sleep(0.05)
        assert in_crl is not None and in_crl <= PROPAGATION_LIMIT_S, in_crl
        assert in_verify is not None and in_verify <= PROPAGATION_LIMIT_S, in_verify
        print(f"revocation seen by the other process: CRL {in_crl:.3f} s, verify {in_verify:.3f} s")


async def _lock_deliveries(
    admin_url: str, locked: threading.Event, release: threading.Event
) -> None:
    """Hold the deliveries table against inserts until *release* (the dispatch waits there)."""
    connection = await connect(admin_url, role=None)
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE deliveries IN SHARE MODE")
            locked.set()
            await asyncio.to_thread(release.wait)
    finally:
        await connection.close()


async def _dispatch_is_waiting(admin_url: str) -> bool:
    connection = await asyncpg.connect(admin_url)
    try:
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query ILIKE '%deliveries%'"
        )
    finally:
        await connection.close()
    return bool(waiting)


def test_a_revocation_committed_while_a_document_is_sealed_stops_it(
    gateway: Gateway, admins: tuple[Session, Session], sample_pdf: bytes
) -> None:
    seal = issue_seal(admins, "yl-wglj")
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=lambda: asyncio.run(_lock_deliveries(gateway.database_url, locked, release))
    )
    holder.start()
    result: dict[str, httpx.Response] = {}
    try:
        assert locked.wait(10)
        with login_as(gateway, "yl-wglj", ["seal_keeper"]) as keeper:
            # The seal is active when sealing starts; the dispatch then waits on the lock.
            sender = threading.Thread(
                target=lambda: result.setdefault(
                    "sent", send(keeper, meta_for(["yl-jtj"], "玉文发〔2026〕7号"), sample_pdf)
                )
            )
            sender.start()
            deadline = time.monotonic() + 30
            while not asyncio.run(_dispatch_is_waiting(gateway.database_url)):
                assert time.monotonic() < deadline, "the dispatch never reached the lock"
                assert sender.is_alive(), result
                time.sleep(0.05)
            approved = revoke(admins, seal["id"])  # commits while the document waits
            assert approved.status_code == 200, approved.text
            release.set()
            sender.join(60)
            refused = result["sent"]
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "seal_revoked"
    finally:
        release.set()
        holder.join(10)

    async def dispatched() -> int:
        connection = await asyncpg.connect(gateway.database_url)
        try:
            count: int = await connection.fetchval(
                "SELECT count(*) FROM sealhub.documents WHERE doc_number = $1", "玉文发〔2026〕7号"
            )
            # Wherever the event is now: still in the outbox, or already in the log.
            refusals: int = await connection.fetchval(
                "SELECT (SELECT count(*) FROM sealhub.audit_outbox WHERE type = $1"
                " AND details::text LIKE $2) + (SELECT count(*) FROM sealhub.audit_log"
                " WHERE type = $1 AND convert_from(details, 'UTF8') LIKE $2)",
                "seal.use_refused",
                f"%{seal['id']}%",
            )
        finally:
            await connection.close()
        assert refusals >= 1
        return count

    assert asyncio.run(dispatched()) == 0


def test_a_compromised_key_revoked_from_an_earlier_date_voids_later_seals(
    gateway: Gateway, admins: tuple[Session, Session], sample_pdf: bytes
) -> None:
    seal = issue_seal(admins, "yl-lyj")
    with login_as(gateway, "yl-lyj", ["seal_keeper"]) as keeper:
        early = sealed_copy(keeper, "玉林发〔2026〕1号", sample_pdf)
        time.sleep(1.2)
        late = sealed_copy(keeper, "玉林发〔2026〕2号", sample_pdf)
        early_at = datetime.fromisoformat(verify(keeper, early).json()["seals"][0]["timestamp"])
        late_at = datetime.fromisoformat(verify(keeper, late).json()["seals"][0]["timestamp"])
        assert late_at - early_at > timedelta(seconds=1)
        # A whole second (CRLs carry no fractions) after the first seal, before the second.
        compromised = (early_at + timedelta(seconds=1)).replace(microsecond=0)
        assert early_at < compromised < late_at
        time.sleep(1.2)  # the revocation date (whole seconds in the CRL) after both seals

        first = admins[0]
        wrong_reason = first.post(
            f"/v1/seals/{seal['id']}/revoke",
            json={
                "reason": "换章",
                "reason_code": "superseded",
                "invalid_since": "2026-01-01T00:00:00Z",
            },
        )
        assert wrong_reason.status_code == 400, wrong_reason.text
        future = first.post(
            f"/v1/seals/{seal['id']}/revoke",
            json={
                "reason": "密钥泄露",
                "reason_code": "key_compromise",
                "invalid_since": "2999-01-01T00:00:00Z",
            },
        )
        assert future.status_code == 400, future.text

        approved = revoke(admins, seal["id"], invalid_since=compromised.isoformat())
        assert approved.status_code == 200, approved.text
        assert datetime.fromisoformat(approved.json()["invalid_since"]) == compromised

        entry = crl_entry(keeper.client, serial_of(seal))
        assert entry is not None
        invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
        assert abs(invalidity.invalidity_date_utc - compromised) < timedelta(seconds=1)
        assert entry.revocation_date_utc > late_at

        before = verify(keeper, early).json()
        assert before["valid"] is True, before
        assert before["seals"][0]["revoked"] is True
        after = verify(keeper, late).json()
        assert after["valid"] is False, after
        assert after["seals"][0]["revoked_before_timestamp"] is True
