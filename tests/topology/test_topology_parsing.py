"""Parsing the management API's JSON into a Topology: tolerant of every shape seen in the wild."""

from __future__ import annotations

import pytest

from flows.topology.parsing import (
    build_topology,
    connection_labels,
    matching_policy,
    parse_binding,
    parse_bindings,
    parse_consumer,
    parse_exchange,
    parse_policy,
    parse_queue,
)
from flows.topology.records import Policy


def policy(name: str, pattern: str, apply_to: str = "all", priority: int = 0, **definition):
    return Policy(
        name=name,
        pattern=pattern,
        apply_to=apply_to,
        priority=priority,
        definition={key.replace("_", "-"): value for key, value in definition.items()},
    )


# --- exchanges ------------------------------------------------------------------------------------


def test_an_exchange_reads_its_fields():
    exchange = parse_exchange(
        {
            "name": "orders",
            "type": "topic",
            "durable": False,
            "auto_delete": True,
            "internal": True,
            "arguments": {"alternate-exchange": "orders.unrouted"},
        }
    )
    assert (exchange.name, exchange.type, exchange.durable, exchange.auto_delete) == (
        "orders",
        "topic",
        False,
        True,
    )
    assert exchange.internal is True
    assert exchange.alternate_exchange == "orders.unrouted"
    assert exchange.alternate_exchange_source == "argument"


@pytest.mark.parametrize(
    "item",
    [
        {"name": "x"},
        {"name": "x", "type": None, "durable": "yes", "arguments": []},
        {"name": "x", "arguments": None, "internal": 1},
    ],
)
def test_odd_or_missing_exchange_fields_read_as_defaults(item):
    exchange = parse_exchange(item)
    assert exchange.name == "x"
    assert exchange.type == "direct"
    assert exchange.durable is True
    assert exchange.internal is False
    assert dict(exchange.arguments) == {}
    assert exchange.alternate_exchange is None


def test_the_alternate_exchange_argument_beats_a_policy():
    policies = (policy("ae", ".*", alternate_exchange="from-policy"),)
    by_argument = parse_exchange(
        {"name": "x", "arguments": {"alternate-exchange": "from-argument"}}, policies
    )
    by_policy = parse_exchange({"name": "y"}, policies)
    assert (by_argument.alternate_exchange, by_argument.alternate_exchange_source) == (
        "from-argument",
        "argument",
    )
    assert (by_policy.alternate_exchange, by_policy.alternate_exchange_source) == (
        "from-policy",
        "policy",
    )
    assert by_policy.policy == "ae"


def test_builtin_and_dashboard_exchanges_are_recognised():
    assert parse_exchange({"name": ""}).is_default
    assert parse_exchange({"name": "amq.topic"}).is_builtin
    assert not parse_exchange({"name": "amqp.topic"}).is_builtin
    assert parse_exchange({"name": "flows-dashboard.tap.1"}).is_dashboard_object


# --- policies -------------------------------------------------------------------------------------


def test_a_policy_reads_apply_to_with_either_spelling():
    assert parse_policy({"name": "p", "pattern": "^q", "apply-to": "queues"}).apply_to == "queues"
    assert parse_policy({"name": "p", "pattern": "^q", "apply_to": "exchanges"}).apply_to == (
        "exchanges"
    )
    assert parse_policy({"name": "p", "pattern": "^q"}).apply_to == "all"
    assert parse_policy({"name": "p", "priority": "high"}).priority == 0


