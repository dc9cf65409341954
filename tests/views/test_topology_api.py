"""`/api/topology` and `/api/route` against the real broker, through Django's test client."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.conf import settings
from django.test import Client

from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import (
    BrokerAuthFailed,
    BrokerNotFound,
    BrokerRefused,
    BrokerUnreachable,
    ManagementPluginMissing,
)
from flows.broker.management_api import ManagementClient
from flows.runtime import Runtime
from flows.views.json_api import broker_error_status
from tests.support.topology_definitions import (
    BAD_ROUTE_REQUESTS,
    binding,
    declare,
    exchange,
    queue,
)
from tests.support.vhosts import HOSTILE, SCRIPT
from tests.support.waiting import eventually

# The `headers` parameter of a message from the EU, and of one from the US.
EU, US = json.dumps({"region": "eu"}), json.dumps({"region": "us"})


@pytest.fixture
def api(signed_in: Client) -> Client:
    return signed_in


def get_json(client: Client, path: str, **params: str):
    response = client.get(path, params)
    assert response["Content-Type"].startswith("application/json")
    return response.status_code, json.loads(response.content) if response.content else None


def dry_run(client: Client, vhost: str, **params: str):
    """`/api/route` in `vhost`: its status and body."""
    return get_json(client, "/api/route", vhost=vhost, **params)


# --- /api/topology ------------------------------------------------------------------------------


def test_topology_lists_exchanges_queues_bindings_with_their_settings(api: Client, shop: str):
    status, body = get_json(api, "/api/topology", vhost=shop)
    assert status == 200
    assert body["vhost"] == shop
    exchanges = {item["name"]: item for item in body["exchanges"]}
    assert exchanges["orders"]["type"] == "topic"
    assert exchanges["orders"]["alternate_exchange"] == "unrouted"
    assert exchanges["orders"]["alternate_exchange_source"] == "argument"
    assert exchanges["hidden"]["internal"] is True
    assert exchanges["amq.topic"]["builtin"] is True
    assert exchanges[""]["is_default"] is True
    assert "implicit binding to every queue" in body["default_exchange"]["note"]
    queues = {item["name"]: item for item in body["queues"]}
    eu = queues["orders.eu"]
    assert (eu["dead_letter_exchange"], eu["max_length"], eu["type"]) == ("dlx", 10, "classic")
    assert {"messages_ready", "messages_unacknowledged", "consumer_count"} <= eu.keys()
    edges = {
        (b["source"], b["destination_type"], b["destination"], b["routing_key"])
        for b in body["bindings"]
    }
    # The default exchange's implicit bindings are not listed one per queue.
    assert edges == {
        ("orders", "queue", "orders.eu", "order.eu.*"),
        ("orders", "exchange", "audit", "order.#"),
        ("audit", "queue", "audited", ""),
        ("unrouted", "queue", "leftovers", ""),
    }
    headers_binding = next(b for b in body["bindings"] if b["source"] == "audit")
    assert headers_binding["arguments"] == {"x-match": "any", "region": "eu"}


def test_topology_lists_consumers_with_prefetch_and_ack_mode(
    api: Client, scratch_vhost: str, management_client: ManagementClient
):
    declare(management_client, scratch_vhost, queues=[queue("audited")])
    shop = scratch_vhost
    connection = open_blocking_connection(vhost=shop, purpose="api test")
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=7)
        channel.basic_consume("audited", lambda *a: None, auto_ack=True, consumer_tag="c-1")
        connection.process_data_events(time_limit=0.1)

        def topology_with_a_consumer() -> dict | None:
            _, body = get_json(api, "/api/topology", vhost=shop)
            return body if body["consumers"] else None

        body = eventually(topology_with_a_consumer, what="the consumer listed", interval=0.2)
    finally:
        connection.close()
    [consumer] = body["consumers"]
    assert (consumer["queue"], consumer["consumer_tag"]) == ("audited", "c-1")
    assert (consumer["prefetch_count"], consumer["ack_required"]) == (7, False)
    assert consumer["channel"].startswith(consumer["connection"])


def test_an_unchanged_topology_answers_304_to_its_etag(
    api: Client, scratch_vhost: str, management_client: ManagementClient, settings
):
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 0  # each request reads: the etag is under test here
    declare(management_client, scratch_vhost, queues=[queue("old-queue")])
    first = api.get("/api/topology", {"vhost": scratch_vhost})
    etag = {"If-None-Match": first["ETag"]}
    again = api.get("/api/topology", {"vhost": scratch_vhost}, headers=etag)
    assert again.status_code == 304
    declare(management_client, scratch_vhost, queues=[queue("new-queue")])
    changed = api.get("/api/topology", {"vhost": scratch_vhost}, headers=etag)
    assert changed.status_code == 200
    assert "new-queue" in {item["name"] for item in json.loads(changed.content)["queues"]}


def test_an_unknown_vhost_is_a_404_with_a_message(api: Client):
    name = f"no-such-vhost-{uuid.uuid4().hex[:6]}"
    status, body = get_json(api, "/api/topology", vhost=name)
    assert status == 404
    assert body == {"error": f"No vhost named {name!r} on the broker", "fields": {}}
    status, body = dry_run(api, name, exchange="x")
    assert (status, body["error"]) == (404, f"No vhost named {name!r} on the broker")


@pytest.mark.parametrize("path", ["/api/topology", "/api/route"])
def test_an_anonymous_caller_gets_401_json_not_a_redirect(client: Client, path: str):
    status, body = get_json(client, path, vhost="/", exchange="")
    assert status == 401
    assert "Sign in" in body["error"]
    assert body["fields"] == {}


@pytest.mark.parametrize(
    ("path", "params", "fields"),
    [
        (
            "/api/topology",
            {"vhots": "x"},
            {"vhots": "unknown query parameter; did you mean 'vhost'?"},
        ),
        (
            "/api/route",
            {"exchange": "orders", "routingkey": "a", "colour": "red"},
            {
                "routingkey": "unknown query parameter; did you mean 'routing_key'?",
                "colour": "unknown query parameter",
            },
        ),
    ],
)
def test_unknown_query_parameters_are_refused_naming_each(
    api: Client, shop: str, path: str, params: dict, fields: dict
):
    status, body = get_json(api, path, vhost=shop, **params)
    assert (status, body["fields"]) == (400, fields)
    assert all(repr(name) in body["error"] for name in fields)


def test_a_post_is_refused_with_405_json(api: Client):
    response = api.post("/api/topology")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert "not allowed" in json.loads(response.content)["error"]


# --- /api/route ---------------------------------------------------------------------------------


def test_route_gives_each_queue_its_chain_of_bindings(api: Client, shop: str):
    status, body = dry_run(api, shop, exchange="orders", routing_key="order.eu.paid", headers=EU)
    assert status == 200
    assert body["unroutable"] is False
    assert body["queues"] == ["audited", "orders.eu"]
    chains = {
        route["queue"]: [(h["source"], h["destination"]) for h in route["paths"][0]]
        for route in body["routes"]
    }
    assert chains == {
        "orders.eu": [("orders", "orders.eu")],
        "audited": [("orders", "audit"), ("audit", "audited")],
    }
    first_hop = body["routes"][0]["paths"][0][0]
    assert first_hop["reason"] == 'pattern "order.#" matches "order.eu.paid"'
    assert body["caught_by_alternate_exchange"] is None
    assert body["summary"] == 'Routed to 2 queues: "audited", "orders.eu".'


def test_route_says_why_the_other_bindings_did_not_match(api: Client, shop: str):
    status, body = dry_run(api, shop, exchange="orders", routing_key="order.us.paid", headers=US)
    assert status == 200
    misses = {(m["source"], m["destination"]): m["reason"] for m in body["not_matched"]}
    assert misses == {
        ("orders", "orders.eu"): 'pattern "order.eu.*" does not match "order.us.paid"',
        ("audit", "audited"): (
            'x-match any: no header argument matched (header "region" is "us", '
            'the binding wants "eu")'
        ),
    }
    # The headers exchange got the message (order.# matched), so no alternate exchange.
    assert body["unroutable"] is True
    assert body["alternate_exchanges_tried"] == []


def test_route_reports_the_alternate_exchange_that_catches_a_message(api: Client, shop: str):
    status, body = dry_run(api, shop, exchange="orders", routing_key="x")
    assert status == 200
    assert body["unroutable"] is False
    assert body["caught_by_alternate_exchange"] == "unrouted"
    assert body["queues"] == ["leftovers"]
    assert [h["kind"] for h in body["routes"][0]["paths"][0]] == [
        "alternate-exchange",
        "binding",
    ]
    assert body["summary"].startswith('No binding of "orders" matched; its alternate exchange')


def test_route_reads_unroutable_plainly_when_the_alternate_exchange_routes_nowhere(
    api: Client, shop: str
):
    status, body = dry_run(api, shop, exchange="lonely", routing_key="k")
    assert status == 200
    assert (body["unroutable"], body["queues"]) == (True, [])
    assert body["alternate_exchanges_tried"] == ["dead-end"]
    assert body["caught_by_alternate_exchange"] is None
    assert body["summary"].startswith("Unroutable:")
    assert '"dead-end" routes it nowhere either' in body["summary"]


def test_route_through_the_default_exchange_needs_an_existing_queue(api: Client, shop: str):
    _, routed = dry_run(api, shop, exchange="", routing_key="audited")
    assert routed["queues"] == ["audited"]
    assert routed["hops"][0]["kind"] == "default-exchange"
    _, dropped = dry_run(api, shop, exchange="", routing_key="nope")
    assert dropped["unroutable"] is True
    assert any("no queue named" in note for note in dropped["notes"])


@pytest.mark.parametrize(("params", "status", "field", "message"), BAD_ROUTE_REQUESTS)
def test_bad_route_requests_get_a_clear_error_naming_the_field(
    api: Client, shop: str, params: dict, status: int, field: str, message: str
):
    got_status, body = dry_run(api, shop, **params)
    assert (got_status, list(body["fields"])) == (status, [field])
    assert message in body["error"]
    assert body["fields"][field] == body["error"]


# --- hostile names, end to end ------------------------------------------------------------------


def test_names_with_slashes_percents_and_markup_work_end_to_end(
    api: Client, hostile_vhost: str, management_client: ManagementClient
):
    declare(
        management_client,
        hostile_vhost,
        exchanges=[exchange(SCRIPT, "topic"), exchange("dots.and spaces ü", "fanout")],
        queues=[queue(HOSTILE)],
        bindings=[
            binding(SCRIPT, "dots.and spaces ü", "#", to="exchange"),
            binding("dots.and spaces ü", HOSTILE),
        ],
    )
    status, body = get_json(api, "/api/topology", vhost=hostile_vhost)
    assert status == 200
    assert body["vhost"] == hostile_vhost
    assert HOSTILE in {item["name"] for item in body["queues"]}
    assert SCRIPT in {item["name"] for item in body["exchanges"]}

    status, route = dry_run(api, hostile_vhost, exchange=SCRIPT, routing_key="<b>%2F/")
    assert status == 200
    assert route["queues"] == [HOSTILE]
    assert [(h["source"], h["destination"]) for h in route["routes"][0]["paths"][0]] == [
        (SCRIPT, "dots.and spaces ü"),
        ("dots.and spaces ü", HOSTILE),
    ]
    # Names travel as JSON strings, never as markup: the raw bytes carry them unescaped.
    assert SCRIPT.encode() in api.get("/api/topology", {"vhost": hostile_vhost}).content


# --- the broker down ----------------------------------------------------------------------------


def unread_vhost() -> str:
    """A vhost name no earlier read left in the topology cache."""
    return f"flows-test-unread-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    ("path", "params"), [("/api/topology", {}), ("/api/route", {"exchange": ""})]
)
def test_a_management_api_outage_is_a_503_with_a_message(
    api: Client, api_down: int, path: str, params: dict
):
    status, body = get_json(api, path, vhost=unread_vhost(), **params)
    assert status == 503
    assert body["error"] == f"RabbitMQ management API unreachable at 127.0.0.1:{api_down}"


@pytest.fixture
def api_refuses_us(settings, fresh_runtime: Runtime) -> None:
    """The management API answers, but not to the dashboard's (wrong) password."""
    settings.RABBITMQ_API_PASSWORD = "not-the-password"


