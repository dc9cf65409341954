"""The long-lived publisher against the real broker: each outcome the broker can give."""

from __future__ import annotations

import pytest

from flows.publishing.fields import parse_publish_request
from flows.publishing.publisher import PublishFailed, get_publisher, publish, start_repeat
from tests.support.broker_admin import get_messages
from tests.support.publishing import DemoTopology, close_publisher_connection
from tests.support.waiting import eventually


def message(vhost: str, **fields):
    return parse_publish_request(
        {"vhost": vhost, "exchange": "demo.topic", "routing_key": "a.b", "body": "hi", **fields}
    )


def test_a_routed_message_is_confirmed_and_lands_in_the_bound_queues(demo: DemoTopology):
    outcome = publish(message(demo.vhost, routing_key="a.b"))
    assert (outcome.status, outcome.confirmed, outcome.returned) == ("routed", True, False)
    assert demo.wait_for_depth("q.a", 1) == 1
    assert demo.wait_for_depth("q.all", 1) == 1


def test_an_unroutable_mandatory_message_is_returned_with_the_reply(demo: DemoTopology):
    outcome = publish(message(demo.vhost, exchange="demo.direct", routing_key="nobody"))
    assert outcome.status == "unroutable"
    assert (outcome.reply_code, outcome.reply_text) == (312, "NO_ROUTE")


def test_without_mandatory_an_unroutable_message_is_just_confirmed(demo: DemoTopology):
    outcome = publish(
        message(demo.vhost, exchange="demo.direct", routing_key="nobody", mandatory=False)
    )
    assert (outcome.status, outcome.reply_code) == ("routed", None)


def test_a_message_the_queue_rejects_is_nacked(demo: DemoTopology):
    outcome = publish(message(demo.vhost, exchange="demo.direct", routing_key="full"))
    assert (outcome.status, outcome.confirmed, outcome.returned) == ("nacked", False, False)
    assert publish(message(demo.vhost)).status == "routed"  # the channel stays usable


def test_a_repeat_run_counts_nacks(demo: DemoTopology):
    run = start_repeat(
        message(demo.vhost, exchange="demo.direct", routing_key="full", repeat="300")
    )
    assert run.wait(30)
    assert (run.state, run.confirmed, run.nacked, run.returned) == ("done", 0, 300, 0)


def test_a_nonexistent_exchange_is_a_clear_error_and_the_next_publish_works(demo: DemoTopology):
    with pytest.raises(PublishFailed) as raised:
        publish(message(demo.vhost, exchange="no.such.exchange"))
    assert raised.value.field == "exchange"
    assert "no exchange 'no.such.exchange'" in raised.value.message
    assert "404" in raised.value.message
    assert publish(message(demo.vhost)).status == "routed"
    assert demo.wait_for_depth("q.a", 1) == 1


def test_a_foreign_user_id_is_refused_on_its_field(demo: DemoTopology):
    with pytest.raises(PublishFailed) as raised:
        publish(message(demo.vhost, user_id="somebody-else"))
    assert raised.value.field == "user_id"
    assert publish(message(demo.vhost)).status == "routed"


def test_typed_headers_and_properties_reach_the_broker_intact(demo: DemoTopology):
    request = message(
        demo.vhost,
        routing_key="x",
        headers={"i": 7, "f": 1.5, "b": True, "t": {"n": [1, "two"]}, "s": "é"},
        priority="5",
        expiration="60000",
        delivery_mode="persistent",
        timestamp="1700000000",
        type="t",
        app_id="flows",
        content_type="application/json",
    )
    assert publish(request).status == "routed"
    # Read it back through the management API (pika's decoder truncates doubles to ints).
    [got] = get_messages(demo.client, demo.vhost, "q.all")
    properties = got["properties"]
    assert got["payload"] == "hi"
    assert properties["headers"] == {"i": 7, "f": 1.5, "b": True, "t": {"n": [1, "two"]}, "s": "é"}
    assert (properties["priority"], properties["expiration"]) == (5, "60000")
    assert (properties["delivery_mode"], properties["timestamp"]) == (2, 1700000000)
    assert (properties["type"], properties["app_id"]) == ("t", "flows")
    assert properties["content_type"] == "application/json"
    assert properties["message_id"] == request.message_id


