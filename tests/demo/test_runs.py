"""Each scenario run on the real broker, watched through the firehose.

Every scenario's messages reach exactly the queues its file expects (the broker's own
`routed_queues`), its workers consume them, round-robin holds across workers, requeued
messages come back redelivered, each kind of failure lands where it belongs with its
`x-death`, and a stopped run leaves no connection behind.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from flows.broker.management_api import ManagementClient, api_path
from flows.demo.loading import load, unload
from flows.demo.run import DemoRun, queue_depths
from flows.demo.scenario import Scenario, available_scenarios, load_scenario
from tests.demo.firehose import Firehose, watching
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(management_client: ManagementClient, demo_vhost: str) -> Iterator[str]:
    """Load (in a test) one scenario into `demo_vhost`; unloaded after."""
    names: list[str] = []

    def load_one(name: str) -> str:
        load(load_scenario(name), vhost=demo_vhost, client=management_client)
        names.append(name)
        return demo_vhost

    yield load_one  # type: ignore[misc]
    for name in names:
        unload(name, vhost=demo_vhost, client=management_client)


def once_each(scenario: Scenario) -> Scenario:
    """Every publisher on, sending each of its messages once; no worker fails or dawdles."""
    publishers = tuple(
        dataclasses.replace(p, enabled=True, limit=len(p.messages), rate=50.0)
        for p in scenario.publishers
    )
    workers = tuple(dataclasses.replace(w, failure_rate=0.0, work_ms=0) for w in scenario.workers)
    return dataclasses.replace(scenario, publishers=publishers, workers=workers)


@contextmanager
def running(scenario: Scenario, vhost: str) -> Iterator[DemoRun]:
    run = DemoRun(scenario, vhost=vhost)
    run.start()
    try:
        yield run
    finally:
        run.stop()


def connection_names(client: ManagementClient, vhost: str) -> set[str]:
    connections = client.get(api_path("vhosts", vhost, "connections")) or []
    return {c.get("user_provided_name") or "" for c in connections} - {""}


@pytest.mark.parametrize("name", available_scenarios())
def test_each_message_reaches_exactly_the_expected_queues_and_is_consumed(
    name: str, management_client: ManagementClient, loaded
) -> None:
    vhost = loaded(name)
    scenario = once_each(load_scenario(name))
    expected_routes: dict[tuple[str, str], list[str]] = {}
    for publisher in scenario.publishers:
        for message in publisher.messages:
            key = (publisher.exchange, message.routing_key)
            assert expected_routes.setdefault(key, sorted(message.expect)) == sorted(message.expect)
    total = sum(len(p.messages) for p in scenario.publishers)
    with watching(management_client, vhost) as firehose, running(scenario, vhost) as run:
        firehose.wait_for(
            lambda _: len(_publishes_of(firehose, scenario)) >= total, what="every publish"
        )
        publishes = _publishes_of(firehose, scenario)
        assert len(publishes) == total
        for trace in publishes:
            [routing_key] = trace.routing_keys
            assert sorted(trace.routed_queues) == expected_routes[(trace.exchange, routing_key)]
        arrivals = Counter(q for t in publishes for q in t.routed_queues)
        consumed = {w.queue for w in scenario.workers if w.count}
        firehose.wait_for(
            lambda _: all(
                len(firehose.deliveries(q)) >= n for q, n in arrivals.items() if q in consumed
            ),
            what="every arrival delivered to a worker",
        )
        expected_acks = {q: n for q, n in arrivals.items() if q in consumed}
        eventually(
            lambda: _acked_by_queue(run, expected_acks) == expected_acks,
            what="every delivery acked",
        )
        report = run.report()
        assert sum(p.returned for p in report.publishers.values()) == sum(
            1 for t in publishes if not t.routed_queues
        )
        if name == "mailer":
            _check_replies(firehose)


def _publishes_of(firehose: Firehose, scenario: Scenario) -> list:
    exchanges = {p.exchange for p in scenario.publishers}
    return [t for t in firehose.publishes() if t.exchange in exchanges]


def _acked_by_queue(run: DemoRun, queues: Iterable[str]) -> dict[str, int]:
    workers = run.report().workers.values()
    return {q: sum(c.acked for c in workers if c.queue == q) for q in queues}


def _check_replies(firehose: Firehose) -> None:
    firehose.wait_for(lambda _: firehose.deliveries("webapp.replies"), what="the reply delivered")
    [command] = firehose.publishes("services")
    [reply] = firehose.publishes("")
    assert reply.routing_keys == ("webapp.replies",) and reply.routed_queues == ("webapp.replies",)
    correlation_id = command.properties["correlation_id"]
    assert command.properties["reply_to"] == "webapp.replies"
    assert reply.properties["correlation_id"] == correlation_id
    assert json.loads(reply.body)["in_reply_to"] == correlation_id
    assert [d.queue for d in firehose.deliveries("webapp.replies")] == ["webapp.replies"]


def belery(*, rate: float, limit: int | None = None, **workers: Any) -> Scenario:
    """The belery scenario, its app publishing at `rate` (up to `limit` tasks: None, no limit),
    its workers' settings changed by `workers`."""
    scenario = load_scenario("belery").with_publisher("belery app", rate=rate, limit=limit)
    return scenario.with_worker("belery worker", **workers) if workers else scenario


