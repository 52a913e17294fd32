"""Every route of the gateway, one table per domain, installed in this order.

The aiohttp router, ``/openapi.json``, the authorization matrix and the contract test all
read :data:`routes`; a domain's handlers module declares its own table and is listed here.
"""

from gateway.audit import handlers as audit
from gateway.console import handlers as console
from gateway.directory import handlers as directory
from gateway.exchange import box_handlers as boxes
from gateway.exchange import delivery_handlers as deliveries
from gateway.exchange import handlers as documents
from gateway.exchange import inbox_handlers as inbox
from gateway.http import service_handlers as service
from gateway.http.routing import RouteTable
from gateway.identity import login_handlers as login
from gateway.identity import official_handlers as officials
from gateway.passkeys import handlers as passkeys
from gateway.pki import handlers as pki
from gateway.sealing import handlers as seals
from gateway.sealing import verify_handlers as verify
from gateway.supervision import handlers as supervision
from gateway.webhooks import handlers as webhooks
from gateway.workflow import handlers as approvals

# aiohttp matches routes in the order they were added: keep literal paths such as
# /v1/documents/inbox ahead of the /v1/documents/{id} family that would swallow them.
routes = RouteTable.joined(
    service.routes,
    console.routes,
    documents.routes,
    boxes.routes,
    approvals.routes,
    audit.routes,
    login.routes,
    deliveries.routes,
    directory.routes,
    inbox.routes,
    officials.routes,
    passkeys.routes,
    pki.routes,
    seals.routes,
    supervision.routes,
    verify.routes,
    webhooks.routes,
)
