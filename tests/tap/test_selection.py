"""Selections: what the tap chooses for a group of viewers before anything crosses the
channel layer. Pure parts as tables; the hand-over itself on the real broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from channels.layers import BaseChannelLayer, get_channel_layer

from flows.tap.filters import EventFilter
from flows.tap.selection import EVERYTHING, EVERYTHING_KEY, Prefilter, Selection
from flows.tap.viewer import join_tap, leave_tap
from tests.support.communicators import run_with_tap
from tests.support.tap_harness import amqp_channel


@pytest.mark.parametrize(
    ("params", "max_rate", "key_is_everything"),
    [
        ({}, None, True),
        ({}, 200, False),
        ({"routing_key": "a.#"}, None, False),
        ({"exchange": "amq.default"}, None, False),
    ],
)
def test_only_no_filter_and_no_cap_is_everything(params, max_rate, key_is_everything) -> None:
    selection = Selection.of(EventFilter.from_params(params), max_rate)
    assert (selection.key == EVERYTHING_KEY) is key_is_everything
    assert BaseChannelLayer().require_valid_group_name(
        f"flows-tap.0123456789abcdef.{selection.key}"
    )


def test_the_same_filter_is_the_same_key_whatever_order_its_parameters_came_in() -> None:
    one = Selection.of(EventFilter.from_params({"routing_key": "a.*", "kind": "publish"}), 5)
    two = Selection.of(EventFilter.from_params({"kind": "publish", "routing_key": "a.*"}), 5)
    other = Selection.of(EventFilter.from_params({"kind": "publish", "routing_key": "a.#"}), 5)
    assert one.key == two.key != other.key
    assert one.key != Selection.of(one.event_filter(), 6).key


@pytest.mark.parametrize(
    "selection",
    [
        EVERYTHING,
        Selection.of(EventFilter.from_params({"header": "k=v", "body": " err"}), 10_000),
        Selection.of(EventFilter.from_params({"exchange": "amq.default", "unroutable": "1"}), 1),
    ],
)
def test_a_selection_travels_in_a_control_message_unchanged(selection) -> None:
    assert Selection.from_message(selection.as_message()) == selection


@pytest.mark.parametrize(
    "message",
    [
        [],
        "all",
        {"filter": {"kind": "sideways"}},
        {"filter": {"kind": 1}},
        {"filter": ["kind"]},
        {"max_rate": 0},
        {"max_rate": 10_001},
        {"max_rate": "5"},
        {"max_rate": True},
    ],
)
def test_a_control_message_with_a_bad_selection_is_refused(message) -> None:
    with pytest.raises(ValueError):
        Selection.from_message(message)


def _selection(**params: str) -> Selection:
    return Selection.of(EventFilter.from_params(params), None)


@pytest.mark.parametrize(
    ("selections", "expected"),
    [
        # No viewer yet, or one taking everything (a recording, a JSON program): all made.
        ([], None),
        ([EVERYTHING], None),
        ([_selection(routing_key="a.#"), EVERYTHING], None),
        # A cap alone filters nothing.
        ([Selection((), 10)], None),
        # Asking more than the route tells: the event is needed to decide.
        ([_selection(routing_key="a.#"), _selection(queue="q")], None),
        ([_selection(header="x=1")], None),
        ([_selection(body="error")], None),
        ([_selection(unroutable="1")], None),
        # Route only: kind, exchange, routing key, and any mix of them.
        ([_selection(routing_key="a.#")], [{"routing_key": "a.#"}]),
        ([_selection(exchange="orders", kind="publish"), _selection(routing_key="b.*")],
         [{"exchange": "orders", "kind": "publish"}, {"routing_key": "b.*"}]),
    ],
)  # fmt: skip
def test_a_prefilter_only_where_every_selection_asks_only_the_route(selections, expected):
    prefilter = Prefilter.of(selections)
    assert (prefilter.as_message() if prefilter else None) == expected
    if prefilter is not None:  # it travels to a consumer process unchanged
        assert Prefilter.from_message(prefilter.as_message()) == prefilter


@pytest.mark.parametrize(
    ("params", "route", "wanted"),
    [
        ({"routing_key": "a.#"}, ("publish", "x", ["a.b"]), True),
        ({"routing_key": "a.#"}, ("publish", "x", ["b.a"]), False),
        # Any of a firehose event's keys (CC, BCC) will do.
        ({"routing_key": "a.*"}, ("publish", "x", ["z", "a.1"]), True),
        ({"routing_key": "a.#"}, ("publish", "x", []), False),
        ({"exchange": "amq.default"}, ("publish", "", ["q"]), True),
        ({"exchange": "orders"}, ("publish", "orders.eu", ["k"]), False),
        ({"kind": "deliver"}, ("publish", "x", ["k"]), False),
        ({"kind": "deliver", "routing_key": "#"}, ("deliver", "x", []), True),
    ],
)  # fmt: skip
def test_a_prefilter_wants_what_the_filter_matches(params, route, wanted) -> None:
    event_filter = EventFilter.from_params(params)
    kind, exchange, keys = route
    event = {"kind": kind, "exchange": exchange, "routing_keys": keys,
             "routing_key": keys[0] if keys else ""}  # fmt: skip
    assert event_filter.matches(event) is wanted  # the same answer the event gets
    assert Prefilter((event_filter,)).wants(kind, exchange, keys) is wanted


@pytest.mark.parametrize("consumers", [1, 2], ids=["its own consumer", "a consumer process"])
def test_the_filtered_out_flood_never_reaches_the_channel_layer(
    scratch_vhost: str, user, settings, consumers: int
) -> None:
    """What crosses the channel layer for a filtered viewer is what it wants, and how many
    the tap filtered out: the counts add up to everything published. The tap (and its
    consumer processes) made events only of the watched messages: the rest it ruled out
    on their route."""
    settings.FLOWS_TAP_CONSUMERS = consumers
    noise, wanted = 300, 3

    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("bus", "topic")  # before the tap starts: bound at once

    async def scenario() -> list[dict]:
        layer = get_channel_layer()
        member = SimpleNamespace(channel_layer=layer, channel_name=await layer.new_channel())
        selection = Selection.of(EventFilter.from_params({"routing_key": "wanted.#"}), None)
        ticket = await join_tap(member, scratch_vhost, user, "bindings", selection=selection)
        try:
            running = False
            while not running:
                message = await asyncio.wait_for(layer.receive(member.channel_name), 30)
                status = message.get("status", {})
                running = status.get("state") == "running" and (
                    status["consumers"]["running"] == consumers
                )

            def publish() -> None:
                with amqp_channel(scratch_vhost) as channel:
                    for n in range(noise):
                        channel.basic_publish("bus", "noise.x", b"%d" % n)
                        if n == noise // 2:  # the few watched, in the middle of the flood
                            for k in range(wanted):
                                channel.basic_publish("bus", f"wanted.{k}", b"w")

            batches: list[dict] = []
            await asyncio.to_thread(publish)
            accounted = 0
            while accounted < noise + wanted:
                message = await asyncio.wait_for(layer.receive(member.channel_name), 30)
                if message["type"] == "tap.batch":
                    batches.append(message)
                    accounted += len(message["events"]) + message["filtered_out"]
            counts.update(batches[-1]["status"]["counts"])
            return batches
        finally:
            await leave_tap(ticket)

    batches: list[dict] = []
    counts: dict = {}

    async def run() -> None:
        batches.extend(await scenario())

    run_with_tap(run)
    events = [event for batch in batches for event in batch["events"]]
    assert sorted(event["routing_key"] for event in events) == ["wanted.0", "wanted.1", "wanted.2"]
    assert sum(batch["filtered_out"] for batch in batches) == noise
    assert sum(batch["sampled_out"] for batch in batches) == 0
    assert counts["received"] == noise + wanted
    assert counts["ruled_out"] == noise  # never made into events
    # The batches cover every sequence number, with no hole and no overlap.
    covered = [seq for b in batches for seq in range(b["first_seq"], b["last_seq"] + 1)]
    assert covered == list(range(1, noise + wanted + 1))
