"""Consumption panel data: queue and consumer stats parsed tolerantly, depth history, sparklines."""

import pytest

from flows.live.consumption import (
    HISTORY_S,
    History,
    QueueNow,
    parse_consumers,
    parse_queue,
    sparkline_points,
)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {
                "name": "work",
                "messages_ready": 3,
                "messages_unacknowledged": 2,
                "consumers": 2,
                "message_stats": {
                    "publish_details": {"rate": 1.5},
                    "deliver_get_details": {"rate": 4.0},
                    "ack_details": {"rate": 3.5},
                },
            },
            QueueNow("work", 3, 2, 2, 1.5, 4.0, 3.5),
        ),
        # A queue with no traffic yet has no message_stats; odd values read as 0.
        (
            {"name": "idle", "messages_ready": None, "consumers": "x"},
            QueueNow("idle", 0, 0, 0, 0, 0, 0),
        ),
        ({"name": "q", "message_stats": []}, QueueNow("q", 0, 0, 0, 0, 0, 0)),
    ],
)
def test_parse_queue(item, expected):
    assert parse_queue(item) == expected


def test_consumers_carry_their_channels_deliveries():
    consumers = parse_consumers(
        [
            {
                "queue": {"name": "work"},
                "consumer_tag": "b",
                "channel_details": {"name": "ch2"},
                "prefetch_count": 1,
            },
            {
                "queue": {"name": "work"},
                "consumer_tag": "a",
                "channel_details": {"name": "ch1"},
                "ack_required": False,
            },
            {"queue": {"name": "work"}, "consumer_tag": "c", "channel_details": []},
            "junk",
        ],
        [
            {
                "name": "ch1",
                "messages_unacknowledged": 0,
                "message_stats": {"deliver_get": 40, "deliver_get_details": {"rate": 2.0}},
            },
            {"name": "ch2", "messages_unacknowledged": 1, "message_stats": {"deliver_get": 7}},
        ],
    )
    assert [
        (
            c.consumer_tag,
            c.channel,
            c.prefetch,
            c.ack_required,
            c.deliveries,
            c.deliver_rate,
            c.unacked,
        )
        for c in consumers
    ] == [
        ("c", "", 0, True, 0, 0.0, 0),
        ("a", "ch1", 0, False, 40, 2.0, 0),
        ("b", "ch2", 1, True, 7, 0.0, 1),
    ]


def test_consumers_are_labelled_by_their_connection_name():
    consumers = parse_consumers(
        [
            {
                "queue": {"name": "work"},
                "consumer_tag": "ctag1.x",
                "channel_details": {"name": "ch1", "connection_name": "c1"},
            },
            {
                "queue": {"name": "work"},
                "consumer_tag": "ctag2.y",
                "channel_details": {"name": "ch2", "connection_name": "c2"},
            },
        ],
        [],
        [{"name": "c1", "user_provided_name": "belery worker 1"}, {"name": "c2"}],
    )
    assert [(c.consumer_tag, c.label) for c in consumers] == [
        ("ctag1.x", "belery worker 1"),
        ("ctag2.y", "ctag2.y"),
    ]


@pytest.mark.parametrize(
    ("values", "top", "points"),
    [
        ([], None, ""),
        ([5], None, "0,1.0 120,1.0"),
        ([0, 0], None, "0.0,24.0 120.0,24.0"),
        ([0, 10], None, "0.0,24.0 120.0,1.0"),
        ([0, 5, 10], 20, "0.0,24.0 60.0,18.2 120.0,12.5"),
    ],
)
def test_sparkline_points(values, top, points):
    assert sparkline_points(values, top=top) == points


def q(name, ready, unacked=0):
    return QueueNow(name, ready, unacked, 0, 0, 0, 0)


def test_history_keeps_minutes_and_forgets_deleted_queues():
    history = History()
    history.add([q("a", 1), q("b", 5)], now=100.0)
    history.add([q("a", 9)], now=100.5)  # too soon after the last sample: ignored
    history.add([q("a", 2, 1)], now=103.0)
    assert history.series("a") == ([1.0, 2.0], [0.0, 1.0])
    assert "b" not in history.samples
    history.add([q("a", 3)], now=103.0 + HISTORY_S)
    assert history.series("a") == ([2.0, 3.0], [1.0, 0.0])
