"""签收 / 退回 of a delivery, the countersigned receipt, 撤回 and 补发 of a document."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.exchange import receipts
from gateway.exchange import service as exchange
from gateway.exchange.handlers import idempotency_scope
from gateway.exchange.meta import due_at, parse_recipient_codes
from gateway.http.bodies import json_response, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param
from gateway.http.text import unsafe_character
from gateway.identity.auth import NotFound, Principal, hidden, now_of, principal_of, require_roles
from gateway.runtime import RUNTIME, Runtime
from keys.jws import parse_public_jwk, read_unverified, verify_receipt
from storage import directory, documents, idempotency, identity
from storage.audit_outbox import AuditEvent, record_event, record_events
from storage.db import DbConnection

routes = RouteTable()

SIGNATURE_BODY = {
    "required": True,
    "content": json_content(
        {
            "type": "object",
            "required": ["signature"],
            "properties": {"signature": {"type": "string", "maxLength": 65536}},
        }
    ),
}
COUNTERSIGNED = json_content(
    {
        "type": "object",
        "required": ["delivery", "state", "countersigned"],
        "properties": {
            "delivery": {"type": "string"},
            "state": {"type": "string"},
            "audit_index": {"type": "integer"},
            "countersigned": {"type": "string"},
        },
    }
)
SENDER_ROLES = frozenset({"seal_keeper", "clerk", "dept_admin"})
# Withdrawing has no body: every retry of one Idempotency-Key asks the same thing.
WITHDRAW_HASH = hashlib.sha256(b"withdraw").hexdigest()


async def _probed(request: web.Request, name: str) -> uuid.UUID:
    """The path's id; one that is no id at all counts as a probe (audited 404)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise await hidden(request, "unknown_id") from None


async def _signature(request: web.Request) -> str:
    body = await read_json_object(request)
    signature = body.get("signature")
    if not isinstance(signature, str) or not 1 <= len(signature) <= 65536:
        raise ApiError("invalid_request", "signature must be the compact JWS you signed")
    return signature


async def _own_delivery(request: web.Request, principal: Principal) -> dict[str, Any]:
    """A delivery addressed to the caller's department (anything else: 404)."""
    async with request.app[RUNTIME].pool.acquire() as connection:
        try:
            delivery = await documents.get_delivery(connection, await _probed(request, "id"))
        except documents.DocumentNotFound:
            raise await hidden(request, "unknown_id") from None
    if delivery["recipient"] != principal.department or delivery["state"] == "withdrawn":
        raise await hidden(request, "other_department", delivery=str(delivery["id"]))
    return delivery


def _claims_of(checked_jws: str) -> dict[str, Any]:
    """The claims of a JWS this gateway made, or verified before storing it."""
    return read_unverified(checked_jws)[1]


async def _countersigned(
    runtime: Runtime, delivery_id: uuid.UUID, decision: documents.Decision, now: datetime
) -> tuple[str, int]:
    """The decision's countersigned receipt and audit index, made and kept on first need.

    Also finishes a decision whose countersignature was never stored (the gateway stopped
    after the decision's commit, or its audit index was not ready in time).
    """
    if decision.countersigned is not None:
        return decision.countersigned, int(_claims_of(decision.countersigned)["audit_index"])
    if decision.event is None or decision.receipt_jws is None or decision.decided_at is None:
        raise NotFound()  # no receipt, or one from before its event was kept (migration 0011)
    audit_index = await receipts.audit_index_of(runtime.pool, decision.event)
    async with runtime.pool.acquire() as connection:
        serial = int(await connection.fetchval("SELECT nextval('tsa_serial_numbers')"))
    made = receipts.countersign(
        runtime,
        receipt_jws=decision.receipt_jws,
        delivery_id=delivery_id,
        action=str(_claims_of(decision.receipt_jws)["action"]),
        received_at=decision.decided_at,
        audit_index=audit_index,
        tsa_serial=serial,
        now=now,
    )
    async with runtime.pool.acquire() as connection:
        kept = await documents.store_countersigned(connection, delivery_id, made)
    return kept, int(_claims_of(kept)["audit_index"])


