"""The same exchange with documents stored in S3 (moto's server speaking the S3 protocol)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio

from tests.conftest import Gateway, login_as, start_gateway
from tests.exchange.conftest import issue_seal, meta_for, send
from tests.exchange.test_exchange_flow import inbox_item, receipt_jws
from tests.s3server import MotoServer


@pytest.fixture(scope="module")
def s3_gateway(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer
) -> Iterator[tuple[Gateway, str]]:
    bucket = "sealhub-" + uuid.uuid4().hex[:8]
    env = {
        "S3_ENDPOINT": f"http://{moto_server.endpoint}",
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_BUCKET": bucket,
    }
    running = start_gateway(module_db_url, tmp_path_factory.mktemp("gw-s3"), env=env)
    try:
        yield running, bucket
    finally:
        running.stop()


def test_send_fetch_and_sign_for_with_s3(
    s3_gateway: tuple[Gateway, str], moto_server: MotoServer, sample_pdf: bytes
) -> None:
    gateway, bucket = s3_gateway
    admins = (login_as(gateway, "yl", ["admin"]), login_as(gateway, "yl", ["admin"]))
    issue_seal(admins, "yl-bgs")
    with (
        login_as(gateway, "yl-bgs", ["seal_keeper"]) as keeper,
        login_as(gateway, "yl.rx", ["clerk"]) as clerk,
    ):
        sent = send(keeper, meta_for(["yl.rx"], "玉政办发〔2026〕77号"), sample_pdf)
        assert sent.status_code == 201, sent.text
        document = sent.json()
        content = clerk.get(f"/v1/documents/{document['id']}/content")
        assert hashlib.sha256(content.content).hexdigest() == document["sha256"]
        item = inbox_item(clerk, document["id"])
        answer = clerk.post(
            f"/v1/deliveries/{item['id']}/receipt",
            json={"signature": receipt_jws(clerk, item["id"], document["sha256"])},
        )
        assert answer.status_code == 200, answer.text
    client = Minio(moto_server.endpoint, access_key="testing", secret_key="testing", secure=False)
    stored = list(client.list_objects(bucket, recursive=True))
    assert len(stored) == 2  # the draft and the sealed document, encrypted
    assert not (Path(gateway.data_dir) / "objects").exists()
    for entry in stored:
        body = client.get_object(bucket, entry.object_name).read()
        assert b"%PDF" not in body
    for session in admins:
        session.close()
