"""The aiohttp application: middleware, route table, per-app state."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from gateway import __version__
from gateway.audit.sequencer import install_audit_service
from gateway.exchange.handlers import EXCHANGE
from gateway.exchange.inbox import InboxHub, install_inbox
from gateway.exchange.receipts import Countersigner
from gateway.exchange.service import ExchangeService
from gateway.exchange.sweeper import install_object_sweeper
from gateway.http import service_handlers as service
from gateway.http.metrics import Metrics
from gateway.http.middleware import BODY_IDLE_SECONDS, METRICS, observe
from gateway.http.openapi import build_openapi
from gateway.http.ratelimit import RATE_LIMITS, configured_limits
from gateway.identity.auth import CLOCK, authenticate, send_dpop_nonce
from gateway.pki.crls import CRLS, CrlCache
from gateway.routes import routes
from gateway.runtime import RUNTIME, Runtime
from gateway.sealing.sealer import SEALER, install_sealer
from gateway.sealing.verifier import install_verifier
from gateway.spool import spool_files
from gateway.supervision.service import install_supervision
from gateway.webhooks.worker import install_webhooks
from gateway.workflow import service as workflow_service
from gateway.workflow.handlers import WORKFLOW


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[observe, authenticate], client_max_size=runtime.settings.max_json_bytes
    )
    app[RUNTIME] = runtime
    app.on_response_prepare.append(send_dpop_nonce)
    app[RATE_LIMITS] = configured_limits(runtime.settings.login_rate_per_source)
    app[METRICS] = Metrics()
    app[BODY_IDLE_SECONDS] = runtime.settings.idle_timeout_seconds
    app[service.OPENAPI_DOCUMENT] = build_openapi(
        routes.routes, server_url=runtime.settings.public_origin, version=__version__
    )
    crls = CrlCache(runtime.pki, runtime.pool)
    app[CRLS] = crls
    install_sealer(app, runtime, crls)
    install_verifier(app, runtime, crls)
    inbox = InboxHub(runtime.pool)
    install_inbox(app, inbox, runtime.database_url)
    install_object_sweeper(app, runtime)

    def clock() -> datetime:
        return app.get(CLOCK, lambda: datetime.now(UTC))()

    async def services(app: web.Application) -> AsyncIterator[None]:
        """The domain services, built once the sealer (started with the app) exists."""
        app[EXCHANGE] = ExchangeService(
            pool=runtime.pool,
            objects=runtime.objects,
            sealer=app[SEALER],
            drafting=workflow_service,
            countersigner=Countersigner(runtime.pki),
            inbox=inbox,
            spool=functools.partial(spool_files, runtime.settings),
            clock=clock,
            max_document_bytes=runtime.settings.max_document_bytes,
            sign_for_within=runtime.settings.supervision.sign_for_within(),
        )
        app[WORKFLOW] = workflow_service.WorkflowService(
            pool=runtime.pool,
            objects=runtime.objects,
            sealer=app[SEALER],
            spool=functools.partial(spool_files, runtime.settings),
            clock=clock,
            max_document_bytes=runtime.settings.max_document_bytes,
            sign_for_within=runtime.settings.supervision.sign_for_within(),
        )
        yield

    app.cleanup_ctx.append(services)
    routes.install(app)
    install_audit_service(app)
    install_supervision(app)
    install_webhooks(app)
    return app
