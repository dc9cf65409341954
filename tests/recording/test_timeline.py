"""One message's timeline from its tap events: a table of cases (flows.recording.timeline)."""

from __future__ import annotations

import pytest

from flows.recording.timeline import ACK_NOT_OBSERVED, timeline
from flows.topology.parsing import build_topology
from tests.support.tap_events import delivered, published, published_via_bindings

CONN = "127.0.0.1:40010 -> 127.0.0.1:5672"


def death(reason: str, queue: str, count: int = 1) -> dict:
    return {
        "count": count,
        "reason": reason,
        "queue": queue,
        "exchange": "",
        "routing-keys": [queue],
    }


PUBLISH = published(
    1, exchange="shop", routing_key="order", routed_queues=["work"], connection=CONN
)
DELIVER = delivered(2, queue="work", exchange="shop", connection=CONN, channel=1)
REDELIVER = delivered(3, queue="work", exchange="shop", connection=CONN, redelivered=True)
FROM_DLQ = delivered(
    4,
    queue="dlq",
    exchange="dlx",
    connection=CONN,
    headers={"x-death": [death("rejected", "work")]},
)
FROM_DLQ_AGAIN = delivered(
    6,
    queue="dlq",
    exchange="dlx",
    headers={"x-death": [death("expired", "retry", 1), death("rejected", "work")]},
)
BROKER_REPUBLISH = published(
    5, exchange="dlx", routing_key="order", routed_queues=["dlq"], connection=None,
    headers={"x-death": [death("rejected", "work")]},
)  # fmt: skip


@pytest.mark.parametrize(
    ("events", "kinds"),
    [
        pytest.param([PUBLISH], ["published", "routed"], id="published and routed"),
        pytest.param(
            [published(1, routed_queues=[])], ["published", "unroutable"], id="unroutable"
        ),
        pytest.param([published_via_bindings()], ["published"], id="route unknown via bindings"),
        pytest.param([PUBLISH, DELIVER], ["published", "routed", "delivered"], id="delivered"),
        pytest.param(
            [PUBLISH, DELIVER, REDELIVER],
            ["published", "routed", "delivered", "redelivered"],
            id="redelivered",
        ),
        pytest.param(
            [PUBLISH, DELIVER, FROM_DLQ],
            ["published", "routed", "delivered", "dead-lettered", "delivered"],
            id="dead-lettered, seen from the x-death of the later delivery",
        ),
        pytest.param(
            [PUBLISH, DELIVER, BROKER_REPUBLISH, FROM_DLQ],
            [
                "published",
                "routed",
                "delivered",
                "dead-lettered",
                "published",
                "routed",
                "delivered",
            ],
            id="a traced republish to the DLX: one dead-lettering, not two",
        ),
        pytest.param(
            [FROM_DLQ, FROM_DLQ_AGAIN],
            ["dead-lettered", "delivered", "dead-lettered", "delivered"],
            id="dead-lettered twice",
        ),
        pytest.param([], [], id="nothing recorded"),
    ],
)
def test_steps(events, kinds):
    assert [step["kind"] for step in timeline(events)] == kinds


def test_a_dead_lettering_says_why_from_where_and_into_which_queue():
    step = timeline([FROM_DLQ])[0]
    assert (step["reason"], step["queue"], step["count"]) == ("rejected", "work", 1)
    assert (
        step["text"]
        == "dead-lettered (rejected) from queue 'work' into queue 'dlq' via exchange 'dlx'"
    )
    assert step["note"] == "from the x-death header of a later event"


def test_the_newest_death_is_the_one_shown():
    steps = timeline([FROM_DLQ, FROM_DLQ_AGAIN])
    assert (steps[2]["reason"], steps[2]["queue"]) == ("expired", "retry")


def test_a_delivery_names_its_consumer_and_says_the_ack_is_not_observed():
    step = timeline([DELIVER])[0]
    assert (step["queue"], step["connection"], step["channel"]) == ("work", CONN, 1)
    assert step["note"] == ACK_NOT_OBSERVED


def test_a_publish_names_exchange_key_connection_and_user():
    step = timeline([PUBLISH])[0]
    assert (step["exchange"], step["routing_key"], step["connection"], step["user"]) == (
        "shop", "order", CONN, "guest",
    )  # fmt: skip
    assert timeline([PUBLISH])[1]["queues"] == ["work"]


def test_the_default_exchange_is_named_so():
    step = timeline([published(1, exchange="", routing_key="work", routed_queues=["work"])])[0]
    assert step["text"] == "published to the default exchange with routing key 'work'"


ORDERS = build_topology(
    "v",
    exchanges=[
        {"name": "", "type": "direct"},
        {"name": "orders", "type": "direct", "arguments": {"alternate-exchange": "unrouted"}},
        {"name": "unrouted", "type": "fanout"},
    ],
    queues=[{"name": "orders.eu"}, {"name": "lost"}],
    bindings=[
        {"source": "orders", "destination": "orders.eu", "destination_type": "queue",
         "routing_key": "eu", "arguments": {}},
        {"source": "unrouted", "destination": "lost", "destination_type": "queue",
         "routing_key": "", "arguments": {}},
    ],
)  # fmt: skip


@pytest.mark.parametrize(
    ("routing_key", "routed", "caught"),
    [("us", ["lost"], "unrouted"), ("eu", ["orders.eu"], None)],
)
def test_an_alternate_exchange_that_caught_a_publish_is_predicted(routing_key, routed, caught):
    event = published(1, exchange="orders", routing_key=routing_key, routed_queues=routed)
    step = timeline([event], topology=ORDERS)[0]
    assert step.get("alternate_exchange") == caught
    if caught:
        assert "predicted" in step["note"]