def test_refused_credentials_are_a_502_naming_the_user_not_the_password(
    api: Client, api_refuses_us: None
):
    status, body = get_json(api, "/api/topology", vhost=unread_vhost())
    assert status == 502
    assert f"refused user {settings.RABBITMQ_API_USER!r}" in body["error"]
    assert "not-the-password" not in json.dumps(body)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BrokerNotFound("x"), 404),
        (BrokerUnreachable("x"), 503),
        (ManagementPluginMissing("x"), 503),
        (BrokerAuthFailed("x"), 502),
        (BrokerRefused("x", status=403), 502),
    ],
)
def test_broker_errors_map_to_statuses_that_say_whose_fault_it_is(error, status):
    assert broker_error_status(error) == status


def test_a_slow_vhost_is_served_from_its_last_read_while_a_new_one_runs(
    api: Client, scratch_vhost: str, management_client: ManagementClient, settings
):
    # Every read counts as slow here; a real one is a vhost of thousands of objects. And no
    # read is young enough to be served without a look at its age.
    settings.FLOWS_TOPOLOGY_SLOW_READ_S = 0
    settings.FLOWS_TOPOLOGY_MAX_AGE_S = 0
    declare(management_client, scratch_vhost, queues=[queue("first")])
    _, body = get_json(api, "/api/topology", vhost=scratch_vhost)
    assert [item["name"] for item in body["queues"]] == ["first"]

    declare(management_client, scratch_vhost, queues=[queue("second")])
    time.sleep(0.05)  # older than its read: the next request also starts a background read
    _, served = get_json(api, "/api/topology", vhost=scratch_vhost)
    assert [item["name"] for item in served["queues"]] == ["first"]  # the snapshot, at once

    def the_background_read_served() -> bool:
        _, body = get_json(api, "/api/topology", vhost=scratch_vhost)
        names = [item["name"] for item in body["queues"]]
        assert names == ["first", "second"], names
        return True

    eventually(the_background_read_served, what="the background read served", interval=0.1)
