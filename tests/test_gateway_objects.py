"""The gateway's object store is chosen by configuration and watched by /readyz."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import start_gateway
from tests.s3server import MotoServer


def test_filesystem_store_lives_in_the_data_directory(db_url: str, tmp_path: Path) -> None:
    running = start_gateway(db_url, tmp_path / "gw", demo=False)
    try:
        with running.client() as client:
            assert client.get("/readyz").json()["checks"] == {
                "database": "ok",
                "objects": "ok",
                "seal_font": "ok",
            }
        objects = tmp_path / "gw" / "objects"
        assert objects.is_dir()
        assert objects.stat().st_mode & 0o077 == 0
    finally:
        running.stop()


def test_s3_store_is_used_and_its_outage_makes_readyz_503(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    moto = MotoServer()
    moto.wait_ready()
    env = {
        "S3_ENDPOINT": f"http://{moto.endpoint}",
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_BUCKET": "sealhub-readyz",
    }
    running = start_gateway(db_url, tmp_path_factory.mktemp("gw-s3"), demo=False, env=env)
    try:
        with running.client() as client:
            assert client.get("/readyz").status_code == 200
            assert not (running.data_dir / "objects").exists()
            moto.stop()
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["code"] == "not_ready"
            assert "object store" in response.json()["detail"]
    finally:
        running.stop()
        moto.stop()
