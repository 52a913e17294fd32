"""Webhooks end to end: the real gateway pushes new deliveries to a receiver over real TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sealhub_sdk import verify_webhook_signature

from storage.db import connect
from tests.conftest import Gateway, Session, login_as
from tests.exchange.conftest import meta_for, send
from tests.webhooks.conftest import Receiver


@pytest.fixture(scope="module")
def admin(admins: tuple[Session, Session]) -> Session:
    return admins[0]


@pytest.fixture(scope="module")
def fast_retries(admin: Session) -> None:
    """Three attempts, 50–200 ms apart, so a dead letter happens within a second."""
    answer = admin.request(
        "PUT",
        "/v1/webhooks/policy",
        json={"max_attempts": 3, "base_delay_seconds": 0.05, "max_delay_seconds": 0.2},
    )
    assert answer.status_code == 200, answer.text


def allow(admin: Session, host: str, port: int, *, allow_private: bool = True) -> dict[str, Any]:
    answer = admin.post(
        "/v1/webhooks/allowlist",
        json={"host": host, "port": port, "allow_private": allow_private, "note": "test"},
    )
    assert answer.status_code == 201, answer.text
    entry: dict[str, Any] = answer.json()
    return entry


def register(session: Session, department: str, url: str) -> dict[str, Any]:
    answer = session.post(f"/v1/departments/{department}/webhooks", json={"url": url})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def audit_rows(gateway: Gateway, event_type: str) -> list[dict[str, Any]]:
    """Audit events of *event_type* (outbox or sequenced log), details decoded."""

    async def read() -> list[dict[str, Any]]:
        connection = await connect(gateway.database_url)
        try:
            pending = await connection.fetch(
                "SELECT id, details FROM audit_outbox WHERE type = $1", event_type
            )
            logged = await connection.fetch(
                "SELECT outbox_id AS id, convert_from(details, 'UTF8')::jsonb AS details"
                " FROM audit_log WHERE type = $1",
                event_type,
            )
        finally:
            await connection.close()
        return [dict(r["details"]) for r in sorted([*pending, *logged], key=lambda r: r["id"])]

    return asyncio.run(read())


def dead_letters(session: Session, department: str, count: int = 1) -> list[dict[str, Any]]:
    """The department's dead letters once there are *count* of them (or after 30 s)."""
    dead: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(dead) < count and time.monotonic() < deadline:
        dead = session.get(f"/v1/departments/{department}/webhooks/dead").json()["items"]
        time.sleep(0.1)
    return dead


def verify(received: Any, secret: str) -> dict[str, Any]:
    verify_webhook_signature(
        secret=secret,
        timestamp=received.headers["sealhub-timestamp"],
        body=received.body,
        signature=received.headers["sealhub-signature"],
    )
    body: dict[str, Any] = received.json()
    assert received.headers["sealhub-webhook-id"] == body["id"]
    return body


def test_each_new_delivery_reaches_the_receiver_once_signed(
    gateway: Gateway,
    admin: Session,
    seal_keeper: Session,
    sample_pdf: bytes,
    receiver_factory: Callable[[], Receiver],
) -> None:
    receiver = receiver_factory()
    allow(admin, "127.0.0.1", receiver.port)
    with login_as(gateway, "yl-jyj", ["dept_admin"]) as dept_admin:
        created = register(dept_admin, "yl-jyj", receiver.url())
        secret = created["secret"]
        assert secret.startswith("whsec_")
        listed = dept_admin.get("/v1/departments/yl-jyj/webhooks").json()["items"]
        assert [w["id"] for w in listed] == [created["id"]]
        assert "secret" not in listed[0]

    sent = [
        send(seal_keeper, meta_for(["yl-jyj", "yl-kjj"], f"玉政办发〔2026〕3{n}号"), sample_pdf)
        for n in range(2)
    ]
    assert all(s.status_code == 201 for s in sent)
    documents = {s.json()["id"] for s in sent}
    received = receiver.wait_for(2)
    time.sleep(1.0)  # anything extra (a duplicate, the yl-kjj delivery) would arrive now
    assert len(receiver.requests) == 2

    bodies = [verify(r, secret) for r in received]
    assert {b["delivery"]["document"]["id"] for b in bodies} == documents
    assert len({b["id"] for b in bodies}) == 2
    assert all(b["department"] == "yl-jyj" and b["type"] == "delivery.created" for b in bodies)
    with login_as(gateway, "yl-jyj", ["clerk"]) as clerk:
        inbox = {i["id"]: i for i in clerk.get("/v1/inbox?limit=500").json()["items"]}
    for body in bodies:
        assert body["delivery"]["id"] in inbox
        assert (
            inbox[body["delivery"]["id"]]["document"]["title"]
            == (body["delivery"]["document"]["title"])
        )
    # A forged or altered body fails the SDK's check.
    with pytest.raises(Exception, match="does not match"):
        verify_webhook_signature(
            secret=secret,
            timestamp=received[0].headers["sealhub-timestamp"],
            body=received[0].body + b" ",
            signature=received[0].headers["sealhub-signature"],
        )
    attempts = [
        d for d in audit_rows(gateway, "webhook.attempted") if d["webhook"] == created["id"]
    ]
    assert [d["outcome"] for d in attempts] == ["delivered", "delivered"]
    assert all(d["status"] == 204 and d["address"] == "127.0.0.1" for d in attempts)
    assert any(d["webhook"] == created["id"] for d in audit_rows(gateway, "webhook.created"))


