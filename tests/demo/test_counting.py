"""The pure parts of a run: which deliveries fail, reading x-death, what went where."""

from __future__ import annotations

import pytest
from pika.spec import BasicProperties

from flows.demo.run import RunReport
from flows.demo.scenario import load_scenario
from flows.demo.summary import format_report, queue_rows
from flows.demo.workers import FailurePlan, PublisherCounts, WorkerCounts, newest_death

FAILURE_CASES = [
    (0.0, 10, ""),
    (1.0, 5, "FFFFF"),
    (0.5, 8, ".F.F.F.F"),
    (0.2, 10, "....F....F"),
    (0.25, 8, "...F...F"),
    (1 / 3, 9, "..F..F..F"),
    (0.1, 30, ".........F.........F.........F"),
]


@pytest.mark.parametrize(("rate", "deliveries", "pattern"), FAILURE_CASES)
def test_failures_are_evenly_spread(rate: float, deliveries: int, pattern: str) -> None:
    plan = FailurePlan(rate)
    got = "".join("F" if plan.next_fails() else "." for _ in range(deliveries))
    assert got == (pattern or "." * deliveries)


def test_a_new_failure_rate_applies_from_the_next_delivery() -> None:
    plan = FailurePlan(0.0)
    assert [plan.next_fails() for _ in range(3)] == [False] * 3
    plan.rate = 1.0
    assert [plan.next_fails() for _ in range(2)] == [True, True]


DEATH_CASES = [
    (None, None),
    ({}, None),
    ({"x-death": []}, None),
    ({"x-death": "junk"}, None),
    ({"x-death": [{"queue": "q", "reason": "expired", "count": 1}]}, ("q", "expired")),
    ({"x-death": [{"queue": b"q", "reason": b"maxlen"}]}, ("q", "maxlen")),
    (
        {"x-death": [{"queue": "later", "reason": "rejected"}, {"queue": "first", "reason": "x"}]},
        ("later", "rejected"),  # newest first
    ),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), DEATH_CASES)
def test_newest_death(headers: dict | None, expected: tuple[str, str] | None) -> None:
    assert newest_death(BasicProperties(headers=headers)) == expected


def _failures_report() -> RunReport:
    return RunReport(
        scenario="failures",
        vhost="demo-failures",
        seconds=5.0,
        publishers={
            "order service": PublisherCounts(
                published=4, expected={"orders.work": 2, "orders.unroutable": 2}
            ),
            "reminder service": PublisherCounts(published=3, expected={"orders.reminders": 3}),
            "burst producer": PublisherCounts(published=5, expected={"orders.burst": 5}),
        },
        workers={
            "order checker 1": WorkerCounts(queue="orders.work", deliveries=2, acked=1, rejected=1),
            "dead-letter reader 1": WorkerCounts(
                queue="orders.dead-letters",
                deliveries=5,
                acked=5,
                deaths={
                    ("orders.work", "rejected"): 1,
                    ("orders.reminders", "expired"): 2,
                    ("orders.burst", "maxlen"): 2,
                },
            ),
            "unroutable reader 1": WorkerCounts(queue="orders.unroutable", deliveries=2, acked=2),
        },
        depths={
            "orders.unroutable": 0,
            "orders.dead-letters": 0,
            "orders.work": 0,
            "orders.reminders": 1,
            "orders.burst": 3,
        },
    )


def test_what_arrived_in_each_queue_is_counted_from_what_left_it() -> None:
    rows = {r.queue: r for r in queue_rows(load_scenario("failures"), _failures_report())}
    assert {q: (r.expected, r.arrived) for q, r in rows.items()} == {
        "orders.unroutable": (2, 2),
        "orders.dead-letters": (0, 5),
        "orders.work": (2, 2),  # one acked, one rejected (and seen again as a dead letter)
        "orders.reminders": (3, 3),  # two expired, one still waiting
        "orders.burst": (5, 5),  # two pushed out, three held
    }
    assert dict(rows["orders.reminders"].dead_lettered) == {"expired": 2}
    assert rows["orders.burst"].left == 3


def test_the_printed_report() -> None:
    text = format_report(load_scenario("failures"), _failures_report())
    lines = text.splitlines()
    assert lines[:2] == [
        "failures: Failures: unroutable, rejected, expired, overflowed",
        "vhost 'demo-failures', 5.0 s",
    ]
    assert "order service             4           0       0" in lines
    header = next(line for line in lines if line.startswith("queue "))
    assert header.split()[:4] == ["queue", "expected", "arrived", "consumed"]
    assert header.split()[4:] == ["redelivered", "requeued", "dead-lettered", "left"]
    burst = next(line for line in lines if line.startswith("orders.burst "))
    assert burst.split() == ["orders.burst", "5", "5", "0", "0", "0", "2", "3"]
    assert lines[-1] == (
        "dead-lettered (x-death): orders.work: rejected 1; orders.reminders: expired 2; "
        "orders.burst: maxlen 2"
    )
    assert "errors" not in text


def test_the_report_names_the_errors_and_unknown_depths() -> None:
    report = RunReport(
        scenario="topics",
        vhost="v",
        seconds=1.0,
        publishers={},
        workers={},
        errors={"food lover 1": "the broker closed the channel: NOT_FOUND"},
    )
    text = format_report(load_scenario("topics"), report)
    assert "all-food" in text and text.splitlines()[-1].endswith("NOT_FOUND")
    row = next(line for line in text.splitlines() if line.startswith("all-food"))
    assert row.split()[-1] == "-"  # not measured
