"""The REST API reference, generated from the OpenAPI document the app serves.

`openvle_api.app.create_app` builds the app exactly as `openvle api` does (with the
settings' defaults, no .env); its `/openapi.json` document gives the endpoints and the
schemas. The scope a route needs is not part of that document, so it is read from the
handlers' parameter types (`ReadAuth`, `OperateAuth`, `AdminAuth` of `openvle_api.deps`).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import typing
from collections.abc import Iterator
from typing import Any

from mdtable import cell, code, table

METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def app_and_document() -> tuple[Any, dict[str, Any]]:
    """The FastAPI app and its OpenAPI document (built once per build)."""
    from openvle_api.app import create_app
    from openvle_core.settings import load_settings

    app = create_app(load_settings(env_file=None))
    return app, app.openapi()


@functools.cache
def operation_scopes() -> dict[str, str]:
    """operationId -> the scope its token needs, from the handlers' parameter types.

    A handler asks for a token with one of the `ReadAuth`, `OperateAuth`, `AdminAuth`
    aliases of `openvle_api.deps`; the route's name is its operationId.
    """
    from fastapi import APIRouter
    from fastapi.routing import APIRoute

    from openvle_api import deps, routers

    aliases = {"read": deps.ReadAuth, "operate": deps.OperateAuth, "admin": deps.AdminAuth}
    scopes = {}
    for info in pkgutil.iter_modules(routers.__path__, f"{routers.__name__}."):
        module = importlib.import_module(info.name)
        for router in [v for v in vars(module).values() if isinstance(v, APIRouter)]:
            for route in router.routes:
                if not isinstance(route, APIRoute):
                    continue
                hints = typing.get_type_hints(route.endpoint, include_extras=True).values()
                for scope, alias in aliases.items():
                    if any(hint == alias for hint in hints):
                        scopes[route.name] = scope
    return scopes


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation, in document order."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def schema_name(schema: dict[str, Any] | None) -> str:
    """A short type for a schema: a component's name, `array of X`, or its type."""
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        kinds = [schema_name(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(kinds) + (" or null" if len(kinds) < len(schema["anyOf"]) else "")
    if schema.get("type") == "array":
        return f"array of {schema_name(schema.get('items'))}"
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def constraints(schema: dict[str, Any]) -> str:
    """The validation rules of a schema, in words."""
    if "anyOf" in schema:
        return "; ".join(filter(None, (constraints(s) for s in schema["anyOf"])))
    words = {
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "pattern": "matches `{}`",
        "minimum": ">= {}",
        "maximum": "<= {}",
        "exclusiveMinimum": "> {}",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
    }
    found = []
    for key, template in words.items():
        if key in schema:
            value = schema[key]
            value = int(value) if isinstance(value, float) and value.is_integer() else value
            found.append(template.format(value))
    return "; ".join(found)


def body_schema(content: dict[str, Any] | None) -> str:
    """The schema name of a request or response body (first media type)."""
    for media, spec in (content or {}).items():
        return f"{schema_name(spec.get('schema'))} ({media})"
    return ""


def render_operation(method: str, path: str, op: dict[str, Any], scope: str) -> str:
    """One endpoint: what it does, its scope, parameters, body and responses."""
    lines = [f"### {op.get('summary', op['operationId'])}\n"]
    lines.append(f"`{method} {path}` · operationId `{op['operationId']}` · scope **{scope}**\n")
    if op.get("description"):
        lines.append(op["description"].strip() + "\n")
    params = op.get("parameters", [])
    if params:
        rows = [
            (
                code(p["name"]),
                p["in"],
                "yes" if p.get("required") else "no",
                cell(schema_name(p.get("schema"))),
                cell(p.get("description", "")),
                cell(constraints(p.get("schema", {}))),
            )
            for p in params
        ]
        header = ["parameter", "in", "required", "type", "meaning", "rules"]
        lines.append(table(header, rows) + "\n")
    body = op.get("requestBody")
    if body:
        lines.append(f"Request body: {body_schema(body.get('content'))}\n")
    responses = [
        (code(status), cell(spec.get("description", "")), cell(body_schema(spec.get("content"))))
        for status, spec in op.get("responses", {}).items()
    ]
    lines.append(table(["status", "meaning", "body"], responses) + "\n")
    return "\n".join(lines)


def render_endpoints() -> str:
    """A summary table, then every endpoint grouped by tag."""
    _, doc = app_and_document()
    scopes = operation_scopes()
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for method, path, op in operations(doc):
        by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    summary = [
        (code(f"{m} {p}"), scopes.get(op["operationId"], "none"), cell(op.get("summary", "")))
        for tag in by_tag
        for m, p, op in by_tag[tag]
    ]
    parts = [table(["endpoint", "scope", "what"], summary) + "\n"]
    descriptions = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    for tag, ops in by_tag.items():
        parts.append(f"## {tag.capitalize()}\n\n{descriptions.get(tag, '')}\n")
        for method, path, op in ops:
            scope = scopes.get(op["operationId"], "none")
            parts.append(render_operation(method, path, op, scope))
    return "\n".join(parts)


def render_schema(name: str, schema: dict[str, Any]) -> str:
    """One schema: its description and a row per property (or its values)."""
    lines = [f"### {name}\n"]
    if schema.get("description"):
        lines.append(schema["description"].strip() + "\n")
    if "enum" in schema:
        lines.append("One of: " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".\n")
        return "\n".join(lines)
    required = set(schema.get("required", []))
    rows = [
        (
            code(prop),
            cell(schema_name(spec)),
            "yes" if prop in required else "no",
            cell(spec.get("description", "")),
            cell(constraints(spec)),
        )
        for prop, spec in schema.get("properties", {}).items()
    ]
    if rows:
        lines.append(table(["field", "type", "required", "meaning", "rules"], rows) + "\n")
    return "\n".join(lines)


def render_schemas() -> str:
    """Every schema of the document, in alphabetical order."""
    _, doc = app_and_document()
    schemas = doc.get("components", {}).get("schemas", {})
    return "\n".join(render_schema(name, schemas[name]) for name in sorted(schemas))


def render_event_fields() -> str:
    """The rules of a new event's fields, from the schema of `POST /api/v1/events`."""
    _, doc = app_and_document()
    op = doc["paths"]["/api/v1/events"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return render_schema(ref.rsplit("/", 1)[-1], schema).split("\n", 2)[2]
