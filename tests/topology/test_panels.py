"""What the topology page's panels say (`flows.topology.panels`), as tables (no broker here).

`tests/views/test_topology_panels.py` renders the same panels from the real broker.
"""

from __future__ import annotations

import json

import pytest

from flows.routing_rules.prediction import no_prediction, predict
from flows.topology.panels import (
    EDGE_LIST_LIMIT,
    MISS_LIST_LIMIT,
    Link,
    binding_label,
    node_details,
    route_panel,
    shown,
)
from flows.topology.parsing import build_topology
from flows.topology.records import DEFAULT_EXCHANGE_LABEL, Binding, Topology


def topology(
    exchanges: dict[str, tuple[str, dict]],
    queues: dict[str, dict],
    bindings: list[tuple[str, str, str, str, dict]],
    consumers: list[dict] | None = None,
) -> Topology:
    """A Topology built as a read of the management API builds it."""
    return build_topology(
        "v",
        exchanges=[
            {"name": name, "type": type_, "arguments": arguments}
            for name, (type_, arguments) in exchanges.items()
        ],
        queues=[{"name": name, "arguments": arguments} for name, arguments in queues.items()],
        bindings=[
            {
                "source": source,
                "destination": destination,
                "destination_type": kind,
                "routing_key": key,
                "arguments": arguments,
            }
            for source, kind, destination, key, arguments in bindings
        ],
        consumers=consumers or [],
    )


SHOP = topology(
    {
        "": ("direct", {}),
        "orders": ("topic", {"alternate-exchange": "unrouted"}),
        "unrouted": ("fanout", {}),
        "audit": ("headers", {}),
    },
    {
        "orders.eu": {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "eu"},
        "audited": {},
        "leftovers": {},
    },
    [
        ("orders", "queue", "orders.eu", "order.eu.*", {}),
        ("orders", "exchange", "audit", "order.#", {}),
        ("audit", "queue", "audited", "", {"x-match": "any", "region": "eu"}),
        ("unrouted", "queue", "leftovers", "", {}),
        ("gone", "queue", "leftovers", "k", {}),  # a source the vhost no longer lists
    ],
    consumers=[
        {
            "queue": {"name": "audited"},
            "consumer_tag": "c-1",
            "channel_details": {"name": "conn (1)"},
            "prefetch_count": 5,
            "ack_required": False,
        }
    ],
)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (True, "true"), (False, "false"), (0, "0"), (10, "10"), ("lazy", "lazy")],
)
def test_facts_read_as_the_panel_writes_them(value, text):
    assert shown(value) == text


@pytest.mark.parametrize(
    ("exchange_type", "key", "arguments", "label"),
    [
        ("topic", "a.*", {}, "a.*"),
        ("direct", "", {}, '""'),
        ("fanout", "ignored", {}, ""),
        ("headers", "", {"x-match": "any", "region": "eu"}, "region=eu x-match=any"),
        ("headers", "", {"n": 1, "on": True}, "n=1 on=true"),
        ("headers", "", {}, "(all)"),
        (None, "k", {}, "k"),  # the source is unknown: read as a key
    ],
)
def test_a_binding_is_labelled_as_the_graph_labels_its_edge(exchange_type, key, arguments, label):
    binding = Binding("x", "q", "queue", routing_key=key, arguments=arguments)
    assert binding_label(binding, exchange_type) == label


def test_an_exchange_lists_its_bindings_then_its_alternate_exchange():
    details = node_details(SHOP, kind="exchange", name="orders")
    assert details is not None
    assert (details.kind, details.title, details.graph_kind) == ("exchange", "orders", "exchange")
    assert dict(details.facts)["alternate exchange"] == "unrouted (argument)"
    outgoing, incoming = details.link_lists
    assert (outgoing.title, outgoing.total) == ("Bindings from here", 3)
    assert outgoing.links == (
        Link("queue", "orders.eu", "binding", "order.eu.*"),
        Link("exchange", "audit", "exchange binding", "order.#"),
        Link("exchange", "unrouted", "alternate exchange"),
    )
    assert (incoming.title, incoming.links) == ("Bound from", ())


def test_an_exchange_is_bound_from_exchanges_and_named_by_alternates():
    _, audit_from = node_details(SHOP, kind="exchange", name="audit").link_lists
    assert audit_from.links == (Link("exchange", "orders", "exchange binding", "order.#"),)
    _, unrouted_from = node_details(SHOP, kind="exchange", name="unrouted").link_lists
    assert unrouted_from.links == (Link("exchange", "orders", "alternate exchange"),)


def test_the_default_exchange_is_labelled_and_flagged():
    details = node_details(SHOP, kind="exchange", name="")
    assert (details.title, details.is_default_exchange) == (DEFAULT_EXCHANGE_LABEL, True)
    assert Link("exchange", "", "binding").title == DEFAULT_EXCHANGE_LABEL


