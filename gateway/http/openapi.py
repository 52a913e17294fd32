"""OpenAPI 3.1 document generated from the route table, so it cannot drift from the code."""

from __future__ import annotations

from typing import Any

from gateway.http.routing import Route

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

DEPARTMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "name", "name_en", "parent", "kind"],
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{0,62}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "name_en": {"type": "string", "maxLength": 300},
        "parent": {"type": ["string", "null"]},
        "kind": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
    },
}

GROUP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "name", "members"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "members": {"type": "array", "items": {"type": "string"}},
    },
}


def page_of(item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": item_ref}},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema in route.responses.items():
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
    if route.request_body is not None:
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
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
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
            "schemas": {
                "Problem": PROBLEM_SCHEMA,
                "Department": DEPARTMENT_SCHEMA,
                "Group": GROUP_SCHEMA,
            },
            "securitySchemes": {
                "dpop": {
                    "type": "http",
                    "scheme": "DPoP",
                    "description": "Access token bound to the official's key (RFC 9449).",
                }
            },
        },
    }
