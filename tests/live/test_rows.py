"""Tap events as feed rows, graph routes and details."""

import json

import pytest

from flows.live.prediction import predict_event
from flows.live.rows import (
    ROW_PREVIEW_LIMIT,
    build_details,
    build_row,
    clock,
    consumer_for_delivery,
    show_value,
    x_death_history,
)
from flows.topology.parsing import build_topology
from flows.topology.records import DEFAULT_EXCHANGE_LABEL
from tests.support.tap_events import RECEIVED_AT, delivered, published, published_via_bindings

# With the dashboard's own objects, as the broker lists them while a tap runs.
TOPOLOGY = build_topology(
    "v",
    exchanges=[
        {"name": "food", "type": "topic"},
        {"name": "relay", "type": "fanout"},
        {"name": "flows-dashboard.x", "type": "fanout"},
    ],
    queues=[{"name": "pizza"}, {"name": "all"}, {"name": "flows-dashboard.tap.1"}],
    bindings=[
        {
            "source": "food",
            "destination": "pizza",
            "destination_type": "queue",
            "routing_key": "food.pizza",
        },
        {
            "source": "food",
            "destination": "relay",
            "destination_type": "exchange",
            "routing_key": "#",
        },
        {
            "source": "relay",
            "destination": "all",
            "destination_type": "queue",
            "routing_key": "",
        },
        # The tap's own catch-all binding: must not count as a route.
        {
            "source": "food",
            "destination": "flows-dashboard.tap.1",
            "destination_type": "queue",
            "routing_key": "#",
        },
    ],
    consumers=[
        {
            "queue": {"name": "pizza"},
            "consumer_tag": "worker-1",
            "channel_details": {"connection_name": "c1", "number": 1},
        },
        {
            "queue": {"name": "pizza"},
            "consumer_tag": "worker-2",
            "channel_details": {"connection_name": "c1", "number": 2},
        },
        {
            "queue": {"name": "all"},
            "consumer_tag": "ctag1.0732618046416430393d",
            "channel_details": {"connection_name": "c3", "number": 1},
        },
    ],
    connections=[{"name": "c3", "user_provided_name": "belery worker 2"}],
)


@pytest.mark.parametrize(
    ("tapped", "queues", "unroutable", "predicted", "route_unknown"),
    [
        (published(), ("pizza",), False, False, False),
        (published(routed_queues=["a", "b"]), ("a", "b"), False, False, False),
        (published(routed_queues=[]), (), True, False, False),
        # Firehose with no routed queue: unroutable even if the flag is missing.
        ({**published(routed_queues=[]), "unroutable": None}, (), True, False, False),
        # Bindings mode: the dry-run predicts (without the tap's own binding).
        (published_via_bindings(), ("all", "pizza"), False, True, False),
        (published_via_bindings(exchange="relay"), ("all",), False, True, False),
        (published_via_bindings(exchange="", routing_key="nowhere"), (), True, True, False),
        (published_via_bindings(exchange="gone"), (), False, False, True),
    ],
)
def test_publish_rows(tapped, queues, unroutable, predicted, route_unknown):
    row = build_row(tapped, prediction=predict_event(TOPOLOGY, tapped), topology=TOPOLOGY)
    assert (row.queues, row.unroutable, row.predicted, row.route_unknown) == (
        queues,
        unroutable,
        predicted,
        route_unknown,
    )


def test_bindings_rows_without_a_topology_say_the_route_is_unknown():
    tapped = published_via_bindings()
    row = build_row(tapped, prediction=predict_event(None, tapped))
    assert row.route_unknown and not row.unroutable and not row.queues


@pytest.mark.parametrize(
    ("routed_queues", "hops"),
    [
        (["pizza"], [("food", "pizza", "queue")]),
        # The broker says only "all": the dry-run's chain through relay is drawn.
        (["all"], [("food", "relay", "exchange"), ("relay", "all", "queue")]),
        # A queue the dry-run did not predict (topology out of date) gets a direct hop.
        (["new"], [("food", "new", "queue")]),
        ([], []),
    ],
)
def test_firehose_routes_draw_exactly_the_routed_queues(routed_queues, hops):
    tapped = published(routed_queues=routed_queues)
    row = build_row(tapped, prediction=predict_event(TOPOLOGY, tapped), topology=TOPOLOGY)
    route = json.loads(row.route_json)
    assert [(h["source"], h["destination"], h["destination_type"]) for h in route["hops"]] == hops
    assert route["exchange"] == "food"
    assert route["unroutable"] is (not hops)


