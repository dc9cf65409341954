"""`wait_for_routed_queues`: the publish page asks what the firehose saw (real broker)."""

from __future__ import annotations

import threading
import time

import pika
import pytest

from flows.runtime import runtime
from tests.tap.helpers import amqp_channel, running_tap

pytestmark = pytest.mark.usefixtures("transactional_db")


# What the taps these tests start record: the process's own observations.
def firehose_running(vhost: str) -> bool:
    return runtime().firehose_observations.firehose_running(vhost)


def wait_for_routed_queues(vhost: str, message_id: str, timeout_s: float) -> list[str] | None:
    return runtime().firehose_observations.wait_for_routed_queues(vhost, message_id, timeout_s)


def test_answers_with_the_queues_the_broker_routed_to(scratch_vhost: str) -> None:
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("food", "topic")
        channel.queue_declare("icecream")
        channel.queue_bind("icecream", "food", "*.icecream")
        with running_tap(scratch_vhost, "firehose"):
            assert firehose_running(scratch_vhost)
            channel.basic_publish(
                "food", "vanilla.icecream", b"1", pika.BasicProperties(message_id="m-routed")
            )
            channel.basic_publish(
                "food", "no.match", b"2", pika.BasicProperties(message_id="m-unroutable")
            )
            assert wait_for_routed_queues(scratch_vhost, "m-routed", 5) == ["icecream"]
            assert wait_for_routed_queues(scratch_vhost, "m-unroutable", 5) == []
            started = time.monotonic()
            assert wait_for_routed_queues(scratch_vhost, "never-published", 0.3) is None
            assert 0.3 <= time.monotonic() - started < 2
        assert not firehose_running(scratch_vhost)


def test_waits_for_a_message_published_after_the_question(scratch_vhost: str) -> None:
    with amqp_channel(scratch_vhost) as channel, running_tap(scratch_vhost, "firehose"):
        channel.queue_declare("work")
        answer: list = []
        waiter = threading.Thread(
            target=lambda: answer.append(wait_for_routed_queues(scratch_vhost, "m-late", 5))
        )
        waiter.start()
        time.sleep(0.2)
        channel.basic_publish("", "work", b"x", pika.BasicProperties(message_id="m-late"))
        waiter.join(6)
    assert answer == [["work"]]


def test_without_a_firehose_tap_it_answers_none_at_once(scratch_vhost: str) -> None:
    with running_tap(scratch_vhost, "bindings"):
        started = time.monotonic()
        assert wait_for_routed_queues(scratch_vhost, "anything", 5) is None
        assert time.monotonic() - started < 0.5
