"""The bindings-mode tap on the real broker: coverage rules, sync, safety, overflow, reconnect."""

from __future__ import annotations

import time

import pika
import pytest

from flows.tap.tap import OVERFLOW_REASON, TapSettings
from tests.support.broker_admin import close_connection
from tests.support.tap_harness import amqp_channel, running_tap, tap_bindings, tap_queues
from tests.support.waiting import eventually


@pytest.mark.parametrize(
    ("exchange_type", "routing_key", "headers"),
    [
        ("topic", "food.icecream", None),
        ("topic", "", None),  # the empty key is zero words: `#` matches it
        ("fanout", "anything", None),
        ("headers", "", {"x-anything": "1"}),
        ("headers", "", None),
    ],
)
def test_catch_all_binding_sees_every_message(
    scratch_vhost: str, exchange_type: str, routing_key: str, headers
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("ex", exchange_type)
        with running_tap(scratch_vhost) as (_, collector):
            assert "ex" in collector.status["coverage"]["exchanges"]
            channel.basic_publish(
                "ex", routing_key, b"hello", pika.BasicProperties(headers=headers)
            )
            [event] = collector.wait_events(1)
    assert event["exchange"] == "ex"
    assert event["routing_key"] == routing_key
    assert event["kind"] == "publish"
    assert event["source"] == "bindings"
    assert event["headers"] == (headers or {})
    assert event["body"]["preview"] == "hello"


def test_direct_exchange_is_tapped_on_its_bound_keys_only(scratch_vhost: str) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("dir", "direct")
        channel.queue_declare("orders")
        channel.queue_bind("orders", "dir", "order.created")
        with running_tap(scratch_vhost) as (_, collector):
            assert collector.status["coverage"]["direct_keys"]["dir"] == ["order.created"]
            channel.basic_publish("dir", "order.unbound", b"nobody listens")
            # The marker: published after it, so a tapped "order.unbound" would come first.
            channel.basic_publish("dir", "order.created", b"seen")
            collector.wait_for_event(lambda e: e["body"]["preview"] == "seen", what="the marker")
    assert [(e["exchange"], e["routing_key"]) for e in collector.events] == [
        ("dir", "order.created")
    ]
    assert collector.events[0]["body"]["preview"] == "seen"


def test_default_exchange_is_reported_not_covered(scratch_vhost: str) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
        channel.exchange_declare("fan", "fanout")
        with running_tap(scratch_vhost) as (_, collector):
            coverage = collector.status["coverage"]
            channel.basic_publish("", "work", b"straight to the queue")
            channel.basic_publish("fan", "", b"marker")  # a tapped "work" would come first
            collector.wait_for_event(lambda e: e["body"]["preview"] == "marker", what="the marker")
    assert coverage["not_covered"] == [""]
    assert "default exchange" in " ".join(coverage["warnings"])
    assert [e["exchange"] for e in collector.events] == ["fan"]


def test_says_that_its_bindings_make_unroutable_messages_routable(scratch_vhost: str) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("events", "topic")
        with running_tap(scratch_vhost) as (_, collector):
            warnings = collector.status["coverage"]["warnings"]
    assert any("otherwise-unroutable" in w and "'events'" in w for w in warnings)


def test_new_exchanges_and_keys_are_bound_and_deleted_ones_dropped(
    scratch_vhost: str, management_client
) -> None:
    with amqp_channel(scratch_vhost) as channel, running_tap(scratch_vhost) as (tap, collector):
        channel.exchange_declare("late.topic", "topic")
        channel.exchange_declare("late.direct", "direct")
        channel.queue_declare("q")
        channel.queue_bind("q", "late.direct", "k")
        collector.wait_for(
            lambda: (
                collector.status["coverage"]["direct_keys"].get("late.direct") == ["k"]
                and "late.topic" in collector.status["coverage"]["exchanges"]
            ),
            what="the new exchanges in the tap's coverage",
        )
        # The binding follows the plan on the tap's next tick.
        eventually(
            lambda: (
                {("late.topic", "#"), ("late.direct", "k")}
                <= tap_bindings(management_client, scratch_vhost, tap.queue_name)
            ),
            what="the tap queue bound to the new exchanges",
        )
        channel.basic_publish("late.topic", "a.b", b"1")
        channel.basic_publish("late.direct", "k", b"2")
        collector.wait_events(2)
        channel.exchange_delete("late.topic")
        collector.wait_for(
            lambda: "late.topic" not in collector.status["coverage"]["exchanges"],
            what="the deleted exchange gone from the coverage",
        )
        # The tap survives its exchange disappearing, and keeps tapping the rest.
        channel.basic_publish("late.direct", "k", b"3")
        collector.wait_events(3)
        assert collector.status["state"] == "running"


def test_never_consumes_from_or_changes_a_users_queue(scratch_vhost: str, management_client):
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("t", "topic")
        channel.queue_declare("users.queue", arguments={"x-max-length": 1000})
        channel.queue_bind("users.queue", "t", "#")
        before = management_client.queue(scratch_vhost, "users.queue")
        with running_tap(scratch_vhost) as (_, collector):
            for i in range(20):
                channel.basic_publish("t", f"k.{i}", b"x")
            collector.wait_events(20)
        declared = channel.queue_declare("users.queue", passive=True)
    after = management_client.queue(scratch_vhost, "users.queue")
    assert declared.method.message_count == 20
    assert declared.method.consumer_count == 0
    assert after["arguments"] == before["arguments"]
    assert after["durable"] == before["durable"]


def test_tap_queue_is_exclusive_auto_delete_bounded_and_gone_after_stop(
    scratch_vhost: str, management_client
) -> None:
    with running_tap(scratch_vhost) as (tap, _):
        queue = management_client.queue(scratch_vhost, tap.queue_name)
        assert queue["exclusive"] is True
        assert queue["auto_delete"] is True
        assert queue["arguments"]["x-max-length"] == 50_000
        assert queue["arguments"]["x-overflow"] == "drop-head"
        assert len(tap_queues(management_client, scratch_vhost)) == 2  # tap + overflow
    assert tap_queues(management_client, scratch_vhost) == []


def test_overflow_on_the_broker_is_counted_and_everything_adds_up(scratch_vhost: str) -> None:
    """A tap slower than the publishers loses the oldest messages on the broker, and says
    exactly how many."""
    settings = TapSettings(queue_max_length=500, sync_interval_s=0.5, prefetch=50)
    published = 3000
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("burst", "fanout")
        with running_tap(scratch_vhost, settings=settings) as (tap, collector):
            original = tap._sink

            def slow_sink(events, status):  # a tap thread that can take ~500 messages/s
                if events:
                    time.sleep(0.05)  # the slowness is the behaviour under test: it stays
                original(events, status)

            tap._sink = slow_sink
            for i in range(published):
                channel.basic_publish("burst", "", str(i).encode())
            collector.wait_for(
                lambda: (
                    collector.status["counts"]["received"]
                    + collector.status["counts"]["overflow_dropped"]
                    == published
                ),
                what="every message received or counted as dropped",
                timeout=60,
            )
    counts = collector.status["counts"]
    assert counts["overflow_dropped"] > 0
    assert counts["drop_reasons"] == {OVERFLOW_REASON: counts["overflow_dropped"]}
    assert len(collector.events) == counts["received"]
    assert [e["seq"] for e in collector.events] == list(range(1, counts["received"] + 1))
    # drop-head: the newest messages survive.
    assert collector.events[-1]["body"]["preview"] == str(published - 1)


def _tap_connection(management_client, vhost: str) -> str | None:
    for connection in management_client.connections(vhost):
        name = (connection.get("client_properties") or {}).get("connection_name", "")
        if connection.get("vhost") == vhost and name.startswith("flows-dashboard: tap"):
            return connection["name"]
    return None


def test_reconnects_after_its_connection_is_closed_and_reports_the_gap(
    scratch_vhost: str, management_client
) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("t", "topic")
        with running_tap(scratch_vhost) as (tap, collector):
            first_queue = tap.queue_name
            name = eventually(  # the management API lists connections lazily
                lambda: _tap_connection(management_client, scratch_vhost),
                what="the tap's connection listed by the broker",
                timeout=30,
                interval=0.2,
            )
            close_connection(management_client, name)
            collector.wait_for(lambda: collector.status["gaps"], what="a gap reported")
            collector.wait_for(
                lambda: collector.status["state"] == "running", what="the tap running again"
            )
            channel.basic_publish("t", "after.reconnect", b"x")
            [event] = collector.wait_events(1)
            gap = collector.status["gaps"][0]
            assert tap.queue_name != first_queue
            assert first_queue not in tap_queues(management_client, scratch_vhost)
    assert event["routing_key"] == "after.reconnect"
    assert gap["duration_s"] >= 0
    assert gap["message"].startswith("disconnected ")
    assert gap["message"].endswith("messages in that window were not captured")
    assert tap_queues(management_client, scratch_vhost) == []
