"""签收 / 退回 of a delivery, the countersigned receipt, 撤回 and 补发 of a document."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.exchange import views
from gateway.exchange.handlers import EXCHANGE, exchange_refusals, idempotency_key, path_id
from gateway.exchange.meta import MAX_RECIPIENTS, Code
from gateway.exchange.service import ResendRequest
from gateway.http.bodies import json_response, parse_body
from gateway.http.models import RequestBody
from gateway.http.routing import RouteTable, path_param
from gateway.identity.auth import principal_of
from gateway.passkeys.stepup import Signed

routes = RouteTable()


class SignatureBody(RequestBody):
    """签收 / 退回: the compact JWS the recipient's official signed."""

    signature: str = Field(min_length=1, max_length=65536)
    passkey: dict[str, Any] | None = Field(
        default=None,
        description="passkey step-up (console keys): AuthenticationResponseJSON whose challenge"
        " is b64url(SHA-256(ASCII of signature))",
    )


class ResendBody(RequestBody):
    """补发: the new recipients (and, once signed off, a leader's approval of them)."""

    recipients: list[Code] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    approval: str | None = Field(
        default=None, description="sealhub-resend+jwt of a leader; needed once signed off"
    )


async def _signature(request: web.Request) -> Signed:
    body = await parse_body(request, SignatureBody)
    return Signed(body.signature, body.passkey)


async def _resend_request(request: web.Request) -> ResendRequest:
    body = await parse_body(request, ResendBody)
    return ResendRequest(tuple(dict.fromkeys(body.recipients)), body.approval)


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
    request_model=SignatureBody,
    responses={"200": views.Countersigned},
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
    request_model=SignatureBody,
    responses={"200": views.Countersigned},
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
    responses={"200": views.Countersigned},
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
    responses={"200": views.Withdrawn},
)
@exchange_refusals
async def withdraw_document(request: web.Request) -> web.Response:
    withdrawn = await request.app[EXCHANGE].withdraw(
        principal_of(request), path_id(request), idempotency_key=idempotency_key(request)
    )
    return json_response(views.withdrawn(withdrawn))


@routes.add(
    "POST",
    "/v1/documents/{id}/resend",
    summary="补发: deliver to more recipients.",
    access="authenticated",
    tag="documents",
    parameters=(path_param("id", "Document id."),),
    request_model=ResendBody,
    responses={"200": views.Resent},
)
@exchange_refusals
async def resend_document(request: web.Request) -> web.Response:
    resent = await request.app[EXCHANGE].resend(
        principal_of(request),
        path_id(request),
        lambda: _resend_request(request),
        idempotency_key=idempotency_key(request),
    )
    return json_response(views.resent(resent))
