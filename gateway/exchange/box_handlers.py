"""``GET /v1/documents?box=``: the caller's department's sent documents, those awaiting its
seal, and its drafts (rules in boxes.py)."""

from __future__ import annotations

from aiohttp import web

from gateway.exchange import box_views
from gateway.exchange.boxes import BOXES, BoxQuery, DocumentBoxService
from gateway.http.bodies import after_time_id, json_response, page_params, query_text
from gateway.http.errors import ApiError
from gateway.http.routing import PAGE_PARAMS, RouteTable, query_param
from gateway.identity.auth import principal_of

routes = RouteTable()
DOCUMENT_BOXES: web.AppKey[DocumentBoxService] = web.AppKey("document_boxes", DocumentBoxService)


@routes.add(
    "GET",
    "/v1/documents",
    summary=(
        "My department's documents, newest first: sent (dispatched, withdrawn),"
        " awaiting_seal (with where the seal will go) or drafts (in approval, returned)."
    ),
    access="authenticated",
    tag="documents",
    parameters=(
        query_param(
            "box", "sent, awaiting_seal or drafts.", schema={"type": "string", "enum": list(BOXES)}
        ),
        query_param("q", "Text found in the title or 文号 (literally, no wildcards)."),
        *PAGE_PARAMS,
    ),
    responses={"200": box_views.BoxPage},
)
async def list_documents(request: web.Request) -> web.Response:
    limit, cursor = page_params(request)
    box = request.query.get("box", "")
    if box not in BOXES:
        raise ApiError("invalid_request", "box must be one of " + ", ".join(BOXES))
    query = BoxQuery(box, query_text(request, "q"), after_time_id(cursor), limit)
    page = await request.app[DOCUMENT_BOXES].documents(principal_of(request), query)
    return json_response(box_views.box_page(page))