def test_failing_receiver_is_retried_then_dead_lettered_and_replayed(
    gateway: Gateway,
    admin: Session,
    seal_keeper: Session,
    sample_pdf: bytes,
    receiver_factory: Callable[[], Receiver],
    fast_retries: None,
) -> None:
    receiver = receiver_factory()
    receiver.status = 503
    allow(admin, "127.0.0.1", receiver.port)
    with login_as(gateway, "yl-kjj", ["dept_admin"]) as dept_admin:
        created = register(dept_admin, "yl-kjj", receiver.url("127.0.0.1", "/inbox"))
        sent = send(seal_keeper, meta_for(["yl-kjj"], "玉政办发〔2026〕40号"), sample_pdf)
        assert sent.status_code == 201
        tries = receiver.wait_for(3)
        dead = dead_letters(dept_admin, "yl-kjj")
        time.sleep(0.5)
        assert len(receiver.requests) == 3  # max_attempts, then no more
        ids = {r.headers["sealhub-webhook-id"] for r in tries}
        assert len(ids) == 1  # the same id on every retry: the receiver can deduplicate
        [letter] = dead
        assert letter["id"] in ids and letter["webhook"] == created["id"]
        assert (letter["attempts"], letter["last_status"], letter["last_error"]) == (
            3,
            503,
            "http_503",
        )
        # Outsiders cannot see or replay it.
        with login_as(gateway, "yl-jyj", ["dept_admin"]) as other:
            assert other.get("/v1/departments/yl-kjj/webhooks/dead").status_code == 404
            replay_path = f"/v1/departments/yl-kjj/webhooks/dead/{letter['id']}/replay"
            assert other.post(replay_path).status_code == 404

        receiver.status = 200
        replayed = dept_admin.post(f"/v1/departments/yl-kjj/webhooks/dead/{letter['id']}/replay")
        assert replayed.status_code == 200, replayed.text
        final = receiver.wait_for(4)
        assert final[3].headers["sealhub-webhook-id"] == letter["id"]
        verify(final[3], created["secret"])
        time.sleep(0.3)
        assert dept_admin.get("/v1/departments/yl-kjj/webhooks/dead").json()["items"] == []
        assert (
            dept_admin.post(
                f"/v1/departments/yl-kjj/webhooks/dead/{letter['id']}/replay"
            ).status_code
            == 404
        )

    outcomes = [
        (d["attempt"], d["outcome"], d["status"])
        for d in audit_rows(gateway, "webhook.attempted")
        if d["webhook"] == created["id"]
    ]
    assert outcomes == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "dead", 503),
        (1, "delivered", 200),
    ]
    assert [d["job"] for d in audit_rows(gateway, "webhook.dead_lettered")].count(letter["id"]) == 1
    assert [d["job"] for d in audit_rows(gateway, "webhook.replayed")] == [letter["id"]]


