"""The aiohttp application: middleware, route table, per-app state."""

from __future__ import annotations

import functools

from aiohttp import web

from gateway import __version__
from gateway.audit.handlers import AUDIT_LOG
from gateway.audit.sequencer import install_audit_service, log_verifier
from gateway.audit.service import AuditLogService
from gateway.console.handlers import install_console
from gateway.console.headers import security_headers
from gateway.directory.handlers import DIRECTORY
from gateway.directory.service import DirectoryService
from gateway.exchange.box_handlers import DOCUMENT_BOXES
from gateway.exchange.boxes import DocumentBoxService
from gateway.exchange.handlers import EXCHANGE
from gateway.exchange.inbox import InboxHub, install_inbox
from gateway.exchange.receipts import Countersigner
from gateway.exchange.service import ExchangeService
from gateway.exchange.sweeper import install_object_sweeper
from gateway.http import service_handlers as service
from gateway.http.health import HealthService
from gateway.http.metrics import Metrics
from gateway.http.middleware import BODY_IDLE_SECONDS, METRICS, observe
from gateway.http.openapi import build_openapi
from gateway.http.ratelimit import RATE_LIMITS, configured_limits
from gateway.identity.access import AccessLog
from gateway.identity.auth import ACCESS, NONCES, authenticate, send_dpop_nonce
from gateway.identity.login_handlers import LOGIN
from gateway.identity.nonces import NonceIssuers
from gateway.identity.official_handlers import OFFICIALS
from gateway.identity.service import LoginService, OfficialsService
from gateway.passkeys.handlers import PASSKEYS
from gateway.passkeys.service import PasskeyService, RelyingParty
from gateway.pki.crls import CRLS, CrlCache
from gateway.pki.handlers import TIME_STAMPS
from gateway.pki.service import TimeStampService
from gateway.routes import routes
from gateway.runtime import RUNTIME, Runtime, clock_of
from gateway.sealing.handlers import SEALS
from gateway.sealing.sealer import SealSigners, install_sealer
from gateway.sealing.service import SealService
from gateway.sealing.verifier import install_verifier
from gateway.spool import spool_files
from gateway.supervision.handlers import OVERSIGHT
from gateway.supervision.oversight import OversightService
from gateway.supervision.service import install_supervision
from gateway.webhooks.handlers import WEBHOOKS
from gateway.webhooks.service import WebhookService
from gateway.webhooks.worker import install_webhooks
from gateway.workflow import service as workflow_service
from gateway.workflow.handlers import WORKFLOW
from storage.audit_outbox import OutboxSink
from storage.cosigned import cosigned_dir


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[observe, authenticate], client_max_size=runtime.settings.max_json_bytes
    )
    app[RUNTIME] = runtime
    app.on_response_prepare.append(send_dpop_nonce)
    app.on_response_prepare.append(security_headers)
    install_console(app, runtime.settings.public_origin)
    app[RATE_LIMITS] = configured_limits(runtime.settings.login_rate_per_source)
    app[METRICS] = Metrics()
    app[BODY_IDLE_SECONDS] = runtime.settings.idle_timeout_seconds
    install_identity(app, runtime)
    app[service.OPENAPI_DOCUMENT] = build_openapi(
        routes.routes, server_url=runtime.settings.public_origin, version=__version__
    )
    crls = app[CRLS] = CrlCache(runtime.pki, runtime.pool)
    signers = SealSigners(runtime.pki)
    sealer = install_sealer(app, runtime, crls, signers)
    install_verifier(app, runtime, crls)
    app[SEALS] = SealService(runtime.pool, runtime.pki, crls, signers)
    app[TIME_STAMPS] = TimeStampService(runtime.pool, runtime.pki.timestamper)
    inbox = InboxHub(runtime.pool)
    install_inbox(app, inbox, runtime.database_url)
    install_object_sweeper(app, runtime)

    clock = clock_of(app)
    app[EXCHANGE] = ExchangeService(
        pool=runtime.pool,
        objects=runtime.objects,
        sealer=sealer,
        drafting=workflow_service,
        countersigner=Countersigner(runtime.pki),
        inbox=inbox,
        spool=functools.partial(spool_files, runtime.settings),
        clock=clock,
        max_document_bytes=runtime.settings.max_document_bytes,
        sign_for_within=runtime.settings.supervision.sign_for_within(),
        passkeys=app[PASSKEYS],
    )
    app[DOCUMENT_BOXES] = DocumentBoxService(
        pool=runtime.pool,
        objects=runtime.objects,
        placer=sealer,
        spool=functools.partial(spool_files, runtime.settings),
    )
    app[WORKFLOW] = workflow_service.WorkflowService(
        pool=runtime.pool,
        objects=runtime.objects,
        sealer=sealer,
        spool=functools.partial(spool_files, runtime.settings),
        clock=clock,
        max_document_bytes=runtime.settings.max_document_bytes,
        sign_for_within=runtime.settings.supervision.sign_for_within(),
        passkeys=app[PASSKEYS],
    )
    app[service.HEALTH] = HealthService(runtime.pool, runtime.objects)
    app[AUDIT_LOG] = AuditLogService(
        runtime.pool,
        log_verifier(runtime),
        access=app[ACCESS],
        clock=clock,
        cosigned_dir=cosigned_dir(runtime.settings.data_dir),
    )
    app[DIRECTORY] = DirectoryService(runtime.pool, clock=clock)
    app[OVERSIGHT] = OversightService(runtime.pool, access=app[ACCESS], clock=clock)
    app[WEBHOOKS] = WebhookService(runtime.pool, runtime.master_key, clock=clock)
    routes.install(app)
    install_audit_service(app)
    install_supervision(app)
    install_webhooks(app)
    return app


def install_identity(app: web.Application, runtime: Runtime) -> None:
    """The identity services, sharing one refusal log, one clock and the nonce issuers."""
    pool, clock, audit, limits = runtime.pool, clock_of(app), OutboxSink(), app[RATE_LIMITS]
    app[ACCESS] = access = AccessLog(pool, audit=audit, clock=clock)
    app[NONCES] = nonces = NonceIssuers(pool, runtime.master_key)
    app[OFFICIALS] = OfficialsService(pool, audit=audit, clock=clock, access=access, limits=limits)
    app[PASSKEYS] = passkeys = PasskeyService(
        pool,
        audit=audit,
        clock=clock,
        access=access,
        nonces=nonces,
        officials=app[OFFICIALS],
        relying_party=RelyingParty.of(runtime.settings.public_origin),
    )
    app[LOGIN] = LoginService(
        pool,
        audit=audit,
        clock=clock,
        access=access,
        nonces=nonces,
        limits=limits,
        keystore=runtime.pki.keystore,
        public_origin=runtime.settings.public_origin,
        access_token_seconds=runtime.settings.access_token_seconds,
        passkeys=passkeys,
    )