@pytest.mark.parametrize(
    ("pattern", "apply_to", "kind", "name", "queue_type", "applies"),
    [
        ("^orders", "all", "queue", "orders.eu", "classic", True),
        ("^orders", "all", "exchange", "orders", "", True),
        # RabbitMQ searches the pattern anywhere in the name (unanchored).
        ("eu", "queues", "queue", "orders.eu.1", "classic", True),
        ("^eu", "queues", "queue", "orders.eu", "classic", False),
        ("^orders", "queues", "exchange", "orders", "", False),
        ("^orders", "exchanges", "queue", "orders", "classic", False),
        ("^orders", "exchanges", "exchange", "orders", "", True),
        ("^q", "classic_queues", "queue", "q1", "classic", True),
        ("^q", "classic_queues", "queue", "q1", "quorum", False),
        ("^q", "quorum_queues", "queue", "q1", "quorum", True),
        ("^q", "streams", "queue", "q1", "stream", True),
        ("^q", "streams", "queue", "q1", "classic", False),
        ("^q", "queues", "queue", "q1", "stream", True),
        # An invalid pattern matches nothing instead of failing the page.
        ("([", "all", "queue", "([", "classic", False),
        # The broker applies policies to its own amq.* exchanges too.
        (".*", "all", "exchange", "amq.direct", "", True),
    ],
)
def test_policy_applicability(pattern, apply_to, kind, name, queue_type, applies):
    candidate = policy("p", pattern, apply_to)
    assert candidate.applies_to(kind=kind, name=name, queue_type=queue_type) is applies


def test_the_highest_priority_matching_policy_wins_alone():
    policies = [
        policy("low", ".*", priority=1, dead_letter_exchange="dlx-low"),
        policy("high", "^orders", priority=5, max_length=10),
        policy("other", "^payments", priority=9, dead_letter_exchange="dlx-other"),
    ]
    chosen = matching_policy(policies, kind="queue", name="orders", queue_type="classic")
    assert chosen is not None and chosen.name == "high"
    # Policies do not merge: the winner sets no dead-letter exchange, so there is none.
    queue = parse_queue({"name": "orders", "type": "classic"}, tuple(policies))
    assert queue.policy == "high"
    assert queue.dead_letter_exchange is None
    assert queue.max_length == 10


def test_equal_priorities_are_broken_by_name_for_a_stable_answer():
    policies = [policy("b", ".*"), policy("a", ".*")]
    chosen = matching_policy(policies, kind="exchange", name="x")
    assert chosen is not None and chosen.name == "a"


def test_no_matching_policy_is_none():
    assert matching_policy([policy("p", "^zzz")], kind="queue", name="q") is None


# --- queues ---------------------------------------------------------------------------------------


def test_a_queue_reads_its_fields_and_counts():
    queue = parse_queue(
        {
            "name": "work",
            "type": "quorum",
            "durable": True,
            "exclusive": False,
            "auto_delete": False,
            "arguments": {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "dlx",
                "x-dead-letter-routing-key": "dead",
                "x-max-length": 100,
                "x-message-ttl": 60000,
                "x-overflow": "reject-publish",
            },
            "messages": 7,
            "messages_ready": 5,
            "messages_unacknowledged": 2,
            "consumers": 3,
            "state": "running",
        }
    )
    assert queue.type == "quorum"
    assert (queue.dead_letter_exchange, queue.dead_letter_routing_key) == ("dlx", "dead")
    assert queue.dead_letter_source == "argument"
    assert (queue.max_length, queue.message_ttl, queue.overflow) == (100, 60000, "reject-publish")
    assert (queue.messages, queue.messages_ready, queue.messages_unacknowledged) == (7, 5, 2)
    assert queue.consumer_count == 3


def test_queue_statistics_absent_read_as_unknown_not_zero():
    queue = parse_queue({"name": "q", "messages_ready": None, "consumers": "n/a"})
    assert queue.messages_ready is None
    assert queue.consumer_count is None
    assert queue.messages is None


def test_queue_type_falls_back_to_the_argument_then_classic():
    assert parse_queue({"name": "q", "arguments": {"x-queue-type": "stream"}}).type == "stream"
    assert parse_queue({"name": "q"}).type == "classic"


def test_an_empty_dead_letter_exchange_argument_means_the_default_exchange():
    queue = parse_queue({"name": "q", "arguments": {"x-dead-letter-exchange": ""}})
    assert queue.dead_letter_exchange == ""
    assert queue.dead_letter_source == "argument"


