"""The console's three routes: ``/`` sends browsers to it, ``/console/`` is its page (never
cached), ``/console/assets/{version}/{path}`` its files (cached for a year: the version
changes with any byte)."""

from __future__ import annotations

from aiohttp import web

from gateway.console.assets import CONTENT_TYPES, DEFAULT_CONTENT_TYPE, ConsoleAssets
from gateway.http.routing import RouteTable, path_param

routes = RouteTable()

CONSOLE: web.AppKey[ConsoleAssets] = web.AppKey("console", ConsoleAssets)
IMMUTABLE = "public, max-age=31536000, immutable"
_ASSET_TYPES = sorted(
    {value.split(";")[0] for value in (*CONTENT_TYPES.values(), DEFAULT_CONTENT_TYPE)}
)


@routes.add(
    "GET",
    "/",
    summary="Browsers start at the console.",
    access="public",
    tag="console",
    responses={"302": {"description": "Location: /console/"}},
)
async def console_root(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/console/"})


@routes.add(
    "GET",
    "/console/",
    summary="The officials' web console (HTML, never cached).",
    access="public",
    tag="console",
    responses={"200": {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
async def console_page(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[CONSOLE].index_html,
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
    )


@routes.add(
    "GET",
    "/console/assets/{version}/{path}",
    router_path="/console/assets/{version}/{path:.+}",
    summary="A static file of the console under its version (cached immutably).",
    access="public",
    tag="console",
    parameters=(
        path_param("version", "The first 16 hex digits of the assets' SHA-256."),
        path_param("path", "The file's path below the console's static folder."),
    ),
    responses={"200": {"content": {kind: {"schema": {"type": "string"}} for kind in _ASSET_TYPES}}},
)
async def console_asset(request: web.Request) -> web.Response:
    found = request.app[CONSOLE].asset(request.match_info["version"], request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=found.body, headers={"Content-Type": found.content_type, "Cache-Control": IMMUTABLE}
    )


def install_console(app: web.Application, public_origin: str) -> None:
    """The console's files, read once now (their version is fixed for this process)."""
    app[CONSOLE] = ConsoleAssets.load(public_origin=public_origin)
