"""A three-node cluster of the tests' own: quorum queues and streams, and a node killed under
the tap.

The dashboard is given every node in `AMQP_URL` (comma-separated, tried in order) and the
management API of the last node, which these tests never kill. The cluster belongs to this
module; its last test kills a node, so it stays last.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pika
import pytest
from django.test import Client

from flows.broker.amqp import connection_parameters
from tests.faults.conftest import dashboard_on
from tests.support.accounts import make_user
from tests.support.own_broker import OwnCluster
from tests.support.tap_harness import FAST, amqp_channel, running_tap
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.faults,
    pytest.mark.usefixtures("transactional_db"),
]  # the firehose tap's lease


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnCluster]:
    cluster = OwnCluster(size=3)
    try:
        yield cluster.start()
    finally:
        cluster.delete()


@pytest.fixture
def on_cluster(cluster: OwnCluster) -> Iterator[OwnCluster]:
    with dashboard_on(amqp_url=cluster.amqp_url, api_url=cluster.nodes[-1].api_url):
        yield cluster


@pytest.fixture
def cluster_vhost(cluster: OwnCluster) -> Iterator[str]:
    name = cluster.nodes[-1].add_vhost(f"faults-{uuid.uuid4().hex[:8]}")
    yield name
    cluster.nodes[-1].api("DELETE", f"vhosts/{name}")


@pytest.fixture
def signed_in(client: Client, django_user_model) -> Client:
    client.force_login(make_user("reader", role="viewer"))
    return client


def test_the_cluster_runs_three_nodes(cluster: OwnCluster) -> None:
    assert cluster.running_nodes() == sorted(node.name for node in cluster.nodes)


# Routing keys to the `events` exchange, and which of its queues each reaches.
ROUTES = {
    "order.paid": ["audit", "orders"],
    "misc.thing": ["audit", "misc"],
    "nothing": ["audit"],
}


def test_quorum_queues_and_streams_are_shown_with_their_type_and_routed_as_predicted(
    cluster_vhost: str, on_cluster: OwnCluster, signed_in: Client
) -> None:
    with amqp_channel(cluster_vhost) as channel:
        channel.exchange_declare("events", "topic", durable=True)
        for queue, queue_type, key in [
            ("orders", "quorum", "order.*"),
            ("audit", "stream", "#"),
            ("misc", "classic", "misc.#"),
        ]:
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": queue_type})
            channel.queue_bind(queue, "events", key)
    response = signed_in.get("/api/topology", {"vhost": cluster_vhost})
    assert response.status_code == 200
    types = {queue["name"]: queue["type"] for queue in json.loads(response.content)["queues"]}
    assert types == {"orders": "quorum", "audit": "stream", "misc": "classic"}

    predicted = {}
    for key in ROUTES:
        answer = signed_in.get(
            "/api/route", {"vhost": cluster_vhost, "exchange": "events", "routing_key": key}
        )
        assert answer.status_code == 200, answer.content
        predicted[key] = json.loads(answer.content)["queues"]
    # What the broker did: the firehose's `routed_queues` of each publish. RabbitMQ 3.10
    # switches tracing on only on the node whose management API was asked: publish there.
    with running_tap(cluster_vhost, "firehose") as (_tap, collector):
        publish_through(on_cluster.nodes[-1].amqp_url, cluster_vhost, list(ROUTES))
        collector.wait_for(
            lambda: len([e for e in collector.events if e["kind"] == "publish"]) >= len(ROUTES),
            what="the publishes traced",
        )
        warnings = collector.status["coverage"]["warnings"]
    # Tracing is per node: viewers are told what they may miss.
    assert any("This broker is a cluster of 3 nodes" in warning for warning in warnings)
    routed = {
        event["routing_key"]: sorted(event["routed_queues"])
        for event in collector.events
        if event["kind"] == "publish"
    }
    assert routed == ROUTES
    assert predicted == ROUTES


def _tap_connection_node(cluster: OwnCluster, vhost: str) -> str | None:
    """The node that holds the tap's connection, as the management API lists it."""
    answer = cluster.nodes[-1].api("GET", f"vhosts/{vhost}/connections")
    for connection in answer.json():
        name = (connection.get("client_properties") or {}).get("connection_name", "")
        if name.startswith("flows-dashboard: tap"):
            return connection["node"]
    return None


def test_the_tap_moves_to_another_node_when_its_node_is_killed(
    cluster_vhost: str, on_cluster: OwnCluster
) -> None:
    first, second, third = on_cluster.nodes
    with amqp_channel(cluster_vhost) as channel:
        channel.exchange_declare("events", "topic", durable=True)
    with running_tap(cluster_vhost, "bindings", FAST) as (tap, collector):
        holder = eventually(
            lambda: _tap_connection_node(on_cluster, cluster_vhost),
            what="the tap's connection listed",
            timeout=30,
            interval=0.2,
        )
        assert holder == first.name  # the first node listed in AMQP_URL
        old_queue = tap.queue_name
        first.kill()
        collector.wait_for(
            lambda: collector.status["gaps"] and collector.status["state"] == "running",
            what="the tap running again, its gap reported",
            timeout=30,
        )
        assert tap.queue_name != old_queue
        eventually(
            lambda: _tap_connection_node(on_cluster, cluster_vhost) == second.name,
            what="the tap's connection on the next node",
            timeout=30,
            interval=0.2,
        )
        publish_through(third.amqp_url, cluster_vhost, ["after.the.kill"])
        [event] = collector.wait_events(1)
    assert event["routing_key"] == "after.the.kill"


def publish_through(amqp_url: str, vhost: str, routing_keys: list[str]) -> None:
    """Publish to `events` through one node in particular, one message per routing key."""
    connection = pika.BlockingConnection(
        connection_parameters(vhost=vhost, purpose="test", url=amqp_url)
    )
    try:
        channel = connection.channel()
        for key in routing_keys:
            channel.basic_publish("events", key, key.encode())
    finally:
        connection.close()