def test_dead_letter_settings_come_from_the_policy_when_no_argument_sets_them():
    policies = (
        policy("dl", "^q", "queues", dead_letter_exchange="dlx", dead_letter_routing_key="k"),
    )
    queue = parse_queue({"name": "q1", "type": "classic"}, policies)
    assert (queue.dead_letter_exchange, queue.dead_letter_routing_key) == ("dlx", "k")
    assert queue.dead_letter_source == "policy"
    overridden = parse_queue(
        {"name": "q2", "arguments": {"x-dead-letter-exchange": "own"}}, policies
    )
    assert (overridden.dead_letter_exchange, overridden.dead_letter_source) == ("own", "argument")
    assert overridden.dead_letter_routing_key == "k"


def test_limits_take_the_stricter_of_argument_and_policy():
    policies = (policy("limits", ".*", max_length=50, message_ttl=1000),)
    queue = parse_queue(
        {"name": "q", "arguments": {"x-max-length": 10, "x-message-ttl": 5000}}, policies
    )
    assert (queue.max_length, queue.message_ttl) == (10, 1000)


def test_without_the_policy_list_the_brokers_reported_policy_is_used():
    queue = parse_queue(
        {
            "name": "q",
            "policy": "dl",
            "effective_policy_definition": {"dead-letter-exchange": "dlx"},
        },
        None,
    )
    assert (queue.policy, queue.dead_letter_exchange, queue.dead_letter_source) == (
        "dl",
        "dlx",
        "policy",
    )
    exchange = parse_exchange({"name": "x", "policy": None}, None)
    assert exchange.policy is None


# --- bindings and consumers -----------------------------------------------------------------------


def test_bindings_read_both_destination_types():
    bindings = parse_bindings(
        [
            {
                "source": "a",
                "destination": "b",
                "destination_type": "exchange",
                "routing_key": "x.#",
                "arguments": {},
                "properties_key": "x.%23",
            },
            {
                "source": "a",
                "destination": "q",
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {"x-match": "any", "k": 1},
            },
        ]
    )
    assert [(b.source, b.destination, b.destination_type) for b in bindings] == [
        ("a", "b", "exchange"),
        ("a", "q", "queue"),
    ]
    assert bindings[0].routing_key == "x.#"
    assert dict(bindings[1].arguments) == {"x-match": "any", "k": 1}


def test_the_default_exchanges_implicit_bindings_are_left_out():
    bindings = parse_bindings(
        [
            {"source": "", "destination": "q", "destination_type": "queue", "routing_key": "q"},
            {"source": "x", "destination": "q", "destination_type": "queue", "routing_key": "k"},
        ]
    )
    assert [b.source for b in bindings] == ["x"]


def test_a_binding_row_of_unknown_shape_is_skipped():
    assert parse_binding({"source": "x", "destination": "q"}) is None
    assert parse_bindings([{"source": "x", "destination_type": "stream"}, "garbage"]) == ()


def test_a_consumer_reads_queue_channel_and_prefetch():
    consumer = parse_consumer(
        {
            "arguments": {},
            "ack_required": False,
            "active": True,
            "activity_status": "up",
            "channel_details": {
                "connection_name": "127.0.0.1:5 -> 127.0.0.1:5672",
                "name": "127.0.0.1:5 -> 127.0.0.1:5672 (1)",
                "number": 1,
                "peer_host": "127.0.0.1",
                "peer_port": 5,
                "user": "guest",
            },
            "consumer_tag": "ctag",
            "exclusive": False,
            "prefetch_count": 7,
            "queue": {"name": "work", "vhost": "/"},
        }
    )
    assert (consumer.queue, consumer.consumer_tag, consumer.prefetch_count) == ("work", "ctag", 7)
    assert consumer.ack_required is False
    assert consumer.channel == "127.0.0.1:5 -> 127.0.0.1:5672 (1)"
    assert consumer.connection == "127.0.0.1:5 -> 127.0.0.1:5672"
    assert (consumer.channel_number, consumer.user, consumer.peer) == (1, "guest", "127.0.0.1:5")


def test_a_consumer_on_a_closing_channel_still_parses():
    consumer = parse_consumer({"queue": "work", "channel_details": [], "consumer_tag": "c"})
    assert (consumer.queue, consumer.channel, consumer.prefetch_count) == ("work", "", None)


