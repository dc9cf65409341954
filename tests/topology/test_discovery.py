"""Discovery against the real broker: what a scratch vhost holds, read back as a Topology."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest

from flows.broker.errors import BrokerUnreachable
from flows.broker.management_api import ManagementClient
from flows.topology.reading import UnknownVhost, load_topology
from flows.topology.records import Topology
from tests.support.broker_admin import set_policy
from tests.support.live_server import free_port
from tests.support.tap_harness import amqp_channel
from tests.support.topology_definitions import declare, exchange
from tests.support.waiting import eventually

ODD_NAMES = ["a/b%2F<c>", "<script>alert(1)</script>", "with space", "dots.in.name", "ünï çødé"]


@pytest.fixture
def channel(scratch_vhost: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    with amqp_channel(scratch_vhost) as channel:
        yield channel


def test_discovery_reads_exchanges_queues_bindings_and_effective_settings(
    scratch_vhost: str, channel, management_client: ManagementClient
):
    channel.exchange_declare("orders", "topic", arguments={"alternate-exchange": "unrouted"})
    channel.exchange_declare("unrouted", "fanout", internal=True)
    channel.exchange_declare("audit", "headers", durable=True)
    channel.exchange_declare("by-policy", "direct")
    channel.queue_declare(
        "orders.eu",
        durable=True,
        arguments={
            "x-dead-letter-exchange": "dead",
            "x-dead-letter-routing-key": "eu",
            "x-max-length": 100,
            "x-message-ttl": 60000,
        },
    )
    channel.queue_declare("orders.quorum", durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare("policy.dl", auto_delete=True)
    channel.queue_bind("orders.eu", "orders", "order.eu.*")
    channel.exchange_bind("audit", "orders", "#")
    channel.queue_bind("orders.quorum", "audit", "", arguments={"x-match": "any", "region": "eu"})
    set_policy(
        management_client,
        scratch_vhost,
        "dl",
        pattern="^policy\\.",
        apply_to="queues",
        priority=3,
        definition={"dead-letter-exchange": "dead-by-policy", "max-length": 5},
    )
    set_policy(
        management_client,
        scratch_vhost,
        "ae",
        pattern="^by-policy$",
        apply_to="exchanges",
        definition={"alternate-exchange": "unrouted"},
    )

    topology = load_topology(scratch_vhost)

    orders = topology.exchange("orders")
    assert orders is not None
    assert (orders.type, orders.alternate_exchange, orders.alternate_exchange_source) == (
        "topic",
        "unrouted",
        "argument",
    )
    assert topology.exchange("unrouted").internal is True
    by_policy = topology.exchange("by-policy")
    assert (by_policy.alternate_exchange, by_policy.alternate_exchange_source) == (
        "unrouted",
        "policy",
    )
    assert by_policy.policy == "ae"
    assert topology.exchange("") is not None  # the default exchange is listed once
    assert topology.exchange("amq.topic").is_builtin

    eu = topology.queue("orders.eu")
    assert (eu.dead_letter_exchange, eu.dead_letter_routing_key, eu.dead_letter_source) == (
        "dead",
        "eu",
        "argument",
    )
    assert (eu.max_length, eu.message_ttl, eu.durable) == (100, 60000, True)
    assert topology.queue("orders.quorum").type == "quorum"
    by_policy_queue = topology.queue("policy.dl")
    assert (by_policy_queue.dead_letter_exchange, by_policy_queue.dead_letter_source) == (
        "dead-by-policy",
        "policy",
    )
    assert (by_policy_queue.auto_delete, by_policy_queue.max_length) == (True, 5)

    edges = {
        (b.source, b.destination_type, b.destination, b.routing_key) for b in topology.bindings
    }
    assert edges == {
        ("orders", "queue", "orders.eu", "order.eu.*"),
        ("orders", "exchange", "audit", "#"),
        ("audit", "queue", "orders.quorum", ""),
    }
    headers_binding = next(b for b in topology.bindings if b.source == "audit")
    assert dict(headers_binding.arguments) == {"x-match": "any", "region": "eu"}
    assert {policy.name for policy in topology.policies} == {"dl", "ae"}


def test_discovery_reads_consumers_with_prefetch_ack_mode_and_depths(scratch_vhost: str, channel):
    channel.queue_declare("work")
    for n in range(3):
        channel.basic_publish("", "work", f"job {n}".encode())
    channel.basic_qos(prefetch_count=2)
    channel.basic_consume("work", lambda *args: None, auto_ack=False, consumer_tag="worker-1")
    channel.connection.process_data_events(time_limit=0.2)

    def consumer_and_statistics() -> Topology:
        topology = load_topology(scratch_vhost)
        # A consumer's channel details come from statistics too, and may lag under load.
        assert topology.consumers and topology.consumers[0].connection, topology.consumers
        work = topology.queue("work")
        # The queue's consumer count comes from statistics, which lag the consumer list.
        assert (work.messages_unacknowledged, work.messages_ready, work.consumer_count) == (
            2,
            1,
            1,
        ), work
        return topology

    # Consumers and queue statistics reach the management API asynchronously: statistics are
    # emitted every 5 s, and a busy broker (tests share it) can take a few rounds.
    topology = eventually(
        consumer_and_statistics,
        what="the consumer and the queue's statistics",
        timeout=30,
        interval=0.3,
    )
    [consumer] = topology.consumers
    assert (consumer.queue, consumer.consumer_tag) == ("work", "worker-1")
    assert (consumer.prefetch_count, consumer.ack_required) == (2, True)
    assert consumer.connection and consumer.channel.startswith(consumer.connection)
    assert consumer.channel_number == 1
    work = topology.queue("work")
    assert (work.messages_ready, work.messages_unacknowledged, work.consumer_count) == (1, 2, 1)


def test_names_that_need_escaping_are_read_back_exactly(scratch_vhost: str, channel):
    channel.exchange_declare(ODD_NAMES[0], "fanout")
    for name in ODD_NAMES:
        channel.queue_declare(name)
        channel.queue_bind(name, ODD_NAMES[0])
    topology = load_topology(scratch_vhost)
    assert {queue.name for queue in topology.queues} == set(ODD_NAMES)
    assert {b.destination for b in topology.bindings_from(ODD_NAMES[0])} == set(ODD_NAMES)


def test_an_empty_vhost_has_only_the_builtin_exchanges(scratch_vhost: str):
    topology = load_topology(scratch_vhost)
    assert topology.queues == ()
    assert topology.bindings == ()
    assert all(exchange.is_builtin for exchange in topology.exchanges)
    assert topology.policies_readable is True


def test_an_unknown_vhost_is_named_in_the_error():
    with pytest.raises(UnknownVhost, match="no-such-vhost-for-flows"):
        load_topology("no-such-vhost-for-flows")


def test_an_unreachable_api_raises_a_typed_error():
    with (
        ManagementClient(f"http://127.0.0.1:{free_port()}/", "guest", "guest", timeout=1) as client,
        pytest.raises(BrokerUnreachable),
    ):
        load_topology("/", client=client)


def test_discovery_reads_every_page_of_a_long_list(roomy_vhost: str, management_client):
    """The API serves 500 items a page: 1,100 exchanges take three pages, read in parallel."""
    # The fixture's patient client: loading 1,100 exchanges on a busy broker takes a while.
    client = management_client
    names = {f"ex-{n:04d}" for n in range(1100)}
    declare(client, roomy_vhost, exchanges=[exchange(name, "fanout") for name in sorted(names)])

    topology = load_topology(roomy_vhost)

    read = [item.name for item in topology.exchanges if not item.is_builtin]
    assert sorted(read) == sorted(names)  # all of them, none twice


def test_consumers_are_labelled_by_the_name_their_client_gave_the_connection(
    scratch_vhost: str, channel
):
    from flows.broker.amqp import connection_parameters

    channel.queue_declare("jobs")

    def client(name: str | None) -> pika.BlockingConnection:
        parameters = connection_parameters(vhost=scratch_vhost, purpose="test")
        # The dashboard names its own connections; these clients name theirs, or not.
        parameters.client_properties = {"connection_name": name} if name else {}
        return pika.BlockingConnection(parameters)

    with client("belery worker 2") as named, client(None) as unnamed:
        named.channel().basic_consume("jobs", lambda *args: None, consumer_tag="ctag1.0732")
        unnamed.channel().basic_consume("jobs", lambda *args: None, consumer_tag="anonymous")

        def labels() -> dict[str, str]:
            topology = load_topology(scratch_vhost)
            found = {c.consumer_tag: c.label for c in topology.consumers_by_queue.get("jobs", ())}
            # The broker lists a new connection a moment after its consumers: until then the
            # consumer goes by its tag.
            assert found == {"ctag1.0732": "belery worker 2", "anonymous": "anonymous"}
            return found

        eventually(labels, what="each consumer labelled by its connection's name, else its tag")
