"""The OpenAPI 3.1 description of the JSON API, made from the `@json_api` declarations.

One source: the paths come from `flows.urls.api_patterns`, each operation's methods, query
parameters, body fields and sign-in from what its view declared (`view.json_api`, a
`JsonApiDeclaration`). The declarations name fields; this module only adds each name's JSON
type (`QUERY_TYPES`, `BODY_TYPES`, keyed by the field's dotted path), and a name without one is
an error when the document is made, so a new field cannot go undescribed.

Served at `GET /api/openapi.json` (signed-in callers, any role).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver

from flows.publishing.fields import MAX_REPEAT, STRING_PROPERTIES
from flows.views.json_api import JsonApiDeclaration, Schema, json_api

JsonSchema = dict[str, Any]

STRING: JsonSchema = {"type": "string"}
INTEGER_OR_TEXT: JsonSchema = {"type": ["integer", "string"]}
ANY_JSON: JsonSchema = {}

# Query parameters are strings on the wire; these say what the string must hold.
QUERY_TYPES: dict[str, JsonSchema] = {
    "vhost": STRING,
    "exchange": {"type": "string", "description": "the empty name is the default exchange"},
    "routing_key": STRING,
    "headers": {"type": "string", "description": 'a JSON object, like {"region": "eu"}'},
    "user": STRING,
    "action": STRING,
    "since": {"type": "string", "description": "an ISO 8601 moment, or a duration like 2h"},
    "limit": {"type": "integer", "minimum": 1},
    # `GET /api/messages`: one message followed through the vhost's recordings.
    "message_id": STRING,
    "correlation_id": STRING,
    "header": {"type": "string", "description": "a header's value to search for: key=value"},
    "body": {"type": "string", "description": "text to search for in bodies"},
}

HEADER_ROW: JsonSchema = {
    "type": "object",
    "properties": {"name": STRING, "type": STRING, "value": ANY_JSON},
    "additionalProperties": False,
}

# Body fields by dotted path (nested objects' own fields come from the declared Schema).
BODY_TYPES: dict[str, JsonSchema] = {
    # `POST /api/publish`: the publish form's fields (`flows.publishing.fields`).
    "vhost": STRING,
    "exchange": STRING,
    "routing_key": STRING,
    "body": {"type": "string", "description": "text, JSON text or base64, by body_encoding"},
    "body_encoding": {"enum": ["text", "json", "base64"]},
    "headers": {
        "description": "an object of header values, or a list of typed rows",
        "oneOf": [{"type": "object"}, {"type": "array", "items": HEADER_ROW}],
    },
    **{name: STRING for name in STRING_PROPERTIES},
    "delivery_mode": {"type": ["string", "integer"], "description": "persistent or transient"},
    "priority": INTEGER_OR_TEXT,
    "expiration": {"type": ["string", "integer"], "description": "milliseconds"},
    "timestamp": {"type": ["string", "integer"], "description": "seconds, or ISO 8601"},
    "mandatory": {"type": "boolean"},
    "repeat": {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT},
    "rate": {"type": "number", "exclusiveMinimum": 0},
    "idempotency_key": STRING,
    # The management API's publish body (`flows.publishing.management_body`).
    "payload": STRING,
    "payload_encoding": {"enum": ["string", "base64"]},
    **{f"properties.{name}": STRING for name in STRING_PROPERTIES},
    "properties.delivery_mode": {"enum": [1, 2]},
    "properties.priority": {"type": "integer", "minimum": 0, "maximum": 255},
    "properties.expiration": STRING,
    "properties.timestamp": {"type": "integer", "minimum": 0},
    "properties.headers": {"type": "object"},
}
# Bodies whose every field is required (the management API's, which requires them too).
REQUIRED_BODY_FIELDS: dict[str, tuple[str, ...]] = {
    "api-mgmt-publish": ("routing_key", "payload", "payload_encoding", "properties"),
}

ERROR_BODY: JsonSchema = {
    "type": "object",
    "required": ["error", "fields"],
    "properties": {
        "error": {"type": "string", "description": "one sentence for a person"},
        "fields": {
            "type": "object",
            "description": "each request field to blame (dotted when nested), with its problem",
            "additionalProperties": {"type": "string"},
        },
    },
    "additionalProperties": False,
}
ERROR_STATUSES: dict[str, str] = {
    "400": "bad input: malformed JSON, an unknown field or parameter, an invalid value",
    "401": "not signed in (a session cookie, or HTTP Basic with a dashboard account)",
    "403": "signed in but not allowed (role, vhost limits, read-only dashboard)",
    "404": "no such object (vhost, exchange, run)",
    "405": "a method this endpoint does not take (see Allow)",
    "413": "a body too large to read",
    "415": "a body that is not Content-Type: application/json",
    "502": "the broker refused the dashboard",
    "503": "the broker does not answer",
}
SUCCESS_STATUSES: dict[str, dict[str, str]] = {
    "api-publish": {"200": "published", "202": "a repeat run started (see run_url)"},
    "api-topology": {"200": "the vhost's topology", "304": "unchanged since the given ETag"},
}
SUMMARIES: dict[str, str] = {
    "api-openapi": "This document",
    "api-publish": "Publish a message (the publish form's fields)",
    "api-publish-run": "A repeat run's progress",
    "api-publish-run-cancel": "Stop a repeat run",
    "api-mgmt-publish": "Publish with RabbitMQ's management API body ({vhost}/{exchange})",
    "api-topology": "A vhost's exchanges, queues and bindings",
    "api-route": "Dry run: where a message would go",
    "api-audit": "The audit log (admins)",
}


def path_template(pattern: URLPattern) -> str:
    """`publish/runs/<str:run_id>` or `^exchanges/(?P<names>.+)/publish$` as an OpenAPI path."""
    text = str(pattern.pattern)
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
    return "/api/" + text.removeprefix("^").removesuffix("$")


def body_schema(schema: Schema, *, prefix: str = "", required: tuple[str, ...] = ()) -> JsonSchema:
    properties: dict[str, JsonSchema] = {}
    for name, nested in schema.items():
        dotted = f"{prefix}{name}"
        if nested is not None:
            properties[name] = body_schema(nested, prefix=f"{dotted}.")
        elif dotted in BODY_TYPES:
            properties[name] = BODY_TYPES[dotted]
        else:
            raise LookupError(f"body field {dotted!r} has no type in flows.views.openapi")
    described: JsonSchema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        described["required"] = list(required)
    return described


def query_parameter(name: str) -> JsonSchema:
    if name not in QUERY_TYPES:
        raise LookupError(f"query parameter {name!r} has no type in flows.views.openapi")
    return {"name": name, "in": "query", "required": False, "schema": QUERY_TYPES[name]}


def operation(name: str, declared: JsonApiDeclaration, method: str, path: str) -> JsonSchema:
    parameters = [
        {"name": part, "in": "path", "required": True, "schema": STRING}
        for part in re.findall(r"{(\w+)}", path)
    ]
    parameters += [query_parameter(query) for query in declared.query]
    successes = SUCCESS_STATUSES.get(name, {"200": "done"})
    responses: dict[str, Any] = {
        status: {"description": text, "content": {"application/json": {"schema": ANY_JSON}}}
        if status != "304"
        else {"description": text}
        for status, text in successes.items()
    }
    for status in ERROR_STATUSES:
        if status in {"413", "415"} and method == "get":
            continue
        if status in {"401", "403"} and not declared.signed_in:
            continue
        responses[status] = {"$ref": f"#/components/responses/Error{status}"}
    described: JsonSchema = {
        "operationId": name,
        "summary": SUMMARIES.get(name, name),
        "x-flows-action": declared.action.value,
        "parameters": parameters,
        "responses": responses,
    }
    if method == "post":
        fields = declared.body or {}
        described["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {
                    "schema": body_schema(fields, required=REQUIRED_BODY_FIELDS.get(name, ()))
                }
            },
        }
    if not declared.signed_in:
        described["security"] = []
    return described


def api_endpoints() -> list[tuple[str, str, JsonApiDeclaration]]:
    """(URL name, OpenAPI path, declaration) of every described `/api/` endpoint."""
    from flows.urls import api_patterns  # flows.urls imports this module's view

    endpoints = []
    for pattern in api_patterns:
        if isinstance(pattern, URLResolver) or pattern.name == "api-not-found":
            continue
        declared = getattr(pattern.callback, "json_api", None)
        if not isinstance(declared, JsonApiDeclaration):
            raise TypeError(f"/api/ endpoint {pattern.name} is not a @json_api view")
        endpoints.append((str(pattern.name), path_template(pattern), declared))
    return endpoints


def openapi_document() -> JsonSchema:
    paths: dict[str, dict[str, Any]] = {}
    for name, path, declared in api_endpoints():
        operations = paths.setdefault(path, {})
        for method in declared.methods:
            operations[method.lower()] = operation(name, declared, method.lower(), path)
    responses: Mapping[str, Any] = {
        f"Error{status}": {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status, text in ERROR_STATUSES.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flows dashboard JSON API",
            "version": "1",
            "description": "Every answer is JSON; every error is {error, fields}. "
            "Unknown query parameters and body fields are refused with a 400.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_BODY},
            "responses": dict(responses),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
        },
        "security": [{"basic": []}, {"session": []}],
    }


@json_api
def api_openapi(request: HttpRequest) -> JsonSchema:
    return openapi_document()


__all__ = ["api_endpoints", "api_openapi", "openapi_document", "path_template"]
