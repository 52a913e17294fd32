"""The route table: every endpoint declared once with what it needs and what it returns.

The aiohttp router, ``/openapi.json`` and the authorization checks all read this table,
so a route cannot exist without its documentation and its access rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Access = Literal["public", "authenticated"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    access: Access
    roles: frozenset[str] = frozenset()
    tag: str = "misc"
    parameters: tuple[dict[str, Any], ...] = ()
    request_body: dict[str, Any] | None = None
    # A status's declared body: an OpenAPI Response Object, or a type (a pydantic model, a
    # TypedDict, a union of them) whose JSON Schema openapi.py shows as its JSON body.
    responses: dict[str, dict[str, Any] | type | UnionType] = field(default_factory=dict)
    request_model: type | None = None
    # The aiohttp path when it differs from ``path``: a parameter spanning segments
    # (``{path:.+}``); ``path`` stays the documented template.
    router_path: str | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class RouteTable:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        access: Access,
        roles: frozenset[str] | set[str] = frozenset(),
        tag: str = "misc",
        parameters: tuple[dict[str, Any], ...] = (),
        request_body: dict[str, Any] | None = None,
        request_model: type | None = None,
        responses: dict[str, dict[str, Any] | type | UnionType] | None = None,
        router_path: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """*request_model* is the JSON body's model (``parse_body`` validates with it);
        *request_body* a hand-written Request Body Object (multipart, raw bytes)."""

        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    summary=summary,
                    access=access,
                    roles=frozenset(roles),
                    tag=tag,
                    parameters=parameters,
                    request_body=request_body,
                    request_model=request_model,
                    responses=responses or {},
                    router_path=router_path,
                )
            )
            return handler

        return register

    @classmethod
    def joined(cls, *tables: RouteTable) -> RouteTable:
        """One table holding the routes of *tables*, in order."""
        joined = cls()
        for table in tables:
            joined.routes.extend(table.routes)
        return joined

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            path = route.router_path or route.path
            resource_route = app.router.add_route(route.method, path, route.handler)
            _ROUTE_BY_HANDLER[resource_route.handler] = route


_ROUTE_BY_HANDLER: dict[Any, Route] = {}


def route_of(request: web.Request) -> Route | None:
    """The declared route that matched *request* (None for 404/405)."""
    return _ROUTE_BY_HANDLER.get(request.match_info.route.handler)


def query_param(
    name: str, description: str, *, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


PAGE_PARAMS = (
    query_param(
        "limit", "Page size, 1 to 500.", schema={"type": "integer", "minimum": 1, "maximum": 500}
    ),
    query_param("cursor", "Opaque cursor from the previous page's `next_cursor`."),
)
