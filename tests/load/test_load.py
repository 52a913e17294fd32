"""The short form of the load run (CI): three processes, each object store in turn.

The long form is ``python -m tests.load --seconds 60 --departments 200`` (see README).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.load.cluster import start_cluster
from tests.load.run import run_load
from tests.s3server import MotoServer
from tests.seals.seal_corpus import reportlab_pdf

SECONDS = 10
# Fewer than the long form's 200: the CI machines have two cores shared with other jobs.
DEPARTMENTS = 12
CONCURRENCY = 8


@pytest.mark.parametrize("store", ["filesystem", "s3"])
def test_three_processes_under_load(
    store: str, db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = {}
    if store == "s3":
        moto: MotoServer = request.getfixturevalue("moto_server")
        env = {
            "S3_ENDPOINT": f"http://{moto.endpoint}",
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
            "S3_BUCKET": "sealhub-load-" + uuid.uuid4().hex[:8],
        }
    cluster = start_cluster(db_url, tmp_path / "data", store_env=env)
    try:
        outcome = asyncio.run(
            run_load(
                cluster,
                seconds=SECONDS,
                departments=DEPARTMENTS,
                concurrency=CONCURRENCY,
                pdf=reportlab_pdf(pages=1),
                state_dir=tmp_path,
            )
        )
    finally:
        cluster.stop()
    print(f"\n[{store}] {DEPARTMENTS} departments, {SECONDS} s\n{outcome.report()}")
    assert outcome.sends > 0
    assert not outcome.problems, "\n".join(outcome.problems[:50]) + "\n" + cluster.logs()[-20000:]