def test_one_connection_serves_many_publishes(demo: DemoTopology):
    publish(message(demo.vhost))
    connection = get_publisher(demo.vhost)._connection
    for _ in range(20):
        publish(message(demo.vhost))
    assert get_publisher(demo.vhost)._connection is connection
    assert demo.wait_for_depth("q.a", 21) == 21


def test_a_connection_closed_by_the_broker_is_reopened_by_the_next_publish(demo: DemoTopology):
    publish(message(demo.vhost))
    close_publisher_connection(demo.client, demo.vhost)  # returns once the broker closed it
    # The publisher notices the closed connection before publishing and reconnects.
    assert publish(message(demo.vhost)).status == "routed"
    assert demo.wait_for_depth("q.a", 2) == 2


def test_a_broker_that_cannot_be_reached_is_a_clear_error(settings, demo: DemoTopology):
    from tests.support.live_server import free_port

    settings.AMQP_URL = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    with pytest.raises(PublishFailed) as raised:
        publish(message(f"{demo.vhost}"), timeout=10)
    assert "unreachable" in raised.value.message
    assert "s3cret" not in raised.value.message


def test_a_repeat_run_publishes_every_copy_and_counts_the_confirms(demo: DemoTopology):
    run = start_repeat(message(demo.vhost, repeat="3000"))
    assert run.wait(30)
    assert (run.state, run.published, run.confirmed, run.nacked, run.returned) == (
        "done",
        3000,
        3000,
        0,
        0,
    )
    assert demo.wait_for_depth("q.a", 3000) == 3000


def test_a_repeat_run_counts_returns(demo: DemoTopology):
    run = start_repeat(message(demo.vhost, exchange="demo.direct", routing_key="x", repeat="500"))
    assert run.wait(30)
    assert (run.state, run.confirmed, run.returned) == ("done", 500, 500)


def test_a_repeat_run_keeps_to_its_rate(demo: DemoTopology):
    run = start_repeat(message(demo.vhost, repeat="100", rate="200"))
    assert run.wait(30)
    assert run.state == "done"
    # 100 messages at 200/s: the last is due 99/200 s after the first, so never sooner. (How
    # close to the rate it keeps is a figure for a benchmark, not a bound for a loaded machine.)
    assert run.elapsed_s >= 99 / 200


def test_cancel_stops_a_repeat_run_promptly(demo: DemoTopology):
    run = start_repeat(message(demo.vhost, repeat="100000", rate="500"))
    eventually(lambda: run.published > 0, what="the run under way")
    run.cancel()
    assert run.wait(30)  # the rest would take 200 s at 500/s
    assert run.state == "cancelled"
    assert 0 < run.published < 1000
    assert run.confirmed == run.published
    assert demo.wait_for_depth("q.a", run.published) == run.published


def test_a_connection_dropped_mid_run_ends_the_run_with_a_clear_error(demo: DemoTopology):
    run = start_repeat(message(demo.vhost, repeat="100000", rate="1000"))
    close_publisher_connection(demo.client, demo.vhost)
    assert run.wait(10)
    assert run.state == "error"
    assert "connection" in (run.error or "").lower() or "closed" in (run.error or "").lower()
    assert run.published < 100000
    # The next publish reconnects.
    assert publish(message(demo.vhost)).status == "routed"


def test_single_publishes_are_served_while_a_run_is_in_progress(demo: DemoTopology):
    run = start_repeat(message(demo.vhost, repeat="100000", rate="200"))
    eventually(lambda: run.published > 0, what="the run under way")
    assert publish(message(demo.vhost, routing_key="solo")).status == "routed"
    assert (run.state, run.finished) == ("running", False)  # served during the run, not after
    run.cancel()
    assert run.wait(30)


def test_a_run_cancelled_while_waiting_behind_another_ends_without_publishing(
    demo: DemoTopology,
):
    first = start_repeat(message(demo.vhost, repeat="100000", rate="200"))
    eventually(lambda: first.state == "running", what="the first run under way")
    second = start_repeat(message(demo.vhost, repeat="10"))
    # The publisher thread takes its jobs in order: once this publish is answered, the second
    # run is queued behind the first.
    assert publish(message(demo.vhost)).status == "routed"
    assert (first.state, second.state) == ("running", "waiting")
    second.cancel()
    assert second.wait(30)  # the first run would take 500 s
    assert (second.state, second.published) == ("cancelled", 0)
    first.cancel()
    assert first.wait(30)
