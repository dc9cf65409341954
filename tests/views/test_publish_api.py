"""The publishing API against the real broker: every answer is JSON, never a 500.

`POST /api/publish` (the native body), `POST /api/exchanges/<vhost>/<exchange>/publish`
(the management API's body), and the repeat runs' endpoints.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings

from flows.broker.management_api import ManagementClient, api_path
from flows.runtime import runtime
from tests.support.accounts import TEST_PASSWORD, dashboard_users, make_user
from tests.support.broker_admin import create_vhost_for
from tests.support.publishing import (
    DemoTopology,
    bare_connection,
    close_publisher_connection,
    grant_publish,
)
from tests.support.tap_harness import running_tap

pytestmark = pytest.mark.django_db


def refused_fields(response) -> dict[str, str]:
    """The fields a publish was refused for (a 400), each with why."""
    assert response.status_code == 400, response.content
    return response.json()["fields"]


def test_a_routed_publish_answers_confirmed_routed_and_the_predicted_queues(api, demo):
    response = api.post_json(demo.fields())
    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["confirmed"], data["returned"]) == ("routed", True, False)
    assert data["routed"] is True
    assert data["predicted"]["queues"] == ["q.a", "q.all"]
    assert data["observed_queues"] is None
    assert data["message_id"]
    assert demo.wait_for_depth("q.a", 1) == 1


def test_an_unroutable_publish_answers_returned_with_the_reply(api, demo):
    data = api.post_json(demo.fields(exchange="demo.direct", routing_key="nobody")).json()
    assert (data["status"], data["returned"], data["routed"]) == ("unroutable", True, False)
    assert (data["reply_code"], data["reply_text"]) == (312, "NO_ROUTE")
    assert data["predicted"]["queues"] == []


def test_a_nacked_publish_says_so(api, demo):
    data = api.post_json(demo.fields(exchange="demo.direct", routing_key="full")).json()
    assert (data["status"], data["confirmed"], data["nacked"]) == ("nacked", False, True)
    assert data["predicted"]["queues"] == ["q.full"]


def test_the_default_exchange_routes_to_the_named_queue(api, demo):
    data = api.post_json(demo.fields(exchange="", routing_key="q.a")).json()
    assert (data["status"], data["predicted"]["queues"]) == ("routed", ["q.a"])


def test_a_nonexistent_exchange_is_a_404_on_the_exchange_field_then_publishing_works(api, demo):
    response = api.post_json(demo.fields(exchange="nope"))
    assert response.status_code == 404
    assert "no exchange 'nope'" in response.json()["fields"]["exchange"]
    assert api.post_json(demo.fields()).json()["status"] == "routed"


def test_field_errors_are_named(api, demo):
    response = api.post_json(
        demo.fields(
            priority=300,
            expiration="-1",
            body="{",
            body_encoding="json",
            headers={"n": 1, "bad": None},
            routing_key="k" * 256,
        )
    )
    assert set(refused_fields(response)) == {
        "priority",
        "expiration",
        "body",
        "headers.1.value",
        "routing_key",
    }


def test_a_body_over_the_limit_is_refused_on_the_body(api, demo, settings):
    settings.FLOWS_PUBLISH_MAX_BODY_BYTES = 16
    response = api.post_json(demo.fields(body="x" * 17))
    assert "limit is 16 bytes" in refused_fields(response)["body"]


def test_base64_bodies_are_published_as_bytes(api, demo):
    payload = bytes(range(256))
    data = api.post_json(
        demo.fields(body=base64.b64encode(payload).decode(), body_encoding="base64")
    ).json()
    assert data["status"] == "routed" and data["body_bytes"] == 256


def test_anonymous_requests_get_a_json_401_not_a_redirect(client, demo):
    response = client.post("/api/publish", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert "Sign in" in response.json()["error"]
    assert response.json()["fields"] == {}
    assert response["WWW-Authenticate"].startswith("Basic")


def test_http_basic_with_a_dashboard_account_works(client, demo, publisher_user):
    token = base64.b64encode(b"pub:pw-for-tests-1").decode()
    response = client.post(
        "/api/publish",
        data=json.dumps(demo.fields()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {token}",
    )
    assert response.status_code == 200
    wrong = base64.b64encode(b"pub:wrong").decode()
    response = client.post(
        "/api/publish",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {wrong}",
    )
    assert response.status_code == 401


def test_a_user_without_the_permission_gets_403(client, demo, django_user_model):
    user = make_user("nobody")
    client.force_login(user)
    response = client.post(
        "/api/publish", data=json.dumps(demo.fields()), content_type="application/json"
    )
    assert response.status_code == 403
    assert "flows.publish_messages" in response.json()["error"]
    assert demo.depth("q.a") == 0


def test_superusers_may_publish(client, demo, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    )
    response = client.post(
        "/api/publish", data=json.dumps(demo.fields()), content_type="application/json"
    )
    assert response.status_code == 200


def test_the_allow_list_refuses_other_exchanges_clearly(api, demo, settings):
    settings.FLOWS_PUBLISH_EXCHANGES = ["test.*", "demo.t*"]
    assert api.post_json(demo.fields()).status_code == 200
    response = api.post_json(demo.fields(exchange="demo.direct"))
    assert response.status_code == 403
    message = response.json()["fields"]["exchange"]
    assert "demo.direct" in message and "test.*, demo.t*" in message
    response = api.post_json(demo.fields(exchange="", routing_key="q.a"))
    assert "default exchange" in response.json()["fields"]["exchange"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("vhost=x", "application/x-www-form-urlencoded", 415),
        ("{}", "text/plain", 415),
    ],
)
def test_malformed_requests_are_json_errors(api, body, content_type, status):
    response = api.post("/api/publish", data=body, content_type=content_type)
    assert response.status_code == status
    assert set(response.json()) == {"error", "fields"}


def test_get_is_not_allowed(api):
    response = api.get("/api/publish")
    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert "not allowed" in response.json()["error"]


def test_a_broker_that_cannot_be_reached_is_a_503(api, demo, settings):
    from tests.support.live_server import free_port

    settings.AMQP_URL = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    response = api.post_json(demo.fields())
    assert response.status_code == 503
    assert "unreachable" in response.json()["error"]
    assert "s3cret" not in response.content.decode()


def test_a_dropped_connection_is_a_clear_error_or_reconnects_and_then_publishing_works(api, demo):
    assert api.post_json(demo.fields()).status_code == 200
    close_publisher_connection(demo.client, demo.vhost)
    # Whether the publisher noticed first (reconnects) or finds out while publishing
    # (503, "connection ... lost"), there is no 500, and the publish after that works.
    first = api.post_json(demo.fields())
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert "connection" in first.json()["error"].lower()
    assert api.post_json(demo.fields()).json()["status"] == "routed"


def test_the_same_idempotency_key_publishes_once(api, demo, publisher_user):
    from flows.publishing.service import publish_message

    # Threads cannot see the test's uncommitted database: load the permissions first.
    assert publisher_user.has_perm("flows.publish_messages")
    results = []

    def submit():
        results.append(publish_message(publisher_user, demo.fields(), idempotency_key="k-1"))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.outcome.status for r in results] == ["routed"] * 4
    assert len({r.request.message_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert demo.wait_for_depth("q.a", 1) == 1
    # Through the API too, and a new key publishes again.
    first = api.post_json(demo.fields(idempotency_key="k-2")).json()
    again = api.post_json(demo.fields(idempotency_key="k-2")).json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["message_id"] == again["message_id"]
    assert demo.wait_for_depth("q.a", 2) == 2


def test_a_repeat_run_is_started_polled_and_cancelled(api, demo):
    response = api.post_json(demo.fields(repeat=100000, rate=500))
    assert response.status_code == 202
    run_url = response.json()["run_url"]
    progress = api.get(run_url).json()["run"]
    assert progress["total"] == 100000
    cancelled = api.post(run_url + "/cancel", content_type="application/json").json()["run"]
    assert cancelled["state"] == "cancelled"
    assert cancelled["published"] < 100000
    assert runtime().publishers.find_run(cancelled["id"]).finished


@pytest.mark.django_db(transaction=True)
def test_with_a_firehose_tap_running_the_answer_carries_the_observed_queues(api, demo):
    # A firehose tap in this process (as when someone watches the vhost live) sees the
    # broker's own routing; the API answers with it beside the prediction.
    with running_tap(demo.vhost, "firehose"):
        routed = api.post_json(demo.fields(message_id="observed-1")).json()
        unroutable = api.post_json(
            demo.fields(exchange="demo.direct", routing_key="nobody", message_id="observed-2")
        ).json()
        # The same message id again: the answer is about this publish, not the earlier one.
        again = api.post_json(
            demo.fields(exchange="demo.direct", routing_key="nobody", message_id="observed-1")
        ).json()
    assert routed["observed_queues"] == ["q.a", "q.all"]
    assert routed["predicted"]["queues"] == ["q.a", "q.all"]
    assert unroutable["observed_queues"] == []
    assert again["observed_queues"] == []


# --- unknown fields -----------------------------------------------------------------------------


def test_unknown_fields_are_refused_naming_each_and_nothing_is_published(api, demo):
    response = api.post_json(demo.fields(colour="red", routingkey="a.b"))
    assert refused_fields(response) == {
        "colour": "unknown field",
        "routingkey": "unknown field; did you mean 'routing_key'?",
    }
    assert "'colour'" in response.json()["error"]
    # The next, valid publish is the only one q.a gets.
    assert api.post_json(demo.fields()).json()["status"] == "routed"
    assert demo.wait_for_depth("q.a", 1) == 1


def test_unknown_keys_of_a_header_row_are_refused(api, demo):
    rows = [{"name": "n", "type": "int", "value": 1}, {"name": "m", "value": "x", "kind": "s"}]
    response = api.post_json(demo.fields(headers=rows))
    assert list(refused_fields(response)) == ["headers.1.kind"]


def test_a_cancel_takes_no_fields_and_only_json(api, demo):
    run_url = api.post_json(demo.fields(repeat=100000, rate=200)).json()["run_url"]
    refused = api.post(run_url + "/cancel", data='{"force": true}', content_type="application/json")
    assert (refused.status_code, refused.json()["fields"]) == (400, {"force": "unknown field"})
    as_form = api.post(run_url + "/cancel")
    assert as_form.status_code == 415
    assert api.get(run_url).json()["run"]["state"] in {"waiting", "running"}
    cancelled = api.post(run_url + "/cancel", data="{}", content_type="application/json")
    assert cancelled.json()["run"]["state"] == "cancelled"


def test_a_run_takes_no_query_parameters(api, demo):
    run_url = api.post_json(demo.fields(repeat=2)).json()["run_url"]
    response = api.get(run_url, {"verbose": "1"})
    assert (response.status_code, response.json()["fields"]) == (
        400,
        {"verbose": "unknown query parameter"},
    )


# --- the management API's body ------------------------------------------------------------------


def management_url(vhost: str, exchange: str) -> str:
    return f"/{api_path('exchanges', vhost, exchange, 'publish')}"


def management_body(**extra: Any) -> dict[str, Any]:
    return {
        "properties": {},
        "routing_key": "a.b",
        "payload": "hi",
        "payload_encoding": "string",
        **extra,
    }


def test_the_management_body_publishes_and_answers_routed(api, demo):
    response = api.post_json(management_body(), path=management_url(demo.vhost, "demo.topic"))
    assert response.status_code == 200
    data = response.json()
    assert (data["routed"], data["status"], data["confirmed"]) == (True, "routed", True)
    assert data["predicted"]["queues"] == ["q.a", "q.all"]
    assert (data["vhost"], data["exchange"], data["mandatory"]) == (demo.vhost, "demo.topic", True)
    unroutable = api.post_json(
        management_body(routing_key="nobody"), path=management_url(demo.vhost, "demo.direct")
    ).json()
    assert (unroutable["routed"], unroutable["reply_text"]) == (False, "NO_ROUTE")


def test_amq_default_in_the_management_url_is_the_default_exchange(api, demo):
    data = api.post_json(
        management_body(routing_key="q.a"), path=management_url(demo.vhost, "amq.default")
    ).json()
    assert (data["exchange"], data["routed"], data["predicted"]["queues"]) == ("", True, ["q.a"])
    assert demo.wait_for_depth("q.a", 1) == 1


def test_management_body_errors_name_the_fields_as_the_caller_sent_them(api, demo, settings):
    body = management_body(
        properties={
            "priority": 300,
            "delivery_mode": "often",
            "headers": {"ok": 1, "bad": None},
            "colour": "red",
        },
        payload="x" * 17,
    )
    url = management_url(demo.vhost, "demo.topic")
    response = api.post_json(body, path=url)
    assert (response.status_code, response.json()["fields"]) == (
        400,
        {"properties.colour": "unknown field"},
    )
    del body["properties"]["colour"]
    settings.FLOWS_PUBLISH_MAX_BODY_BYTES = 16
    response = api.post_json(body, path=url)
    assert set(refused_fields(response)) == {
        "properties.priority",
        "properties.delivery_mode",
        "properties.headers.1.value",
        "payload",
    }
    assert "limit is 16 bytes" in response.json()["fields"]["payload"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"payload": "hi"}, {"properties", "routing_key", "payload_encoding"}),
        (management_body(payload_encoding="hex"), {"payload_encoding"}),
        (management_body(payload={"a": 1}), {"payload"}),
        (management_body(properties=[]), {"properties"}),
        (management_body(payload="!!", payload_encoding="base64"), {"payload"}),
        (management_body(vhost="/"), {"vhost"}),
    ],
)
def test_a_malformed_management_body_is_a_400_naming_its_fields(api, demo, body, fields):
    response = api.post_json(body, path=management_url(demo.vhost, "demo.topic"))
    assert (response.status_code, set(response.json()["fields"])) == (400, fields)


def test_a_management_publish_to_a_missing_exchange_is_a_404_on_the_exchange(api, demo):
    response = api.post_json(management_body(), path=management_url(demo.vhost, "nope"))
    assert response.status_code == 404
    assert "no exchange 'nope'" in response.json()["fields"]["exchange"]


def test_the_management_url_wants_a_signed_in_user_and_json(client, demo, publisher_user):
    url = management_url(demo.vhost, "demo.topic")
    body = json.dumps(management_body())
    anonymous = client.post(url, data=body, content_type="application/json")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Basic")
    client.force_login(publisher_user)
    assert client.post(url, data={"payload": "hi"}).status_code == 415


# --- the same message, whichever body ------------------------------------------------------------

HEADERS = {
    "attempt": 1,
    "big": 2**40,
    "ratio": 0.5,
    "urgent": True,
    "city": "Zürich",
    "meta": {"a": [1, "two", False], "b": {"c": -2.25}},
}
PROPERTIES = {
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "correlation_id": "corr-1",
    "reply_to": "replies",
    "message_id": "same-message",
    "type": "order.paid",
    "app_id": "a script",
    "expiration": "60000",
    "priority": 5,
}


def native_body(demo: DemoTopology, payload: bytes) -> dict[str, Any]:
    """The message in the native body, with its own spellings where it has them."""
    return demo.fields(
        body=base64.b64encode(payload).decode(),
        body_encoding="base64",
        headers=HEADERS,
        delivery_mode="persistent",
        timestamp="2026-01-31T12:00:00Z",
        **PROPERTIES,
    )


def rabbitmq_body(payload: bytes) -> dict[str, Any]:
    """The message as RabbitMQ's own management API takes it."""
    return management_body(
        payload=base64.b64encode(payload).decode(),
        payload_encoding="base64",
        properties={**PROPERTIES, "headers": HEADERS, "delivery_mode": 2, "timestamp": 1769860800},
    )


