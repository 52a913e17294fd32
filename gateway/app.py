"""The aiohttp application: middleware, route table, per-app state."""

from __future__ import annotations

import importlib
import pkgutil

from aiohttp import web

from gateway import __version__, handlers
from gateway.audit_service import install_audit_service
from gateway.auth import authenticate, send_dpop_nonce
from gateway.crls import CRLS, CrlCache
from gateway.handlers import service
from gateway.inbox import install_inbox
from gateway.metrics import Metrics
from gateway.middleware import BODY_IDLE_SECONDS, METRICS, observe
from gateway.object_sweeper import install_object_sweeper
from gateway.ratelimit import RATE_LIMITS, configured_limits
from gateway.routes_table import routes
from gateway.runtime import RUNTIME, Runtime
from gateway.sealing import install_sealer
from gateway.supervision import install_supervision
from gateway.verification import install_verifier
from gateway.webhooks import install_webhooks


def _load_handler_modules() -> None:
    """Every module in gateway/handlers registers its routes on import."""
    for module in pkgutil.iter_modules(handlers.__path__):
        importlib.import_module(f"{handlers.__name__}.{module.name}")


def create_app(runtime: Runtime) -> web.Application:
    _load_handler_modules()
    app = web.Application(
        middlewares=[observe, authenticate], client_max_size=runtime.settings.max_json_bytes
    )
    app[RUNTIME] = runtime
    app.on_response_prepare.append(send_dpop_nonce)
    app[RATE_LIMITS] = configured_limits(runtime.settings.login_rate_per_source)
    app[METRICS] = Metrics()
    app[BODY_IDLE_SECONDS] = runtime.settings.idle_timeout_seconds
    app[service.OPENAPI_DOCUMENT] = service.openapi_document(
        runtime.settings.public_origin, __version__
    )
    crls = CrlCache(runtime.pki, runtime.pool)
    app[CRLS] = crls
    install_sealer(app, runtime, crls)
    install_verifier(app, runtime, crls)
    install_inbox(app, runtime, runtime.database_url)
    install_object_sweeper(app, runtime)
    routes.install(app)
    install_audit_service(app)
    install_supervision(app)
    install_webhooks(app)
    return app