def test_a_deliver_row_names_the_consumer_by_its_connection_name():
    row = build_row(delivered(queue="all", connection="c3", channel=1), topology=TOPOLOGY)
    assert row.consumer == "belery worker 2"
    # The graph still knows the consumer node by its tag.
    assert row.consumer_tag == "ctag1.0732618046416430393d"
    assert json.loads(row.route_json)["consumer_tag"] == "ctag1.0732618046416430393d"


@pytest.mark.parametrize(
    ("connection", "channel", "tag", "shown"),
    [
        ("c1", 1, "worker-1", "worker-1"),
        ("c1", 2, "worker-2", "worker-2"),
        ("c2", 1, None, "c2 ch 1"),
        (None, None, None, None),
    ],
)
def test_deliver_rows_name_the_consumer(connection, channel, tag, shown):
    tapped = delivered(queue="pizza", connection=connection, channel=channel)
    assert consumer_for_delivery(TOPOLOGY, tapped) == tag
    row = build_row(tapped, topology=TOPOLOGY)
    assert row.queue == "pizza"
    assert row.consumer == shown
    assert json.loads(row.route_json) == {"kind": "deliver", "queue": "pizza", "consumer_tag": tag}


@pytest.mark.parametrize(
    ("exchange", "label"), [("", DEFAULT_EXCHANGE_LABEL), ("food", "food"), ("<b>", "<b>")]
)
def test_exchange_labels(exchange, label):
    assert build_row(published(exchange=exchange)).exchange_label == label


def test_the_row_carries_the_event_as_json():
    tapped = published(headers={"k": "<script>"})
    assert json.loads(build_row(tapped).event_json) == tapped


@pytest.mark.parametrize(
    ("epoch", "text"), [(0, "00:00:00.000"), (RECEIVED_AT, "22:50:00.250"), (None, ""), ("x", "")]
)
def test_clock(epoch, text):
    assert clock(epoch) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (1, "1"),
        (True, "true"),
        (None, "null"),
        ({"b": 1, "a": [1]}, '{"a": [1], "b": 1}'),
    ],
)
def test_show_value(value, text):
    assert show_value(value) == text


def test_details_list_every_property_in_spec_order_and_every_header():
    tapped = published(
        properties={"type": "t", "content_type": "application/json"},
        headers={"b": 2, "a": "<img src=x onerror=alert(1)>"},
    )
    # Details are built from what the page posts back: unknown and empty properties too.
    details = build_details(
        {**tapped, "properties": {**tapped["properties"], "x-odd": 1, "priority": None}}
    )
    assert details.properties == (
        ("content_type", "application/json"),
        ("type", "t"),
        ("x-odd", "1"),
    )
    assert details.headers == (("a", "<img src=x onerror=alert(1)>"), ("b", "2"))
    assert details.body.kind == "json"


@pytest.mark.parametrize(
    ("header", "history"),
    [
        (None, ()),
        ("garbage", ()),
        (
            [
                {
                    "count": 2,
                    "reason": "rejected",
                    "queue": "work",
                    "time": "2026-11-26T22:00:00+00:00",
                    "exchange": "",
                    "routing-keys": ["work"],
                },
                "not a table",
                {"reason": "expired", "queue": "delay"},
            ],
            (
                (
                    "work",
                    "rejected",
                    "2",
                    DEFAULT_EXCHANGE_LABEL,
                    ("work",),
                    "2026-11-26T22:00:00+00:00",
                ),
                ("delay", "expired", "", DEFAULT_EXCHANGE_LABEL, (), ""),
            ),
        ),
    ],
)
def test_x_death_history(header, history):
    parsed = x_death_history({"x-death": header} if header is not None else {})
    assert (
        tuple((d.queue, d.reason, d.count, d.exchange, d.routing_keys, d.time) for d in parsed)
        == history
    )


@pytest.mark.parametrize(
    ("preview_length", "kept", "truncated"),
    [
        (10, 10, False),
        (ROW_PREVIEW_LIMIT, ROW_PREVIEW_LIMIT, False),
        (ROW_PREVIEW_LIMIT + 1, ROW_PREVIEW_LIMIT, True),
    ],
)
def test_rows_keep_a_bounded_body_preview(preview_length, kept, truncated):
    tapped = published(body=b"x" * preview_length)
    assert not tapped["body"]["truncated"]  # the tap's preview limit is larger
    body = json.loads(build_row(tapped).event_json)["body"]
    assert (len(body["preview"]), body["truncated"], body["size"]) == (
        kept,
        truncated,
        preview_length,
    )