def test_tasks_take_turns_across_workers_with_prefetch_1(
    management_client: ManagementClient, loaded
) -> None:
    vhost = loaded("belery")
    tasks = 30
    scenario = belery(rate=25.0, limit=tasks, count=3, prefetch=1, failure_rate=0.0, work_ms=0)
    with running(scenario, vhost) as run:
        names = {"belery app", "belery worker 1", "belery worker 2", "belery worker 3"}
        eventually(
            lambda: names <= connection_names(management_client, vhost),
            what="the named connections",
        )
        eventually(
            lambda: sum(c.acked for c in run.report().workers.values()) == tasks,
            what="every task acked",
        )
        report = run.report()
    shares = {name: c.deliveries for name, c in report.workers.items()}
    assert sum(shares.values()) == tasks
    assert all(abs(n - tasks / 3) <= 1 for n in shares.values()), shares
    assert report.publishers["belery app"].published == tasks


def test_a_failed_task_is_requeued_and_comes_back_redelivered(
    management_client: ManagementClient, loaded
) -> None:
    vhost = loaded("belery")
    tasks = 10
    scenario = belery(rate=50.0, limit=tasks, count=2, failure_rate=0.5, requeue=True, work_ms=0)
    with watching(management_client, vhost) as firehose, running(scenario, vhost) as run:
        eventually(
            lambda: sum(c.acked for c in run.report().workers.values()) == tasks,
            what="every task acked in the end",
        )
        report = run.report()
        requeued = sum(c.requeued for c in report.workers.values())
        firehose.wait_for(
            lambda _: len(firehose.deliveries("tasks")) == tasks + requeued,
            what="every delivery traced",
        )
    # Every second delivery fails (evenly spread): the tenth success is delivery 19, after
    # nine failures.
    assert requeued == tasks - 1
    deliveries = firehose.deliveries("tasks")
    assert sum(d.redelivered for d in deliveries) == requeued
    assert sum(c.redelivered for c in report.workers.values()) == requeued
    # A requeued task is the same message again: each body is delivered once fresh, and
    # then once more for each time it failed, marked redelivered.
    firsts = Counter(d.body for d in deliveries if not d.redelivered)
    assert set(firsts.values()) == {1} and len(firsts) == tasks
    assert {d.body for d in deliveries if d.redelivered} <= set(firsts)
    assert all(d.properties["delivery_mode"] == 2 for d in deliveries)