async def _decide(request: web.Request, action: str) -> web.Response:
    """签收 or 退回. Repeating the same signed receipt answers as the first time did (and
    finishes its countersignature if that was lost), so a client may simply retry; an
    ``Idempotency-Key`` reused with another receipt is an ``idempotency_conflict``."""
    runtime = request.app[RUNTIME]
    principal = principal_of(request)
    delivery = await _own_delivery(request, principal)
    await require_roles(request, exchange.RECEIVER_ROLES, "signing for documents needs a clerk")
    signature = await _signature(request)
    scope = idempotency_scope(request, principal.official_id)
    request_hash = hashlib.sha256(f"{action} {signature}".encode()).hexdigest()
    state = "received" if action == "receive" else "rejected"
    now = now_of(request)
    async with runtime.pool.acquire() as connection, connection.transaction():
        decision = await documents.lock_decision(connection, delivery["id"])
        if scope is not None:
            # After the lock, so a twin with the same key is seen. Only a conflict matters
            # here: a repeat of the same receipt is answered below.
            await idempotency.find(connection, scope, request_hash)
        repeated = decision.receipt_jws is not None and hmac.compare_digest(
            decision.receipt_jws.encode(), signature.encode()
        )
        if repeated and decision.state != state:
            raise documents.WrongState(documents.ALREADY_DECIDED)
        if not repeated:
            decision = await _record_decision(
                connection, principal, delivery, signature, action, state, now
            )
            if scope is not None:
                answer = {"delivery": str(delivery["id"]), "state": state}
                stored = idempotency.StoredResponse(200, answer)
                await idempotency.remember(connection, scope, request_hash, stored, now)
    countersigned, audit_index = await _countersigned(runtime, delivery["id"], decision, now)
    return json_response(
        {
            "delivery": str(delivery["id"]),
            "state": state,
            "audit_index": audit_index,
            "countersigned": countersigned,
        }
    )


async def _record_decision(
    connection: DbConnection,
    principal: Principal,
    delivery: dict[str, Any],
    signature: str,
    action: str,
    state: str,
    now: datetime,
) -> documents.Decision:
    """A new receipt: verified against the caller's enrolled key, then the delivery's
    decision and its audit event, in the caller's transaction."""
    owner = await identity.key_owner(connection, principal.kid)
    if owner is None:
        raise NotFound()
    receipt = verify_receipt(
        signature,
        key=parse_public_jwk(owner.key.public_jwk),
        delivery_id=str(delivery["id"]),
        sha256=delivery["sealed_sha256"],
        now=now,
        expected_action=action,
    )
    # The 退回 reason lands in the audit log, the sender's screen and the receipt: the
    # free-text rule of every official record applies (gateway/http/text.py).
    if (unsafe := unsafe_character(receipt.reason, multiline=True)) is not None:
        raise ApiError("invalid_request", f"the reason must not contain {unsafe}")
    event = await record_event(
        connection,
        AuditEvent(
            f"delivery.{state}",
            now,
            actor_official=principal.official_id,
            actor_jkt=principal.kid,
            department=principal.department,
            document=str(delivery["document"]),
            details={
                "delivery": str(delivery["id"]),
                "sha256": receipt.sha256,
                "reason": receipt.reason,
                "receipt_jti": receipt.jti,
            },
        ),
    )
    await documents.decide_delivery(
        connection,
        delivery["id"],
        state=state,
        at=now,
        official=principal.official_id,
        receipt_jws=signature,
        reason=receipt.reason or None,
        event=event,
    )
    return documents.Decision(state, now, signature, event, None)


@routes.add(
    "POST",
    "/v1/deliveries/{id}/receipt",
    summary="签收: sign for a delivery.",
    access="authenticated",
    tag="exchange",
    parameters=(path_param("id", "Delivery id."),),
    request_body=SIGNATURE_BODY,
    responses={"200": {"content": COUNTERSIGNED}},
)
async def sign_for_delivery(request: web.Request) -> web.Response:
    return await _decide(request, "receive")


