"""`POST /api/publish` against the real broker: every answer is JSON, never a 500."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from flows.publishing.publisher import find_run
from tests.publishing.conftest import DemoTopology, close_publisher_connection
from tests.tap.helpers import running_tap

pytestmark = pytest.mark.django_db


def fields(demo: DemoTopology, **extra):
    return {
        "vhost": demo.vhost,
        "exchange": "demo.topic",
        "routing_key": "a.b",
        "body": "hi",
        **extra,
    }


def test_a_routed_publish_answers_confirmed_routed_and_the_predicted_queues(api, demo):
    response = api.post_json(fields(demo))
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True
    assert (data["status"], data["confirmed"], data["returned"]) == ("routed", True, False)
    assert data["predicted"]["queues"] == ["q.a", "q.all"]
    assert data["observed_queues"] is None
    assert data["message_id"]
    assert demo.wait_for_depth("q.a", 1) == 1


def test_an_unroutable_publish_answers_returned_with_the_reply(api, demo):
    data = api.post_json(fields(demo, exchange="demo.direct", routing_key="nobody")).json()
    assert (data["status"], data["returned"]) == ("unroutable", True)
    assert (data["reply_code"], data["reply_text"]) == (312, "NO_ROUTE")
    assert data["predicted"]["queues"] == []


def test_a_nacked_publish_says_so(api, demo):
    data = api.post_json(fields(demo, exchange="demo.direct", routing_key="full")).json()
    assert (data["status"], data["confirmed"], data["nacked"]) == ("nacked", False, True)
    assert data["predicted"]["queues"] == ["q.full"]


def test_the_default_exchange_routes_to_the_named_queue(api, demo):
    data = api.post_json(fields(demo, exchange="", routing_key="q.a")).json()
    assert (data["status"], data["predicted"]["queues"]) == ("routed", ["q.a"])


def test_a_nonexistent_exchange_is_a_404_on_the_exchange_field_then_publishing_works(api, demo):
    response = api.post_json(fields(demo, exchange="nope"))
    assert response.status_code == 404
    assert "no exchange 'nope'" in response.json()["fields"]["exchange"]
    assert api.post_json(fields(demo)).json()["status"] == "routed"


def test_field_errors_are_named(api, demo):
    response = api.post_json(
        fields(
            demo,
            priority=300,
            expiration="-1",
            body="{",
            body_encoding="json",
            headers={"n": 1, "bad": None},
            routing_key="k" * 256,
        )
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {
        "priority",
        "expiration",
        "body",
        "headers.1.value",
        "routing_key",
    }


def test_a_body_over_the_limit_is_refused_on_the_body(api, demo, settings):
    settings.FLOWS_PUBLISH_MAX_BODY_BYTES = 16
    response = api.post_json(fields(demo, body="x" * 17))
    assert response.status_code == 400
    assert "limit is 16 bytes" in response.json()["fields"]["body"]


def test_base64_bodies_are_published_as_bytes(api, demo):
    payload = bytes(range(256))
    data = api.post_json(
        fields(demo, body=base64.b64encode(payload).decode(), body_encoding="base64")
    ).json()
    assert data["status"] == "routed" and data["body_bytes"] == 256


def test_anonymous_requests_get_a_json_401_not_a_redirect(client, demo):
    response = client.post("/api/publish", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["ok"] is False
    assert response["WWW-Authenticate"].startswith("Basic")


def test_http_basic_with_a_dashboard_account_works(client, demo, publisher_user):
    token = base64.b64encode(b"pub:pw-for-tests-1").decode()
    response = client.post(
        "/api/publish",
        data=json.dumps(fields(demo)),
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
    user = django_user_model.objects.create_user(username="nobody", password="x-pw-12345")
    client.force_login(user)
    response = client.post(
        "/api/publish", data=json.dumps(fields(demo)), content_type="application/json"
    )
    assert response.status_code == 403
    assert "flows.publish_messages" in response.json()["error"]
    assert demo.depth("q.a") == 0


def test_superusers_may_publish(client, demo, django_user_model):
    client.force_login(
        django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    )
    response = client.post(
        "/api/publish", data=json.dumps(fields(demo)), content_type="application/json"
    )
    assert response.status_code == 200


def test_the_allow_list_refuses_other_exchanges_clearly(api, demo, settings):
    settings.FLOWS_PUBLISH_EXCHANGES = ["test.*", "demo.t*"]
    assert api.post_json(fields(demo)).status_code == 200
    response = api.post_json(fields(demo, exchange="demo.direct"))
    assert response.status_code == 403
    message = response.json()["fields"]["exchange"]
    assert "demo.direct" in message and "test.*, demo.t*" in message
    response = api.post_json(fields(demo, exchange="", routing_key="q.a"))
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
    assert response.json()["ok"] is False


def test_get_is_not_allowed(api):
    assert api.get("/api/publish").status_code == 405


def test_a_broker_that_cannot_be_reached_is_a_503(api, demo, settings):
    from tests.live_server import free_port

    settings.AMQP_URL = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    response = api.post_json(fields(demo))
    assert response.status_code == 503
    assert "unreachable" in response.json()["error"]
    assert "s3cret" not in response.content.decode()


def test_a_dropped_connection_is_a_clear_error_or_reconnects_and_then_publishing_works(api, demo):
    assert api.post_json(fields(demo)).status_code == 200
    close_publisher_connection(demo.client, demo.vhost)
    # Whether the publisher noticed first (reconnects) or finds out while publishing
    # (503, "connection ... lost"), there is no 500, and the publish after that works.
    first = api.post_json(fields(demo))
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert "connection" in first.json()["error"].lower()
    assert api.post_json(fields(demo)).json()["status"] == "routed"


def test_the_same_idempotency_key_publishes_once(api, demo, publisher_user):
    from flows.publishing.service import publish_message

    # Threads cannot see the test's uncommitted database: load the permissions first.
    assert publisher_user.has_perm("flows.publish_messages")
    results = []

    def submit():
        results.append(publish_message(publisher_user, fields(demo), idempotency_key="k-1"))

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
    first = api.post_json(fields(demo, idempotency_key="k-2")).json()
    again = api.post_json(fields(demo, idempotency_key="k-2")).json()
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["message_id"] == again["message_id"]
    assert demo.wait_for_depth("q.a", 2) == 2


def test_a_repeat_run_is_started_polled_and_cancelled(api, demo):
    response = api.post_json(fields(demo, repeat=100000, rate=500))
    assert response.status_code == 202
    run_url = response.json()["run_url"]
    progress = api.get(run_url).json()["run"]
    assert progress["total"] == 100000
    cancelled = api.post(run_url + "/cancel").json()["run"]
    assert cancelled["state"] == "cancelled"
    assert cancelled["published"] < 100000
    assert find_run(cancelled["id"]).finished


@pytest.mark.django_db(transaction=True)
def test_with_a_firehose_tap_running_the_answer_carries_the_observed_queues(api, demo):
    # A firehose tap in this process (as when someone watches the vhost live) sees the
    # broker's own routing; the API answers with it beside the prediction.
    with running_tap(demo.vhost, "firehose"):
        routed = api.post_json(fields(demo, message_id="observed-1")).json()
        unroutable = api.post_json(
            fields(demo, exchange="demo.direct", routing_key="nobody", message_id="observed-2")
        ).json()
        # The same message id again: the answer is about this publish, not the earlier one.
        again = api.post_json(
            fields(demo, exchange="demo.direct", routing_key="nobody", message_id="observed-1")
        ).json()
    assert routed["observed_queues"] == ["q.a", "q.all"]
    assert routed["predicted"]["queues"] == ["q.a", "q.all"]
    assert unroutable["observed_queues"] == []
    assert again["observed_queues"] == []
