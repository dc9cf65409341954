"""A tap with consumer processes on its queue (`FLOWS_TAP_CONSUMERS`), on the real broker:
one stream in order of arrival whose counts add up, consumers restarted when they die, and
nothing left behind."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from flows.tap.tap import TapSettings
from tests.support.tap_harness import (
    FAST,
    amqp_channel,
    dashboard_connections,
    running_tap,
    tap_queues,
)
from tests.support.waiting import eventually

THREE = replace(FAST, consumers=3)


def _bodies(events) -> list[str]:
    return [event["body"]["preview"] for event in events]


def _wait_all_running(collector, processes: int) -> None:
    collector.wait_for(
        lambda: collector.status["consumers"]["running"] == processes,
        what=f"{processes} consumers running",
        timeout=30,
    )


def test_consumer_processes_share_the_queue_and_the_counts_add_up(
    scratch_vhost: str, management_client
) -> None:
    published = 20_000
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("flood", "fanout")
        with running_tap(scratch_vhost, settings=THREE) as (tap, collector):
            _wait_all_running(collector, 3)
            queue = management_client.queue(scratch_vhost, tap.queue_name)
            assert queue["exclusive"] is False  # other connections consume it
            assert queue["auto_delete"] is True
            assert queue["arguments"]["x-expires"] == 60_000
            for i in range(published):
                channel.basic_publish("flood", "", str(i).encode())
            collector.wait_for(
                lambda: collector.status["counts"]["received"] == published,
                what="every message received",
                timeout=120,
            )
            consumers = collector.status["consumers"]
    counts = collector.status["counts"]
    assert counts["overflow_dropped"] == 0
    assert len(collector.events) == counts["received"] == published
    # One sequence without holes, in order of arrival; every message exactly once.
    assert [e["seq"] for e in collector.events] == list(range(1, published + 1))
    assert sorted(map(int, _bodies(collector.events))) == list(range(published))
    # The processes took part, and so did the tap's own consumer.
    assert 0 < consumers["merged"] < published
    assert consumers["processes"] == 3 and consumers["restarts"] == 0
    assert tap_queues(management_client, scratch_vhost) == []


def test_a_killed_consumer_process_is_started_again_and_nothing_is_lost(
    scratch_vhost: str, management_client
) -> None:
    settings = replace(FAST, consumers=2)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("t", "topic")
        with running_tap(scratch_vhost, settings=settings) as (tap, collector):
            _wait_all_running(collector, 2)
            [pid] = tap._pool.pids()
            os.kill(pid, signal.SIGKILL)
            collector.wait_for(
                lambda: (
                    collector.status["consumers"]["restarts"] == 1
                    and collector.status["consumers"]["running"] == 2
                ),
                what="the consumer process started again",
                timeout=30,
            )
            assert tap._pool.pids() != [pid]
            eventually(
                lambda: management_client.queue(scratch_vhost, tap.queue_name)["consumers"] == 2,
                what="two consumers on the tap queue again",
                timeout=30,
                interval=0.2,
            )
            for i in range(2000):
                channel.basic_publish("t", "a.b", str(i).encode())
            collector.wait_for(
                lambda: collector.status["counts"]["received"] == 2000,
                what="every message received",
                timeout=60,
            )
            assert collector.status["consumers"]["merged"] > 0  # the new process took some
            pids = tap._pool.pids()
    assert sorted(map(int, _bodies(collector.events))) == list(range(2000))
    for pid in pids:  # stopped with the tap
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert tap_queues(management_client, scratch_vhost) == []
    eventually(
        lambda: not dashboard_connections(management_client, scratch_vhost),
        what="no dashboard connection left",
    )


@pytest.mark.usefixtures("transactional_db")  # the firehose's lease
def test_firehose_with_consumer_processes_knows_the_default_exchanges_queues(
    scratch_vhost: str, management_client
) -> None:
    """A consumer process cannot ask which queues exist: the tap corrects what the broker
    says the default exchange routed to, as it does for its own deliveries."""
    settings = TapSettings(sync_interval_s=0.5, consumers=2)
    with amqp_channel(scratch_vhost) as channel:
        channel.queue_declare("work")
        with running_tap(scratch_vhost, "firehose", settings=settings) as (_, collector):
            _wait_all_running(collector, 2)
            for i in range(200):
                channel.basic_publish("", "work", f"task {i}".encode())
                channel.basic_publish("", "no-such-queue", f"dropped {i}".encode())
            collector.wait_events(400, timeout=60)
            merged = collector.status["consumers"]["merged"]
    routes = {
        (e["routing_key"], tuple(e["routed_queues"]), e["unroutable"]) for e in collector.events
    }
    assert routes == {("work", ("work",), False), ("no-such-queue", (), True)}
    assert merged > 0
    assert [e["seq"] for e in collector.events] == list(range(1, len(collector.events) + 1))
    assert tap_queues(management_client, scratch_vhost) == []