@routes.add(
    "POST",
    "/v1/deliveries/{id}/reject",
    summary="退回: return a delivery to its sender.",
    access="authenticated",
    tag="exchange",
    parameters=(path_param("id", "Delivery id."),),
    request_body=SIGNATURE_BODY,
    responses={"200": {"content": COUNTERSIGNED}},
)
async def reject_delivery(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


@routes.add(
    "GET",
    "/v1/deliveries/{id}/receipt",
    summary="The countersigned receipt of a delivery.",
    access="authenticated",
    tag="exchange",
    parameters=(path_param("id", "Delivery id."),),
    responses={"200": {"content": COUNTERSIGNED}},
)
async def get_receipt(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection:
        try:
            delivery = await documents.get_delivery(connection, await _probed(request, "id"))
        except documents.DocumentNotFound:
            raise await hidden(request, "unknown_id") from None
    allowed = principal.department in (delivery["recipient"], delivery["sender"]) or (
        principal.has_any({"inspector"})
    )
    if not allowed:
        raise await hidden(request, "other_department", delivery=str(delivery["id"]))
    if delivery["receipt_jws"] is None:
        raise NotFound()
    countersigned, _ = await _countersigned(
        request.app[RUNTIME], delivery["id"], documents.decision_of(delivery), now_of(request)
    )
    return json_response(
        {
            "delivery": str(delivery["id"]),
            "state": delivery["state"],
            "countersigned": countersigned,
        }
    )


async def _own_document(request: web.Request) -> tuple[Principal, uuid.UUID]:
    principal = principal_of(request)
    document_id = await _probed(request, "id")
    async with request.app[RUNTIME].pool.acquire() as connection:
        try:
            document = await documents.get_document(connection, document_id)
        except documents.DocumentNotFound:
            raise await hidden(request, "unknown_id") from None
    if document["sender"] != principal.department:
        raise await hidden(request, "other_department", document=str(document_id))
    await require_roles(request, SENDER_ROLES, "withdrawing or resending needs a clerk")
    return principal, document_id


@routes.add(
    "POST",
    "/v1/documents/{id}/withdraw",
    summary="撤回: withdraw before anyone signed for it.",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def withdraw_document(request: web.Request) -> web.Response:
    principal, document_id = await _own_document(request)
    scope = idempotency_scope(request, principal.official_id)
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        await documents.lock_document(connection, document_id)
        # Under the document lock a retried twin sees the first one's stored answer.
        earlier = await idempotency.find(connection, scope, WITHDRAW_HASH) if scope else None
        if earlier is not None:
            return json_response(earlier.body, status=earlier.status)
        recipients = await documents.withdraw_document(connection, document_id, now)
        await record_event(
            connection,
            AuditEvent(
                "document.withdrawn",
                now,
                actor_official=principal.official_id,
                actor_jkt=principal.kid,
                department=principal.department,
                document=str(document_id),
                details={"recipients": len(recipients)},
            ),
        )
        answer = {"id": str(document_id), "status": "withdrawn"}
        if scope is not None:
            stored = idempotency.StoredResponse(200, answer)
            await idempotency.remember(connection, scope, WITHDRAW_HASH, stored, now)
    return json_response(answer)


@routes.add(
    "POST",
    "/v1/documents/{id}/resend",
    summary="补发: deliver to more recipients.",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    request_body={
        "required": True,
        "content": json_content(
            {
                "type": "object",
                "required": ["recipients"],
                "properties": {
                    "recipients": {"type": "array", "items": {"type": "string"}},
                    "approval": {
                        "type": "string",
                        "description": "sealhub-resend+jwt of a leader; needed once signed off",
                    },
                },
            }
        ),
    },
    responses={"200": {"content": json_content({"type": "object"})}},
)
async def resend_document(request: web.Request) -> web.Response:
    principal, document_id = await _own_document(request)
    body = await read_json_object(request)
    codes = parse_recipient_codes(body.get("recipients"))
    scope = idempotency_scope(request, principal.official_id)
    body_hash = hashlib.sha256(json.dumps(sorted(codes)).encode()).hexdigest()
    now = now_of(request)
    async with request.app[RUNTIME].pool.acquire() as connection, connection.transaction():
        document = await documents.lock_document(connection, document_id)
        earlier = await idempotency.find(connection, scope, body_hash) if scope else None
        if earlier is not None:
            return json_response(earlier.body, status=earlier.status)
        if document["status"] != "dispatched":
            raise documents.WrongState("only a dispatched document can be sent again")
        expanded = await directory.expand_recipients(connection, codes)
        existing = await documents.existing_recipients(connection, document_id)
        new = [code for code in expanded if code not in existing and code != principal.department]
        due = due_at(
            document["deadline"],
            document["urgency"],
            now,
            request.app[RUNTIME].settings.supervision.sign_for_within(),
        )
        deliveries = [documents.NewDelivery(uuid.uuid4(), code, False, due) for code in new]
        approved_by = None
        if deliveries:
            approved_by = await exchange.check_resend_approval(
                connection, document, codes, body.get("approval"), now
            )
            await documents.insert_deliveries(connection, document_id, deliveries, now)
            await record_events(
                connection,
                [
                    AuditEvent(
                        "delivery.created",
                        now,
                        actor_official=principal.official_id,
                        actor_jkt=principal.kid,
                        department=d.recipient,
                        document=str(document_id),
                        details={
                            "delivery": str(d.id),
                            "resent": True,
                            "due_at": d.due_at.isoformat(),
                        },
                    )
                    for d in deliveries
                ],
            )
            await record_event(
                connection,
                AuditEvent(
                    "document.resent",
                    now,
                    actor_official=principal.official_id,
                    actor_jkt=principal.kid,
                    department=principal.department,
                    document=str(document_id),
                    details={
                        "recipients": [d.recipient for d in deliveries],
                        "approved_by": approved_by,
                    },
                ),
            )
            await documents.notify_deliveries(connection, document_id)
        answer = {"id": str(document_id), "added": [d.recipient for d in deliveries]}
        if scope is not None:
            stored = idempotency.StoredResponse(200, answer)
            await idempotency.remember(connection, scope, body_hash, stored, now)
    return json_response(answer)
