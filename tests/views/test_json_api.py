"""The one convention every `/api/` endpoint follows (`flows/views/json_api.py`).

Endpoint-specific answers are tested with their endpoints (tests/views/test_topology_api.py,
tests/views/test_publish_api.py); here: what holds for any of them, with no broker involved.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from flows.views.json_api import ApiError, unknown_fields
from tests.support.accounts import make_user

pytestmark = pytest.mark.django_db

SCHEMA = {"name": None, "properties": {"headers": None, "priority": None}}


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"name": "x", "properties": {"priority": 1}}, {}),
        # A name mapped to None takes any value, nested objects included (a header table).
        ({"properties": {"headers": {"anything": {"goes": 1}}}}, {}),
        ({"nmae": 1}, {"nmae": "unknown field; did you mean 'name'?"}),
        ({"colour": 1}, {"colour": "unknown field"}),
        (
            {"properties": {"prio": 1}},
            {"properties.prio": "unknown field; did you mean 'priority'?"},
        ),
        ({"a": 1, "properties": {"b": 2}}, {"a": "unknown field", "properties.b": "unknown field"}),
        # A nested field that is not an object is the value checks' business, not this one's.
        ({"properties": "none"}, {}),
    ],
)
def test_unknown_fields_are_named_nested_ones_by_their_path(data, errors):
    assert unknown_fields(data, SCHEMA) == errors


def test_an_error_blames_one_field_with_its_message_or_several_with_theirs():
    assert ApiError("bad", field="a").fields == {"a": "bad"}
    several = ApiError("Some fields are not valid", fields={"a": "too big", "b": "missing"})
    assert several.fields == {"a": "too big", "b": "missing"}
    assert ApiError("down", status=503).fields == {}


@pytest.fixture
def signed_in(client: Client, django_user_model) -> Client:
    """A publisher: the bodies below reach the publish endpoint's own checks."""
    client.force_login(make_user("api-user", role="publisher"))
    return client


@pytest.mark.parametrize("path", ["/api/nope", "/api/topology/", "/api/publish/", "/api/"])
def test_any_other_api_path_is_a_json_404_not_an_html_page_or_a_redirect(signed_in, path):
    for response in (signed_in.get(path), signed_in.post(path)):
        assert response.status_code == 404
        assert response.json() == {"error": f"No API endpoint at {path}", "fields": {}}


# Found by the fuzz (tests/views/test_api_fuzz.py): `.` in the URL regexes stopped at a
# newline, so these fell through to Django's HTML 404.
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/line%0Abreak", 404),
        # Reaches the view, which publishes to the vhost "a\nb": the broker, which has no such
        # vhost, refuses the publisher's connection (a 502 on `vhost`: the broker's refusal).
        ("/api/exchanges/a%0Ab/amq.default/publish", 502),
    ],
)
def test_a_newline_in_an_api_path_still_gets_a_json_answer(signed_in, path, status):
    body = {"routing_key": "k", "payload": "x", "payload_encoding": "string", "properties": {}}
    response = signed_in.post(path, data=body, content_type="application/json")
    assert response.status_code == status
    assert set(response.json()) == {"error", "fields"}


def test_an_anonymous_caller_of_any_api_path_gets_a_json_401(client: Client):
    for path in ("/api/nope", "/api/topology", "/api/publish/runs/x"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json()["fields"] == {}
        assert response["WWW-Authenticate"] == 'Basic realm="flows"'


def test_a_pages_own_fetch_gets_the_401_without_the_password_dialogs_challenge(client: Client):
    response = client.get("/api/topology", headers={"Sec-Fetch-Mode": "cors"})
    assert response.status_code == 401
    assert "Sign in" in response.json()["error"]
    assert "WWW-Authenticate" not in response


def test_http_basic_with_a_dashboard_account_signs_in_to_every_endpoint(
    client: Client, django_user_model
):
    make_user("script", password="pw-script-1")

    def basic(credentials: bytes) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    known = client.get("/api/publish/runs/none", headers=basic(b"script:pw-script-1"))
    assert (known.status_code, known.json()["error"]) == (404, "No such repeat run")
    for credentials in (b"script:wrong", b"nobody:pw-script-1", b"no-colon"):
        assert client.get("/api/publish/runs/none", headers=basic(credentials)).status_code == 401
    garbled = client.get("/api/publish/runs/none", headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401


def test_query_parameters_an_endpoint_does_not_take_are_refused(signed_in):
    response = signed_in.post("/api/publish?dry=1", data="{}", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Unknown query parameter 'dry'",
        "fields": {"dry": "unknown query parameter"},
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ("[" * 100_000, "application/json", 400, "not valid JSON"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        ('"a string"', "application/json", 400, "must be a JSON object"),
        # Read (the charset is fine), then refused for what it lacks.
        ("{}", "application/json; charset=utf-8", 400, "Some fields are not valid"),
        ("{}", "text/json", 415, "Content-Type: application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_json_error(
    signed_in, body, content_type, status, error
):
    response = signed_in.post("/api/publish", data=body, content_type=content_type)
    assert response.status_code == status
    assert error in response.json()["error"]


def test_a_body_too_large_to_read_is_a_json_413(signed_in, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = "{}" + " " * 200
    response = signed_in.post("/api/publish", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"error": "The request body is too large", "fields": {}}