def test_each_failure_lands_where_it_belongs_with_its_x_death(
    management_client: ManagementClient, loaded
) -> None:
    vhost = loaded("failures")
    scenario = (
        load_scenario("failures")
        .with_publisher("order service", limit=4, rate=20.0)  # 2 placed, 2 unroutable
        .with_publisher("reminder service", limit=2, rate=20.0)  # 2 expire (1 s TTL)
        .with_publisher("burst producer", limit=5, rate=20.0)  # 3 fit, 2 pushed out
        .with_worker("order checker", failure_rate=1.0, requeue=False)  # 2 rejected
    )
    with watching(management_client, vhost) as firehose, running(scenario, vhost) as run:
        expected_deaths = {
            ("orders.work", "rejected"): 2,
            ("orders.reminders", "expired"): 2,
            ("orders.burst", "maxlen"): 2,
        }
        eventually(
            lambda: run.report().workers["dead-letter reader 1"].deaths == expected_deaths,
            timeout=15,
            what="the dead letters",
        )
        eventually(
            lambda: run.report().workers["unroutable reader 1"].acked == 2,
            what="the unroutable orders",
        )
        firehose.wait_for(
            lambda _: len(firehose.deliveries("orders.dead-letters")) == 6,
            what="the dead letters traced",
        )
        report = run.stop()
    refunds = [t for t in firehose.publishes("orders") if t.routing_keys == ("order.refunded",)]
    assert [t.routed_queues for t in refunds] == [("orders.unroutable",)] * 2
    assert report.workers["order checker 1"].rejected == 2
    assert report.publishers["order service"].returned == 0  # the alternate exchange took them
    reasons: Counter[tuple[str, str]] = Counter()
    for delivery in firehose.deliveries("orders.dead-letters"):
        [death] = delivery.headers["x-death"]
        assert death["exchange"] == "orders" and death["count"] == 1
        reasons[(death["queue"], death["reason"])] += 1
        assert delivery.headers["x-first-death-reason"] == death["reason"]
    assert dict(reasons) == expected_deaths
    assert report.depths["orders.burst"] == 3
    assert report.depths["orders.reminders"] == 0


def test_settings_change_while_it_runs_and_nothing_stays_behind(
    management_client: ManagementClient, loaded
) -> None:
    vhost = loaded("belery")
    scenario = belery(rate=0.0, count=1, prefetch=1, work_ms=60_000, failure_rate=0.0)
    with running(scenario, vhost) as run:
        run.publish_now("belery app", 6)
        # One task in the worker's hands, the rest ready: prefetch 1.
        eventually(lambda: queue_depths(vhost, ["tasks"]) == {"tasks": 5}, what="prefetch 1")
        run.set_prefetch("belery worker", 4)
        eventually(lambda: queue_depths(vhost, ["tasks"]) == {"tasks": 2}, what="prefetch 4")
        run.set_worker_count("belery worker", 3)
        names = {"belery app", "belery worker 1", "belery worker 2", "belery worker 3"}
        eventually(lambda: names <= connection_names(management_client, vhost), what="3 workers")
        eventually(lambda: queue_depths(vhost, ["tasks"]) == {"tasks": 0}, what="the rest taken")
        run.set_worker_count("belery worker", 1)
        eventually(
            lambda: "belery worker 3" not in connection_names(management_client, vhost),
            what="worker 3 gone",
        )
        run.stop_publisher("belery app")
        eventually(
            lambda: "belery app" not in connection_names(management_client, vhost),
            what="the publisher gone",
        )
        run.set_rate("belery app", 40.0)
        run.start_publisher("belery app")
        eventually(
            lambda: run.report().publishers["belery app"].published >= 10,
            what="publishing again, at the new rate",
        )
        with pytest.raises(ValueError, match="from 0 to 1"):
            run.set_failure_rate("belery worker", 2)
        with pytest.raises(KeyError):
            run.set_prefetch("nobody", 1)
    report = run.report()
    assert report.errors == {}
    eventually(lambda: not connection_names(management_client, vhost), what="no connection left")
    consumers = management_client.get(api_path("consumers", vhost))
    assert consumers == []
    # The publisher numbered on across its restart: every message counted once.
    assert report.publishers["belery app"].by_routing_key == {
        "tasks": report.publishers["belery app"].published
    }


def test_a_run_whose_vhost_is_unloaded_under_it_stops_saying_why(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    load(load_scenario("belery"), vhost=demo_vhost, client=management_client)
    scenario = belery(rate=20.0)
    with running(scenario, demo_vhost) as run:
        eventually(lambda: _acked_by_queue(run, ["tasks"])["tasks"] > 0, what="tasks flowing")
        unload("belery", vhost=demo_vhost, client=management_client)
        threads = [*run.publishers.values(), *run.groups["belery worker"].threads]
        eventually(lambda: not any(t.is_alive() for t in threads), what="every thread ended")
        errors = run.report().errors
    assert set(errors) == {"belery app", "belery worker 1", "belery worker 2", "belery worker 3"}
    # Whichever the thread hears first as the vhost goes: its queue or exchange gone, its
    # consumer cancelled, or the vhost refusing it on reconnecting.
    reasons = ("refused access to vhost", "cancelled the consumer of 'tasks'", "NOT_FOUND")
    for name, error in errors.items():
        assert any(reason in error for reason in reasons), (name, error)