def test_unsafe_targets_are_refused(
    gateway: Gateway,
    admin: Session,
    seal_keeper: Session,
    sample_pdf: bytes,
    receiver_factory: Callable[[], Receiver],
    fast_retries: None,
) -> None:
    redirecting = receiver_factory()
    landing = receiver_factory()
    redirect_entry = allow(admin, "127.0.0.1", redirecting.port)
    allow(admin, "127.0.0.1", landing.port)
    allow(admin, "localhost", landing.port, allow_private=False)
    with login_as(gateway, "yl-gaj", ["dept_admin"]) as dept_admin:
        path = "/v1/departments/yl-gaj/webhooks"
        cases = {
            f"https://127.0.0.2:{landing.port}/x": "webhook_target_not_allowed",
            f"https://127.0.0.1:{landing.port + 1}/x": "webhook_target_not_allowed",
            f"http://127.0.0.1:{landing.port}/x": "webhook_url_invalid",
            f"https://u:p@127.0.0.1:{landing.port}/x": "webhook_url_invalid",
            # Allow-listed by name, but the name answers with loopback: no pointing inward.
            f"https://localhost:{landing.port}/x": "webhook_address_refused",
        }
        for url, code in cases.items():
            answer = dept_admin.post(path, json={"url": url})
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["code"] == code, url

        with login_as(gateway, "yl-gaj", ["clerk"]) as clerk:
            assert clerk.post(path, json={"url": landing.url()}).status_code == 403
        with login_as(gateway, "yl-jyj", ["dept_admin"]) as other:
            assert other.post(path, json={"url": landing.url()}).status_code == 404
        assert dept_admin.post("/v1/webhooks/allowlist", json={"host": "x.test"}).status_code == 403

        # A receiver that redirects: the redirect is never followed.
        redirecting.status = 308
        redirecting.location = landing.url()
        created = register(dept_admin, "yl-gaj", redirecting.url())
        assert send(
            seal_keeper, meta_for(["yl-gaj"], "玉政办发〔2026〕50号"), sample_pdf
        ).is_success
        redirecting.wait_for(3)
        dead = dead_letters(dept_admin, "yl-gaj")
        assert [(d["webhook"], d["last_status"], d["last_error"]) for d in dead] == [
            (created["id"], 308, "redirect_refused")
        ]
        assert landing.requests == []

        # Removing the allow-list entry stops deliveries to the target at once.
        redirecting.status = 204
        assert admin.delete(f"/v1/webhooks/allowlist/{redirect_entry['id']}").status_code == 204
        assert send(
            seal_keeper, meta_for(["yl-gaj"], "玉政办发〔2026〕51号"), sample_pdf
        ).is_success
        dead = dead_letters(dept_admin, "yl-gaj", count=2)
        assert [d["last_error"] for d in dead] == ["target_not_allowed", "redirect_refused"]
        assert len(redirecting.requests) == 3

        # Deleting a webhook stops it.
        assert dept_admin.delete(f"{path}/{created['id']}").status_code == 204
        assert dept_admin.get(path).json()["items"] == []


def test_registrations_are_bounded_and_dead_letter_queries_checked(
    gateway: Gateway,
    admin: Session,
    receiver_factory: Callable[[], Receiver],
) -> None:
    """Each delivery enqueues a job per webhook inside the sender's transaction: a
    department cannot make other departments' sends slow by registering thousands."""
    receiver = receiver_factory()
    allow(admin, "127.0.0.1", receiver.port)
    with login_as(gateway, "yl-sjj", ["dept_admin"]) as dept_admin:
        path = "/v1/departments/yl-sjj/webhooks"
        register(dept_admin, "yl-sjj", receiver.url("127.0.0.1", "/hook/0"))
        again = dept_admin.post(path, json={"url": receiver.url("127.0.0.1", "/hook/0")})
        assert (again.status_code, again.json()["code"]) == (409, "already_exists")
        for number in range(1, 10):
            register(dept_admin, "yl-sjj", receiver.url("127.0.0.1", f"/hook/{number}"))
        eleventh = dept_admin.post(path, json={"url": receiver.url("127.0.0.1", "/hook/10")})
        assert (eleventh.status_code, eleventh.json()["code"]) == (409, "conflict")
        assert len(dept_admin.get(path).json()["items"]) == 10

        for query, code in [
            ("before=0001-01-01T00:00:00%2B14:00", "invalid_request"),
            ("before=9999-12-31T23:59:59-14:00", "invalid_request"),
            ("before=2026-01-01T00:00:00", "invalid_request"),
            ("cursor=e30", "invalid_cursor"),
            ("cursor=not-a-cursor", "invalid_cursor"),
        ]:
            answer = dept_admin.get(f"{path}/dead?{query}")
            assert (answer.status_code, answer.json()["code"]) == (400, code), query


