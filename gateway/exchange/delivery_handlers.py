"""签收 / 退回 of a delivery, the countersigned receipt, 撤回 and 补发 of a document."""

from __future__ import annotations

from aiohttp import web

from gateway.exchange import views
from gateway.exchange.handlers import EXCHANGE, exchange_refusals, idempotency_key, path_id
from gateway.exchange.meta import parse_recipient_codes
from gateway.exchange.service import ResendRequest
from gateway.http.bodies import json_response, read_json_object
from gateway.http.errors import ApiError
from gateway.http.openapi import json_content
from gateway.http.routing import RouteTable, path_param
from gateway.identity.auth import principal_of

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


async def _signature(request: web.Request) -> str:
    body = await read_json_object(request)
    signature = body.get("signature")
    if not isinstance(signature, str) or not 1 <= len(signature) <= 65536:
        raise ApiError("invalid_request", "signature must be the compact JWS you signed")
    return signature


async def _decide(request: web.Request, action: str) -> web.Response:
    decided = await request.app[EXCHANGE].decide(
        principal_of(request),
        path_id(request),
        action,
        lambda: _signature(request),
        idempotency_key=idempotency_key(request),
    )
    return json_response(views.decided(decided))


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
@exchange_refusals
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
@exchange_refusals
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
@exchange_refusals
async def get_receipt(request: web.Request) -> web.Response:
    receipt = await request.app[EXCHANGE].receipt(principal_of(request), path_id(request))
    return json_response(views.receipt(receipt))


@routes.add(
    "POST",
    "/v1/documents/{id}/withdraw",
    summary="撤回: withdraw before anyone signed for it.",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    responses={"200": {"content": json_content({"type": "object"})}},
)
@exchange_refusals
async def withdraw_document(request: web.Request) -> web.Response:
    withdrawn = await request.app[EXCHANGE].withdraw(
        principal_of(request), path_id(request), idempotency_key=idempotency_key(request)
    )
    return json_response(withdrawn.as_json())


async def _resend_request(request: web.Request) -> ResendRequest:
    body = await read_json_object(request)
    return ResendRequest(parse_recipient_codes(body.get("recipients")), body.get("approval"))


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
@exchange_refusals
async def resend_document(request: web.Request) -> web.Response:
    resent = await request.app[EXCHANGE].resend(
        principal_of(request),
        path_id(request),
        lambda: _resend_request(request),
        idempotency_key=idempotency_key(request),
    )
    return json_response(resent.as_json())
