"""Department seals: issued and revoked only when two different admins agree.

"Different" counts people, not ids: an approval is refused when either admin handled the
enrollment code of the key the other one acts with (it may hold that key).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.http.bodies import json_response, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import NotFound, Principal, now_of, principal_of
from gateway.pki.crls import CRLS
from gateway.runtime import RUNTIME
from gateway.sealing.sealer import DEFAULT_PURPOSE, SEALER, issue_seal
from keys import crl, pki
from seals.image import render_seal
from storage import directory, identity
from storage.audit_outbox import AuditEvent, record_event
from storage.db import DbConnection

routes = RouteTable()

ADMIN = {"admin"}
SEAL = json_content(
    {
        "type": "object",
        "required": [
            "id",
            "department",
            "purpose",
            "status",
            "certificate_pem",
            "valid_from",
            "valid_to",
        ],
        "properties": {
            "id": {"type": "string"},
            "department": {"type": "string"},
            "purpose": {"type": "string"},
            "status": {"type": "string"},
            "certificate_pem": {"type": "string"},
            "valid_from": {"type": "string"},
            "valid_to": {"type": "string"},
            "revoked_at": {"type": ["string", "null"]},
            "invalid_since": {"type": ["string", "null"]},
        },
    }
)
SEAL_REQUEST = json_content(
    {
        "type": "object",
        "required": ["id", "department", "kind", "status"],
        "properties": {
            "id": {"type": "string"},
            "department": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string"},
            "purpose": {"type": "string"},
            "seal_id": {"type": ["string", "null"]},
            "invalid_since": {"type": ["string", "null"]},
        },
    }
)


class SameAdmin(Exception):
    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("a second, different admin must approve what one admin requested")
        self.detail = str(self)


class RequestDecided(Exception):
    code = "conflict"

    def __init__(self) -> None:
        super().__init__("this request was already decided")
        self.detail = str(self)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound() from None


def _seal_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "department": row["department"],
        "purpose": row["purpose"],
        "status": row["status"],
        "certificate_pem": row["certificate_pem"],
        "valid_from": _iso(row["valid_from"]),
        "valid_to": _iso(row["valid_to"]),
        "revoked_at": _iso(row["revoked_at"]),
        "invalid_since": _iso(row["invalid_since"]),
    }


def _request_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "department": row["department"],
        "kind": row["kind"],
        "purpose": row["purpose"],
        "seal_id": str(row["seal_id"]) if row["seal_id"] else None,
        "invalid_since": _iso(row["invalid_since"]),
        "status": row["status"],
        "requested_by": row["requested_by"],
        "requested_at": _iso(row["requested_at"]),
        "decided_by": row["decided_by"],
        "decided_at": _iso(row["decided_at"]),
    }


def _event(
    principal: Principal, kind: str, now: datetime, department: str, details: dict[str, Any]
) -> AuditEvent:
    return AuditEvent(
        kind,
        now,
        actor_official=principal.official_id,
        actor_jkt=principal.kid,
        department=department,
        details=details,
    )


@routes.add(
    "POST",
    "/v1/departments/{code}/seal-requests",
    summary="Ask for a new department seal (an admin; another admin approves).",
    access="authenticated",
    roles=ADMIN,
    tag="seals",
    parameters=(path_param("code", "Department code."),),
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "properties": {"purpose": {"type": "string", "maxLength": 40}},
            }
        ),
    },
    responses={"201": {"content": SEAL_REQUEST}},
)
async def request_seal(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json_object(request)
    purpose = body.get("purpose", DEFAULT_PURPOSE)
    if not isinstance(purpose, str) or not 1 <= len(purpose.strip()) <= 40:
        raise ApiError("invalid_request", "purpose must be 1 to 40 characters")
    if (unsafe := unsafe_character(purpose)) is not None:
        raise ApiError("invalid_request", f"purpose must not contain {unsafe}")
    code = request.match_info["code"]
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        await directory.get_department(connection, code)
        row: Any = await connection.fetchrow(
            "INSERT INTO seal_requests (id, department, purpose, kind, requested_by,"
            " requested_with_kid, requested_at)"
            " VALUES ($1, $2, $3, 'issue', $4, $5, $6) RETURNING *",
            uuid.uuid4(),
            code,
            purpose,
            principal.official_id,
            principal.kid,
            now,
        )
        await record_event(
            connection,
            _event(
                principal,
                "seal.requested",
                now,
                code,
                {"request": str(row["id"]), "purpose": purpose},
            ),
        )
    return json_response(_request_json(row), status=201)


@routes.add(
    "POST",
    "/v1/seals/{id}/revoke",
    summary="Ask to revoke a seal (another admin approves).",
    access="authenticated",
    roles=ADMIN,
    tag="seals",
    parameters=(path_param("id", "Seal id."),),
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "reason": {"type": "string", "maxLength": 500},
                    "reason_code": {"type": "string", "enum": sorted(crl.REASONS)},
                    "invalid_since": {
                        "type": "string",
                        "format": "date-time",
                        "description": "key_compromise only: since when the key is unsafe"
                        " (CRL invalidityDate); seals timestamped after it verify as revoked",
                    },
                },
            }
        ),
    },
    responses={"201": {"content": SEAL_REQUEST}},
)
async def request_revocation(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json_object(request)
    reason = body.get("reason")
    if not isinstance(reason, str) or not 1 <= len(reason) <= 500:
        raise ApiError("invalid_request", "reason must be 1 to 500 characters")
    if (unsafe := unsafe_character(reason, multiline=True)) is not None:
        raise ApiError("invalid_request", f"reason must not contain {unsafe}")
    reason_code = body.get("reason_code", "unspecified")
    if reason_code not in crl.REASONS:
        raise ApiError("invalid_request", "reason_code must be one of " + ", ".join(crl.REASONS))
    seal_id = _uuid(request, "id")
    now = now_of(request)
    invalid_since = _invalid_since(body.get("invalid_since"), reason_code, now)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        seal = await connection.fetchrow("SELECT * FROM seals WHERE id = $1", seal_id)
        if seal is None:
            raise NotFound()
        if seal["status"] != "active":
            raise RequestDecided()
        if invalid_since is not None and invalid_since < seal["issued_at"]:
            raise ApiError("invalid_request", "invalid_since is before the seal was issued")
        row: Any = await connection.fetchrow(
            "INSERT INTO seal_requests (id, department, purpose, kind, seal_id, reason,"
            " reason_code, requested_by, requested_with_kid, requested_at, invalid_since)"
            " VALUES ($1, $2, $3, 'revoke', $4, $5, $6, $7, $8, $9, $10) RETURNING *",
            uuid.uuid4(),
            seal["department"],
            seal["purpose"],
            seal_id,
            reason,
            reason_code,
            principal.official_id,
            principal.kid,
            now,
            invalid_since,
        )
        await record_event(
            connection,
            _event(
                principal,
                "seal.revocation_requested",
                now,
                seal["department"],
                {
                    "request": str(row["id"]),
                    "seal_id": str(seal_id),
                    "reason": reason,
                    "reason_code": reason_code,
                    "invalid_since": _iso(invalid_since),
                },
            ),
        )
    return json_response(_request_json(row), status=201)


def _invalid_since(value: Any, reason_code: str, now: datetime) -> datetime | None:
    """RFC 5280 invalidity date: only for a compromised key, never in the future."""
    if value is None:
        return None
    if reason_code != "key_compromise":
        raise ApiError("invalid_request", "invalid_since goes only with reason_code key_compromise")
    if not isinstance(value, str) or len(value) > 40:
        raise ApiError("invalid_request", "invalid_since must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("invalid_request", "invalid_since must be an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ApiError("invalid_request", "invalid_since needs a time zone (e.g. Z)")
    if parsed > now:
        raise ApiError("invalid_request", "invalid_since must not be in the future")
    return parsed


async def _revoke(connection: DbConnection, request_row: Any, now: datetime) -> Any:
    # A revocation dated back can never be later than the revocation itself.
    invalid_since = request_row["invalid_since"]
    if invalid_since is not None:
        invalid_since = min(invalid_since, now)
    row = await connection.fetchrow(
        "UPDATE seals SET status = 'revoked', revoked_at = $2, revocation_reason = $3,"
        " invalid_since = $4 WHERE id = $1 AND status = 'active' RETURNING *",
        request_row["seal_id"],
        now,
        request_row["reason_code"],
        invalid_since,
    )
    if row is None:
        raise RequestDecided()
    return row


@routes.add(
    "POST",
    "/v1/seal-requests/{id}/approve",
    summary="Approve another admin's seal issuance or revocation request.",
    access="authenticated",
    roles=ADMIN,
    tag="seals",
    parameters=(path_param("id", "Seal request id."),),
    responses={"201": {"content": SEAL}, "200": {"content": SEAL}},
)
async def approve_seal_request(request: web.Request) -> web.Response:
    principal = principal_of(request)
    request_id = _uuid(request, "id")
    runtime = request.app[RUNTIME]
    now = now_of(request)
    async with runtime.pool.acquire() as connection, connection.transaction():
        pending = await connection.fetchrow(
            "SELECT * FROM seal_requests WHERE id = $1 FOR UPDATE", request_id
        )
        if pending is None:
            raise NotFound()
        if pending["status"] != "pending":
            raise RequestDecided()
        if pending["requested_by"] == principal.official_id:
            raise SameAdmin()
        if not identity.independent_people(
            pending["requested_by"],
            await identity.code_handlers_of_key(connection, pending["requested_with_kid"]),
            principal.official_id,
            await identity.code_handlers_of_key(connection, principal.kid),
        ):
            raise identity.SamePerson(
                "the approver handled the requester's enrollment code (or the other way"
                " round): a second, independent admin must approve"
            )
        await connection.execute(
            "UPDATE seal_requests SET status = 'approved', decided_by = $2, decided_at = $3"
            " WHERE id = $1",
            request_id,
            principal.official_id,
            now,
        )
        if pending["kind"] == "issue":
            issued = await issue_seal(
                runtime,
                connection,
                department=pending["department"],
                purpose=pending["purpose"],
                request_id=request_id,
                now=now,
            )
            row: Any = await connection.fetchrow("SELECT * FROM seals WHERE id = $1", issued.id)
            event, status = "seal.issued", 201
        else:
            row = await _revoke(connection, pending, now)
            event, status = "seal.revoked", 200
        await record_event(
            connection,
            _event(
                principal,
                event,
                now,
                pending["department"],
                {
                    "request": str(request_id),
                    "seal_id": str(row["id"]),
                    "requested_by": pending["requested_by"],
                    "approved_by": principal.official_id,
                    "serial_number": str(row["serial_number"]),
                    **(
                        {"invalid_since": _iso(row["invalid_since"])}
                        if row["invalid_since"] is not None
                        else {}
                    ),
                },
            ),
        )
    if pending["kind"] == "revoke":
        request.app[CRLS].invalidate(pki.SEAL_CA_NAME)
        request.app[SEALER].forget(row["id"])
    return json_response(_seal_json(row), status=status)


@routes.add(
    "GET",
    "/v1/departments/{code}/seals",
    summary="The seals of a department.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("code", "Department code."),),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def department_seals(request: web.Request) -> web.Response:
    async with request.app[RUNTIME].pool.acquire() as connection:
        await directory.get_department(connection, request.match_info["code"])
        rows = await connection.fetch(
            "SELECT * FROM seals WHERE department = $1 ORDER BY issued_at DESC",
            request.match_info["code"],
        )
    return json_response({"items": [_seal_json(row) for row in rows], "next_cursor": None})


async def _seal_row(request: web.Request) -> Any:
    async with request.app[RUNTIME].pool.acquire() as connection:
        row: Any = await connection.fetchrow(
            "SELECT s.*, d.name AS department_name FROM seals s"
            " JOIN departments d ON d.code = s.department WHERE s.id = $1",
            _uuid(request, "id"),
        )
    if row is None:
        raise NotFound()
    return row


@routes.add(
    "GET",
    "/v1/seals/{id}",
    summary="A seal: certificate, status, validity.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("id", "Seal id."),),
    responses={"200": {"content": SEAL}},
)
async def get_seal(request: web.Request) -> web.Response:
    return json_response(_seal_json(await _seal_row(request)))


@routes.add(
    "GET",
    "/v1/seals/{id}/image.png",
    summary="The seal's red stamp image.",
    access="authenticated",
    tag="seals",
    parameters=(path_param("id", "Seal id."),),
    responses={"200": {"content": {"image/png": {"schema": {"type": "string"}}}}},
)
async def seal_image(request: web.Request) -> web.Response:
    row = await _seal_row(request)
    png = render_seal(row["department_name"], row["purpose"])
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