def test_a_withdrawn_delivery_is_never_pushed_again(
    gateway: Gateway,
    admin: Session,
    seal_keeper: Session,
    sample_pdf: bytes,
    receiver_factory: Callable[[], Receiver],
    fast_retries: None,
) -> None:
    """撤回 while a receiver is failing: the retries stop and the letter cannot be replayed."""
    receiver = receiver_factory()
    receiver.status = 503
    allow(admin, "127.0.0.1", receiver.port)
    slow = {"max_attempts": 5, "base_delay_seconds": 1.5, "max_delay_seconds": 1.5}
    assert admin.request("PUT", "/v1/webhooks/policy", json=slow).status_code == 200
    try:
        with login_as(gateway, "yl-swj", ["dept_admin"]) as dept_admin:
            register(dept_admin, "yl-swj", receiver.url("127.0.0.1", "/in"))
            sent = send(seal_keeper, meta_for(["yl-swj"], "玉政办发〔2026〕60号"), sample_pdf)
            assert sent.status_code == 201, sent.text
            receiver.wait_for(1)
            withdrawn = seal_keeper.post(
                f"/v1/documents/{sent.json()['id']}/withdraw", json={"reason": "发错了"}
            )
            assert withdrawn.status_code == 200, withdrawn.text
            dead = dead_letters(dept_admin, "yl-swj")
            [letter] = dead
            assert letter["last_error"] == "delivery_withdrawn"
            assert len(receiver.requests) == 1
            replay = f"/v1/departments/yl-swj/webhooks/dead/{letter['id']}/replay"
            assert dept_admin.post(replay).status_code == 404
            time.sleep(0.5)
            assert len(receiver.requests) == 1
    finally:
        fast = {"max_attempts": 3, "base_delay_seconds": 0.05, "max_delay_seconds": 0.2}
        assert admin.request("PUT", "/v1/webhooks/policy", json=fast).status_code == 200


def _fail_results_of(gateway: Gateway, webhook: str, times: int) -> None:
    """As the owner: the next *times* results recorded for *webhook*'s jobs fail in the
    database (the attempts themselves are made), as a crash between the POST and its commit
    would lose them. A sequence counts, since a failed transaction keeps no row."""
    suffix = webhook.replace("-", "")

    async def install() -> None:
        connection = await connect(gateway.database_url)
        try:
            await connection.execute(
                f"""
                CREATE SEQUENCE lost_results_{suffix};
                GRANT USAGE ON SEQUENCE lost_results_{suffix} TO PUBLIC;
                CREATE FUNCTION lose_result_{suffix}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.webhook = '{webhook}'::uuid
                       AND NEW.state IS DISTINCT FROM OLD.state
                       AND nextval('lost_results_{suffix}') <= {times} THEN
                        RAISE EXCEPTION 'result lost (test)';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER lose_result_{suffix} BEFORE UPDATE ON webhook_jobs
                    FOR EACH ROW EXECUTE FUNCTION lose_result_{suffix}();
                """
            )
        finally:
            await connection.close()

    asyncio.run(install())


def test_an_attempt_whose_result_is_lost_counts_and_is_retried_after_its_lease(
    gateway: Gateway,
    admin: Session,
    seal_keeper: Session,
    sample_pdf: bytes,
    receiver_factory: Callable[[], Receiver],
    fast_retries: None,
) -> None:
    """The receiver answers 204 every time, but the first two results never land: each lost
    attempt still counts, is tried again only after its lease (not in a tight loop), and the
    third attempt delivers. With every result lost, the job ends as a dead letter."""
    receiver = receiver_factory()
    allow(admin, "127.0.0.1", receiver.port)
    with login_as(gateway, "yl-mzj", ["dept_admin"]) as dept_admin:
        created = register(dept_admin, "yl-mzj", receiver.url("127.0.0.1", "/lost"))
        _fail_results_of(gateway, created["id"], times=2)
        sent = send(seal_keeper, meta_for(["yl-mzj"], "玉政办发〔2026〕45号"), sample_pdf)
        assert sent.status_code == 201, sent.text
        tries = receiver.wait_for(3)
        time.sleep(0.5)
        assert len(receiver.requests) == 3
        assert len({r.headers["sealhub-webhook-id"] for r in tries}) == 1
        for received in tries:
            verify(received, created["secret"])
    outcomes = [
        (d["attempt"], d["outcome"])
        for d in audit_rows(gateway, "webhook.attempted")
        if d["webhook"] == created["id"]
    ]
    # Only the third result was recorded, and it knows two attempts came before it.
    assert outcomes == [(3, "delivered")]

    with login_as(gateway, "yl-sfj", ["dept_admin"]) as dept_admin:
        lost = register(dept_admin, "yl-sfj", receiver.url("127.0.0.1", "/lost-all"))
        _fail_results_of(gateway, lost["id"], times=3)  # max_attempts is 3
        sent = send(seal_keeper, meta_for(["yl-sfj"], "玉政办发〔2026〕46号"), sample_pdf)
        assert sent.status_code == 201, sent.text
        [letter] = dead_letters(dept_admin, "yl-sfj")
        assert (letter["attempts"], letter["last_error"]) == (3, "result_not_recorded")
        assert [r.path for r in receiver.requests].count("/lost-all") == 3