def test_a_queue_lists_its_bindings_consumers_and_dead_letter_exchange():
    details = node_details(SHOP, kind="queue", name="orders.eu")
    facts = dict(details.facts)
    assert (facts["dead-letter exchange"], facts["dead-letter routing key"]) == (
        "dlx (argument)",
        "eu",
    )
    assert facts["ready"] == "—"  # no statistics yet
    assert details.arguments == json.dumps(
        {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "eu"}, indent=1
    )
    [bound_from] = details.link_lists
    assert bound_from.links == (Link("exchange", "orders", "binding", "order.eu.*"),)
    assert details.dead_letters.links == (
        Link("exchange", "dlx", "dead letters", "dead letters → eu"),
    )
    assert (details.consumers, details.consumer_count) == ((), 0)

    audited = node_details(SHOP, kind="queue", name="audited")
    assert audited.link_lists[0].links == (
        Link("exchange", "audit", "binding", "region=eu x-match=any"),
    )
    [consumer] = audited.consumers
    assert (consumer.consumer_tag, consumer.summary) == ("c-1", "prefetch 5 · auto-ack · conn (1)")
    assert audited.dead_letters is None and audited.arguments is None


def test_a_binding_from_an_exchange_the_vhost_does_not_list_is_left_out_as_on_the_graph():
    [bound_from] = node_details(SHOP, kind="queue", name="leftovers").link_lists
    assert bound_from.links == (Link("exchange", "unrouted", "binding", ""),)


def test_a_missing_exchange_named_as_a_dead_letter_exchange_is_a_node():
    details = node_details(SHOP, kind="exchange", name="dlx")
    assert (details.kind, details.graph_kind, details.facts) == ("missing", "exchange", ())
    [named_by] = details.link_lists
    assert (named_by.title, named_by.links) == (
        "Named by",
        (Link("queue", "orders.eu", "dead letters", "dead letters → eu"),),
    )


@pytest.mark.parametrize(
    ("kind", "name", "channel", "found"),
    [
        ("consumer", "c-1", "conn (1)", True),
        ("consumer", "c-1", "another (2)", False),  # tags are unique per channel only
        ("consumer", "c-2", "conn (1)", False),
        ("exchange", "nowhere", "", False),  # neither an exchange nor named by one
        ("queue", "nowhere", "", False),
        ("binding", "orders", "", False),
    ],
)
def test_a_node_is_found_by_its_kind_and_name(kind, name, channel, found):
    assert (node_details(SHOP, kind=kind, name=name, channel=channel) is not None) is found


def test_a_consumer_shows_its_settings():
    details = node_details(SHOP, kind="consumer", name="c-1", channel="conn (1)")
    assert (details.title, details.channel, details.graph_kind) == ("c-1", "conn (1)", "consumer")
    facts = dict(details.facts)
    assert (facts["queue"], facts["prefetch"], facts["ack mode"]) == ("audited", "5", "auto-ack")


def test_a_hub_lists_its_first_edges_and_counts_the_rest():
    many = EDGE_LIST_LIMIT + 5
    hub = topology(
        {"hub": ("fanout", {})},
        {f"q{n:03d}": {} for n in range(many)},
        [("hub", "queue", f"q{n:03d}", "", {}) for n in range(many)],
    )
    outgoing, _ = node_details(hub, kind="exchange", name="hub").link_lists
    assert (len(outgoing.links), outgoing.total, outgoing.more) == (EDGE_LIST_LIMIT, many, 5)


# --- a dry-run ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "routing_key", "headers", "chains"),
    [
        (
            "orders",
            "order.eu.paid",
            {"region": "eu"},
            [
                ("audited", "orders [order.#] → audit → audited"),
                ("orders.eu", "orders [order.eu.*] → orders.eu"),
            ],
        ),
        (
            "orders",
            "nope",
            None,
            [("leftovers", "orders alternate exchange → unrouted → leftovers")],
        ),
        (
            "",
            "audited",
            None,
            [("audited", f"{DEFAULT_EXCHANGE_LABEL} default exchange → audited")],
        ),
        ("", "nope", None, []),
    ],
)
def test_each_queue_reached_reads_as_its_chain_of_hops(exchange, routing_key, headers, chains):
    prediction = predict(SHOP, exchange=exchange, routing_key=routing_key, headers=headers)
    panel = route_panel(prediction)
    assert [(chain.queue, chain.chain) for chain in panel.chains] == chains
    assert all(chain.reason for chain in panel.chains)
    assert json.loads(panel.graph_route) == {
        "exchange": exchange,
        "unroutable": not chains,
        "hops": prediction.hops,
    }


def test_the_misses_say_why_and_a_long_list_is_cut_and_counted():
    panel = route_panel(predict(SHOP, exchange="orders", routing_key="order.us.paid"))
    assert [(miss.edge, miss.reason) for miss in panel.misses] == [
        ("orders → orders.eu", 'pattern "order.eu.*" does not match "order.us.paid"'),
        ("audit → audited", 'x-match any: no header argument matched (header "region" is missing)'),
    ]

    many = MISS_LIST_LIMIT + 3
    wide = topology(
        {"t": ("direct", {})},
        {f"q{n:03d}": {} for n in range(many)},
        [("t", "queue", f"q{n:03d}", f"k{n}", {}) for n in range(many)],
    )
    panel = route_panel(predict(wide, exchange="t", routing_key="none"))
    assert (len(panel.misses), panel.more_misses) == (MISS_LIST_LIMIT, 3)


def test_no_prediction_draws_nothing():
    panel = route_panel(no_prediction("broker down", vhost="v", exchange="x", routing_key="k"))
    assert (panel.chains, panel.misses, panel.more_misses) == ((), (), 0)
    assert json.loads(panel.graph_route) == {"exchange": "x", "unroutable": False, "hops": []}