def typed(value: Any) -> Any:
    """A value with the Python type of every part spelled out (1 and 1.0 and True differ)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def take(vhost: str, queue: str, count: int) -> list[dict[str, Any]]:
    """The next `count` messages of a queue: routing, body and every basic property."""
    connection = bare_connection(vhost)
    try:
        channel = connection.channel()
        messages = []
        for _ in range(count):
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            assert method is not None, f"only {len(messages)} of {count} messages in {queue}"
            messages.append(
                {
                    "exchange": method.exchange,
                    "routing_key": method.routing_key,
                    "body": body,
                    "headers": typed(properties.headers),
                    **{
                        name: getattr(properties, name)
                        for name in (*PROPERTIES, "delivery_mode", "timestamp", "user_id")
                    },
                }
            )
        return messages
    finally:
        connection.close()


@pytest.mark.parametrize("payload", ['{"flavour": "vanilla ü"}'.encode(), bytes(range(256))])
def test_the_management_body_and_the_native_body_publish_the_same_message_as_rabbitmq(
    api, demo, management_client: ManagementClient, payload: bytes
):
    # RabbitMQ's own endpoint first, as a reference: the dashboard must publish what it does.
    reference = management_client.request(
        "POST", management_url(demo.vhost, "demo.topic"), json=rabbitmq_body(payload)
    )
    assert reference == {"routed": True}
    ours = api.post_json(rabbitmq_body(payload), path=management_url(demo.vhost, "demo.topic"))
    native = api.post_json(native_body(demo, payload))
    assert (ours.json()["routed"], native.json()["routed"]) == (True, True)
    from_rabbitmq, from_management_body, from_native_body = take(demo.vhost, "q.a", 3)
    assert from_rabbitmq["body"] == payload
    assert from_rabbitmq["headers"]["meta"]["b"]["c"] == ("float", -2.25)
    assert from_rabbitmq["user_id"] is None
    assert from_management_body == from_rabbitmq
    assert from_native_body == from_rabbitmq


@pytest.fixture
def slashed_vhost(management_client: ManagementClient):
    """A vhost whose name holds a slash, with an exchange whose name holds one too."""
    vhost = f"flows-test-{uuid.uuid4().hex[:6]}/a%2Fb"
    create_vhost_for(management_client, vhost, dashboard_users())
    management_client.declare_exchange(vhost, "x/y", exchange_type="fanout")
    management_client.declare_queue(vhost, "q", durable=False)
    management_client.bind(vhost, "x/y", "q")
    yield vhost
    management_client.remove_vhost(vhost)


@pytest.mark.django_db(transaction=True)
def test_a_management_api_script_works_against_the_dashboard_by_changing_its_base_url(
    live_dashboard, user, slashed_vhost
):
    grant_publish(user)
    rabbitmq = (
        django_settings.RABBITMQ_API_URL.rstrip("/"),
        (django_settings.RABBITMQ_API_USER, django_settings.RABBITMQ_API_PASSWORD),
    )
    dashboard = (live_dashboard.url, (user.username, TEST_PASSWORD))
    answers = []
    for base_url, credentials in (rabbitmq, dashboard):
        # The script: names percent-encoded (slashes too), as the management API wants them.
        for exchange, routing_key in (("x/y", "any"), ("amq.default", "q")):
            response = httpx.post(
                base_url + management_url(slashed_vhost, exchange),
                auth=credentials,
                json=management_body(routing_key=routing_key),
            )
            answers.append((response.status_code, response.json()["routed"]))
    assert answers == [(200, True)] * 4
    assert [message["body"] for message in take(slashed_vhost, "q", 4)] == [b"hi"] * 4


def test_a_vhost_the_broker_refuses_is_a_502_on_the_vhost_field(api):
    response = api.post(
        "/api/publish",
        {"vhost": "flows-test-no-such-vhost", "exchange": "", "routing_key": "k", "body": "x"},
        content_type="application/json",
    )
    assert response.status_code == 502
    answer = response.json()
    assert "refused access to vhost 'flows-test-no-such-vhost'" in answer["fields"]["vhost"]
