"""`wait_for_routed_queues`: the publish page asks what the firehose saw (real broker)."""

from __future__ import annotations

import threading
import time

import pika
import pytest

from flows.tap import observe
from flows.tap.observe import firehose_running, wait_for_routed_queues
from tests.support.tap_harness import amqp_channel, running_tap
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("transactional_db")


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
            assert wait_for_routed_queues(scratch_vhost, "m-routed", 30) == ["icecream"]
            assert wait_for_routed_queues(scratch_vhost, "m-unroutable", 30) == []
            started = time.monotonic()
            assert wait_for_routed_queues(scratch_vhost, "never-published", 0.3) is None
            # It waited its timeout out (a lower bound: no machine is too slow for it).
            assert time.monotonic() - started >= 0.3
        assert not firehose_running(scratch_vhost)


def test_waits_for_a_message_published_after_the_question(scratch_vhost: str) -> None:
    with amqp_channel(scratch_vhost) as channel, running_tap(scratch_vhost, "firehose"):
        channel.queue_declare("work")
        answer: list = []
        waiter = threading.Thread(
            target=lambda: answer.append(wait_for_routed_queues(scratch_vhost, "m-late", 30))
        )
        waiter.start()
        # Publish only once the question waits (CPython's Condition keeps its waiters there).
        eventually(lambda: observe._changed._waiters, what="the question waiting")
        channel.basic_publish("", "work", b"x", pika.BasicProperties(message_id="m-late"))
        waiter.join(60)
    assert answer == [["work"]]


def test_without_a_firehose_tap_it_answers_none_at_once(scratch_vhost: str) -> None:
    with running_tap(scratch_vhost, "bindings"):
        started = time.monotonic()
        assert wait_for_routed_queues(scratch_vhost, "anything", 60) is None
        # Not after waiting its 60 s out: at once (however slow the machine, well before that).
        assert time.monotonic() - started < 60
