"""The live page's counters add up, and its rate follows the total."""

import pytest

from flows.live.counters import RateMeter, TapDropTracker, live_counts


@pytest.mark.parametrize(
    ("viewer", "tap_dropped", "expected"),
    [
        (
            {"received": 10, "sent": 4, "filtered_out": 3, "sampled_out": 2, "dropped": 1},
            0,
            (10, 4, 3, 2, 1),
        ),
        (
            {"received": 10, "sent": 4, "filtered_out": 3, "sampled_out": 2, "dropped": 1},
            5,
            (15, 4, 3, 2, 6),
        ),
        ({}, 0, (0, 0, 0, 0, 0)),
        ({"received": "x", "sent": None}, 2, (2, 0, 0, 0, 2)),
    ],
)
def test_counts_add_up(viewer, tap_dropped, expected):
    counts = live_counts(viewer, tap_dropped=tap_dropped)
    assert (
        counts.total,
        counts.shown,
        counts.filtered_out,
        counts.sampled_out,
        counts.dropped,
    ) == expected
    assert counts.adds_up


def test_tap_drops_are_named_as_a_reason():
    counts = live_counts(
        {"received": 1, "sent": 1, "drop_reasons": {"slow viewer": 0}}, tap_dropped=3
    )
    assert counts.drop_reasons == {"slow viewer": 0, "tap queue overflow": 3}


@pytest.mark.parametrize(
    ("reports", "since_join"),
    [
        ([], 0),
        ([7], 0),  # the first report is the baseline
        ([7, 9, 12], 5),
        ([7, 9, 2], 4),  # the tap restarted: 2 before, 2 after
        ([None, 3], 3),
        ([5, 5, 5], 0),
    ],
)
def test_tap_drops_since_join(reports, since_join):
    tracker = TapDropTracker()
    for value in reports:
        tracker.observe(value)
    assert tracker.since_join == since_join


@pytest.mark.parametrize(
    ("samples", "rate"),
    [
        ([(0.0, 0)], 0.0),
        ([(0.0, 0), (1.0, 100)], 100.0),
        ([(0.0, 0), (1.0, 100), (2.0, 300)], 150.0),
        # Old samples leave the 3 s window.
        ([(0.0, 0), (1.0, 1000), (5.0, 1000), (6.0, 1100)], 100.0),
        ([(0.0, 50), (1.0, 50)], 0.0),
    ],
)
def test_rate_meter(samples, rate):
    meter = RateMeter(window_s=3.0)
    for now, total in samples:
        meter.observe(total, now=now)
    assert meter.rate == pytest.approx(rate)


@pytest.mark.parametrize(
    ("rate", "text"), [(0.0, "0.0"), (2.25, "2.2"), (10.0, "10"), (123.6, "124")]
)
def test_rate_text(rate, text):
    assert live_counts({}, rate=rate).rate_text == text
