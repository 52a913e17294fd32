"""An embedded PostgreSQL for the zero-configuration start (no ``DATABASE_URL``).

pgserver ships real PostgreSQL binaries in a wheel; the server lives in the data
directory and stops when the last handle in this process is closed.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keys.codes import Code, CodedError

log = logging.getLogger(__name__)


class EmbeddedPostgresError(CodedError):
    code = Code.DATABASE_UNAVAILABLE


def postgres_bin(name: str) -> Path:
    """A program of the embedded server's own PostgreSQL (pg_basebackup, pg_ctl, ...): the
    same version as the server, whatever else the machine has installed."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # as embedded_postgres
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:  # pragma: no cover - only on Pythons without pgserver wheels
        raise EmbeddedPostgresError("no embedded PostgreSQL for this Python") from None
    path: Path = POSTGRES_BIN_PATH / name
    return path


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the server in ``data_dir/postgres`` and yield its asyncpg URI."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver then uses
    # /tmp, which is what we want: no need to alarm the operator.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        from pgserver.postgres_server import get_server
    except ImportError:  # pragma: no cover - only on Pythons without pgserver wheels
        raise EmbeddedPostgresError(
            "no embedded PostgreSQL for this Python (pgserver has wheels for 3.9-3.12); "
            "set DATABASE_URL to an existing server"
        ) from None
    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server: Any = get_server(pgdata, cleanup_mode="stop")
    try:
        uri: str = server.get_uri()
        log.info("embedded PostgreSQL ready", extra={"pgdata": str(pgdata)})
        yield uri
    finally:
        server.cleanup()
