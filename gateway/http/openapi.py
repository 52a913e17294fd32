"""OpenAPI 3.1 document generated from the route table, so it cannot drift from the code."""

from __future__ import annotations

from types import UnionType
from typing import Any

from pydantic import TypeAdapter

from gateway.http.routing import Route

REF_TEMPLATE = "#/components/schemas/{model}"
# Models that hand-written schemas point at (``schema_ref``), shown under components/schemas.
_REFERENCED: dict[str, type] = {}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
    },
}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def schema_ref(model: type) -> dict[str, Any]:
    """A ``$ref`` to *model*'s JSON Schema, for a hand-written schema (a multipart part)."""
    _REFERENCED[model.__name__] = model
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


class Components:
    """``components/schemas``: the fixed schemas and those of the declared models, each
    model (and every model it nests) under its class name, referenced by ``$ref``."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}

    def ref(self, model: type | UnionType) -> dict[str, Any]:
        """A ``$ref`` to a class's schema; a union's ``anyOf`` of its members' refs."""
        form: Any = model  # a class or a union of classes: a type form either way
        schema = TypeAdapter(form).json_schema(ref_template=REF_TEMPLATE)
        definitions = schema.pop("$defs", {})
        if isinstance(model, type):
            definitions[model.__name__] = schema
            schema = {"$ref": REF_TEMPLATE.format(model=model.__name__)}
        for name, definition in definitions.items():
            if self.schemas.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are named {name!r}")
        return schema


def _operation(route: Route, components: Components) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema in route.responses.items():
        if not isinstance(schema, dict):
            responses[status] = {
                "description": "OK",
                "content": json_content(components.ref(schema)),
            }
            continue
        responses[status] = (
            {"description": schema.get("description", "OK"), "content": schema["content"]}
            if "content" in schema
            else {"description": schema.get("description", "OK")}
        )
    problem = {
        "description": "Problem",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for status in ("400", "413", "429"):
        responses.setdefault(status, problem)
    if route.access == "authenticated":
        responses.setdefault("401", problem)
        responses.setdefault("403", problem)
    responses.setdefault("default", problem)
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if route.parameters:
        operation["parameters"] = list(route.parameters)
    if route.request_model is not None:
        operation["requestBody"] = {
            "required": True,
            "content": json_content(components.ref(route.request_model)),
        }
    elif route.request_body is not None:
        body = route.request_body
        # A bare media-type map (what ``json_content`` returns) is not a Request Body Object.
        if "content" not in body:
            body = {"required": True, "content": body}
        operation["requestBody"] = body
    if route.access == "authenticated":
        operation["security"] = [{"dpop": []}]
        if route.roles:
            operation["x-roles"] = sorted(route.roles)
    else:
        operation["security"] = []
    return operation


def build_openapi(routes: list[Route], *, server_url: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components = Components()
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    for model in _REFERENCED.values():
        components.ref(model)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sealhub",
            "version": version,
            "description": "Document exchange and e-seal gateway of the city government.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "dpop": {
                    "type": "http",
                    "scheme": "DPoP",
                    "description": "Access token bound to the official's key (RFC 9449).",
                }
            },
        },
    }
