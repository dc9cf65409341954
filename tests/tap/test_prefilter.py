"""The tap's prefilter on the real broker (`flows.tap.selection.Prefilter`): what no viewer
wants is ruled out on its route, before an event is made of it, and still numbered and
counted; a firehose publish the publish page looks for is always made; consumer processes
follow the prefilter as it changes."""

from __future__ import annotations

from dataclasses import replace

import pika
import pytest

from flows.tap.filters import EventFilter
from flows.tap.selection import Prefilter
from tests.support.tap_harness import FAST, amqp_channel, running_tap
from tests.support.waiting import eventually


def _prefilter(**params: str) -> Prefilter:
    return Prefilter((EventFilter.from_params(params),))


def _routing_keys(events) -> list[str]:
    return [event["routing_key"] for event in events]


def test_what_no_viewer_wants_is_numbered_and_counted_but_never_made(scratch_vhost: str):
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("bus", "topic")
        with running_tap(scratch_vhost) as (tap, collector):
            tap.set_prefilter(_prefilter(routing_key="watched.#"))
            for n in range(50):
                channel.basic_publish("bus", "noise.x", b"%d" % n)
            channel.basic_publish("bus", "watched.1", b"w")
            collector.wait_for(
                lambda: collector.status["counts"]["received"] == 51, what="all 51 received"
            )
            tap.set_prefilter(None)  # a viewer taking everything joined: all made again
            channel.basic_publish("bus", "noise.after", b"n")
            collector.wait_events(2)
    counts = collector.status["counts"]
    assert counts["received"] == 52
    assert counts["ruled_out"] == 50
    assert _routing_keys(collector.events) == ["watched.1", "noise.after"]
    # The ruled-out messages kept their sequence numbers: the watched one is the 51st.
    assert [event["seq"] for event in collector.events] == [51, 52]


@pytest.mark.usefixtures("transactional_db")  # the firehose's lease
def test_firehose_publishes_the_publish_page_looks_for_are_always_made(scratch_vhost: str):
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
        with running_tap(scratch_vhost, "firehose") as (tap, collector):
            tap.set_prefilter(_prefilter(routing_key="watched"))
            channel.basic_publish("", "work", b"plain")
            channel.basic_publish(
                "", "work", b"from the publish page", pika.BasicProperties(message_id="m-1")
            )
            channel.basic_publish("", "watched", b"marker")
            collector.wait_for_event(lambda e: e["routing_key"] == "watched", what="the marker")
            ruled_out = collector.status["counts"]["ruled_out"]
    publishes = [e for e in collector.events if e["kind"] == "publish"]
    assert [e["body"]["preview"] for e in publishes] == ["from the publish page", "marker"]
    assert publishes[0]["properties"]["message_id"] == "m-1"
    assert ruled_out == 1  # the plain publish (deliveries: none, nobody consumes "work")


def test_consumer_processes_follow_the_prefilter_as_it_changes(scratch_vhost: str) -> None:
    settings = replace(FAST, consumers=2)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("bus", "fanout")
        with running_tap(scratch_vhost, settings=settings) as (tap, collector):
            collector.wait_for(
                lambda: collector.status["consumers"]["running"] == 2, what="two consumers"
            )

            def applied() -> bool:
                assert tap._pool is not None and tap._pool.prefilter is tap._prefilter
                assert tap._pool.prefilter_applied()
                return True

            tap.set_prefilter(_prefilter(exchange="elsewhere"))
            eventually(applied, what="the consumer process ruling out", interval=0.02)
            for n in range(1000):
                channel.basic_publish("bus", "", b"%d" % n)
            collector.wait_for(
                lambda: collector.status["counts"]["received"] == 1000,
                what="the first 1000 received",
                timeout=60,
            )
            assert collector.events == []
            tap.set_prefilter(None)
            eventually(applied, what="the consumer process making every event", interval=0.02)
            for n in range(1000, 2000):
                channel.basic_publish("bus", "", b"%d" % n)
            collector.wait_events(1000, timeout=60)
            consumers = collector.status["consumers"]
    counts = collector.status["counts"]
    assert counts["ruled_out"] == 1000
    assert sorted(int(e["body"]["preview"]) for e in collector.events) == list(range(1000, 2000))
    assert consumers["merged"] > 0  # the process made some of them
    assert [e["seq"] for e in collector.events] == sorted(e["seq"] for e in collector.events)