@pytest.mark.parametrize(
    ("connections", "labels"),
    [
        ([], {}),
        # 3.x: the client's `connection_name` as `user_provided_name`.
        ([{"name": "a -> b", "user_provided_name": "worker 2"}], {"a -> b": "worker 2"}),
        # Only in the client properties (older brokers).
        (
            [{"name": "a -> b", "client_properties": {"connection_name": "mailer"}}],
            {"a -> b": "mailer"},
        ),
        # The listed name wins over the property.
        (
            [
                {
                    "name": "a -> b",
                    "user_provided_name": "listed",
                    "client_properties": {"connection_name": "property"},
                }
            ],
            {"a -> b": "listed"},
        ),
        # Clients that do not name their connection are left out.
        ([{"name": "a -> b", "client_properties": {"product": "pika"}}], {}),
        ([{"name": "a -> b", "user_provided_name": ""}], {}),
        ([{"user_provided_name": "no connection name"}, "garbage", None], {}),
    ],
)
def test_connection_labels_are_what_clients_named_their_connections(connections, labels):
    assert connection_labels(connections) == labels


@pytest.mark.parametrize(
    ("connection", "labels", "label"),
    [
        ("a -> b", {"a -> b": "food lover 1"}, "food lover 1"),
        ("a -> b", {"c -> d": "someone else"}, "ctag1.abc"),  # its connection is unnamed
        ("a -> b", {}, "ctag1.abc"),
        ("", {"": "never joined on an empty name"}, "ctag1.abc"),
    ],
)
def test_a_consumer_is_labelled_by_its_connection_name_else_its_tag(connection, labels, label):
    consumer = parse_consumer(
        {
            "queue": {"name": "work"},
            "consumer_tag": "ctag1.abc",
            "channel_details": {"connection_name": connection, "number": 1},
        },
        labels,
    )
    assert consumer.label == label
    assert consumer.consumer_tag == "ctag1.abc"
    assert consumer.connection_label == (label if label != "ctag1.abc" else "")


# --- the whole ---------------------------------------------------------------------------------


def test_build_topology_indexes_by_name_and_source():
    topology = build_topology(
        "v",
        exchanges=[{"name": "b", "type": "fanout"}, {"name": "a", "type": "topic"}],
        queues=[{"name": "q"}],
        bindings=[
            {"source": "a", "destination": "q", "destination_type": "queue", "routing_key": "#"},
            {"source": "a", "destination": "b", "destination_type": "exchange"},
        ],
        consumers=[{"queue": {"name": "q"}, "consumer_tag": "c1"}],
        policies=[{"name": "p", "pattern": "^a$", "apply-to": "exchanges", "definition": {}}],
    )
    assert [exchange.name for exchange in topology.exchanges] == ["a", "b"]
    assert topology.exchange("a").type == "topic"
    assert topology.exchange("missing") is None
    assert topology.queue("q").name == "q"
    assert len(topology.bindings_from("a")) == 2
    assert topology.bindings_from("b") == ()
    assert [c.consumer_tag for c in topology.consumers_by_queue["q"]] == ["c1"]
    assert topology.exchange("a").policy == "p"
    assert topology.policies_readable is True


def test_build_topology_names_consumers_from_the_connections_list():
    topology = build_topology(
        "v",
        exchanges=[],
        queues=[{"name": "q"}],
        bindings=[],
        consumers=[
            {"queue": "q", "consumer_tag": "t1", "channel_details": {"connection_name": "c1"}},
            {"queue": "q", "consumer_tag": "t2", "channel_details": {"connection_name": "c2"}},
        ],
        connections=[{"name": "c1", "user_provided_name": "belery worker 1"}, {"name": "c2"}],
    )
    assert [c.label for c in topology.consumers_by_queue["q"]] == ["belery worker 1", "t2"]


def test_unreadable_policies_are_flagged():
    topology = build_topology("v", exchanges=[], queues=[], bindings=[], policies=None)
    assert topology.policies_readable is False
    assert topology.policies == ()
