"""Fixtures for approval workflows: the exchange's gateway, seal and seal keeper, plus
helpers to sign approvals with an official's own key and to read audit event types."""

from __future__ import annotations

import asyncio
import time
import uuid

from keys.jws import TYP_APPROVAL, sign_jws
from storage.db import connect
from tests.conftest import Gateway, Session
from tests.exchange.conftest import (  # noqa: F401 (fixtures re-exported for this package)
    admins,
    nss_db,
    pdfsig,
    sample_pdf,
    seal_keeper,
    sender_seal,
)


def approval_jws(
    session: Session,
    document: str,
    draft_sha256: str,
    step: int | str,
    decision: str = "approve",
    opinion: str = "同意",
) -> str:
    return sign_jws(
        {
            "document": document,
            "draft_sha256": draft_sha256,
            "step": step,
            "decision": decision,
            "opinion": opinion,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        },
        session.key,
        typ=TYP_APPROVAL,
    )


def audit_types(gateway: Gateway, document: str) -> list[str]:
    """Event types recorded for *document*, sequenced or still in the outbox, in order."""

    async def read() -> list[str]:
        connection = await connect(gateway.database_url)
        try:
            rows = await connection.fetch(
                "SELECT type FROM (SELECT outbox_id AS id, type FROM audit_log"
                " WHERE document = $1 UNION ALL SELECT id, type FROM audit_outbox"
                " WHERE document = $1) events ORDER BY id",
                document,
            )
        finally:
            await connection.close()
        return [row["type"] for row in rows]

    return asyncio.run(read())


def denied_reasons(gateway: Gateway, document: str) -> list[str]:
    """The reasons of ``access.denied`` events about *document*, sequenced or not."""

    async def read() -> list[str]:
        connection = await connect(gateway.database_url)
        try:
            rows = await connection.fetch(
                "SELECT details FROM (SELECT outbox_id AS id, type,"
                " convert_from(details, 'UTF8')::jsonb AS details FROM audit_log"
                " UNION ALL SELECT id, type, details FROM audit_outbox) events"
                " WHERE type = 'access.denied' AND details->>'document' = $1 ORDER BY id",
                document,
            )
        finally:
            await connection.close()
        return [row["details"]["reason"] for row in rows]

    return asyncio.run(read())
