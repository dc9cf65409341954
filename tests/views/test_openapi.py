"""The OpenAPI document of the JSON API (`flows/views/openapi.py`): valid, served, complete.

The fuzz that holds the API to it is tests/views/test_api_fuzz.py.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver
from openapi_spec_validator import validate

from flows.urls import api_patterns
from flows.views import openapi
from flows.views.json_api import json_api
from tests.support.accounts import make_user

pytestmark = pytest.mark.django_db


def test_the_served_document_is_valid_openapi_3_1(client):
    client.force_login(make_user("spec-reader"))
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_is_for_signed_in_callers_only(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 401
    assert set(response.json()) == {"error", "fields"}


def test_every_api_endpoint_and_method_is_described():
    document = openapi.openapi_document()
    described = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    expected = {
        (openapi.path_template(pattern), method.lower())
        for pattern in api_patterns
        if isinstance(pattern, URLPattern) and pattern.name != "api-not-found"
        for method in pattern.callback.json_api.methods
    }
    assert described == expected
    assert ("/api/exchanges/{names}/publish", "post") in described
    # Every URL of the table under /api/ resolves to one of them (or the JSON 404).
    assert get_resolver().resolve("/api/openapi.json").url_name == "api-openapi"


def test_each_declared_query_parameter_and_body_field_is_typed():
    document = openapi.openapi_document()
    route = document["paths"]["/api/route"]["get"]
    assert [p["name"] for p in route["parameters"]] == [
        "vhost",
        "exchange",
        "routing_key",
        "headers",
    ]
    body = document["paths"]["/api/exchanges/{names}/publish"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["required"] == ["routing_key", "payload", "payload_encoding", "properties"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["properties"]["properties"]["priority"]["maximum"] == 255
    for status in ("400", "401", "403", "404", "405", "413", "415", "502", "503"):
        assert status in document["paths"]["/api/publish"]["post"]["responses"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "fields"]


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"query": ("colour",)}, "query parameter 'colour' has no type"),
        ({"methods": ("POST",), "body": {"properties": {"hue": None}}}, "'properties.hue'"),
    ],
)
def test_a_field_without_a_type_stops_the_document_being_made(declaration, message):
    view = json_api(lambda request: {}, **declaration)
    with pytest.raises(LookupError, match=message):
        openapi.operation(
            "x", view.json_api, view.json_api.methods[0].lower(), "/api/x"
        )  # the document is made of these
