"""The aiohttp application: middleware, route table, per-app state."""

from __future__ import annotations

from aiohttp import web

from gateway import __version__
from gateway.handlers import directory, service
from gateway.metrics import Metrics
from gateway.middleware import METRICS, observe
from gateway.routes_table import routes
from gateway.runtime import RUNTIME, Runtime

HANDLER_MODULES = (service, directory)


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(middlewares=[observe], client_max_size=runtime.settings.max_json_bytes)
    app[RUNTIME] = runtime
    app[METRICS] = Metrics()
    app[service.OPENAPI_DOCUMENT] = service.openapi_document(
        runtime.settings.public_origin, __version__
    )
    routes.install(app)
    return app
