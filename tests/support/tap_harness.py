"""Helpers for tap tests: a tap whose batches land in a list, and broker set-up."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pika

from flows.broker.amqp import open_blocking_connection
from flows.broker.management_api import ManagementClient
from flows.tap.tap import Tap, TapSettings
from tests.support.waiting import DEFAULT_TIMEOUT_S, eventually

FAST = TapSettings(sync_interval_s=0.5, reconnect_max_delay_s=1.0)


class Collector:
    """The sink of a tap under test: every batch and status, in order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, events: list, status: dict) -> None:
        with self._lock:
            self.events.extend(events)
            self.statuses.append(status)

    def wait_for(
        self, predicate: Callable[[], object], *, what: str, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        """Wait until `predicate` holds, checked under the sink's lock."""

        def holds() -> bool:
            with self._lock:
                assert predicate(), f"last status: {self.statuses[-1:]}"
            return True

        eventually(holds, what=what, timeout=timeout, interval=0.02)

    def wait_events(self, n: int, timeout: float = DEFAULT_TIMEOUT_S) -> list[dict[str, Any]]:
        self.wait_for(lambda: len(self.events) >= n, what=f"{n} tap events", timeout=timeout)
        return list(self.events)

    def wait_for_event(self, matches: Callable[[dict[str, Any]], bool], *, what: str) -> int:
        """Wait for an event `matches` accepts (a marker, say); its index in `events`."""
        self.wait_for(lambda: any(matches(event) for event in self.events), what=what)
        with self._lock:
            return next(i for i, event in enumerate(self.events) if matches(event))

    @property
    def status(self) -> dict[str, Any]:
        return self.statuses[-1]


@contextmanager
def running_tap(
    vhost: str, mode: str = "bindings", settings: TapSettings = FAST
) -> Iterator[tuple[Tap, Collector]]:
    collector = Collector()
    tap = Tap(vhost, mode, collector, tap_settings=settings)
    tap.start()
    try:
        collector.wait_for(
            lambda: collector.statuses and collector.status["state"] == "running",
            what="the tap to run",
        )
        yield tap, collector
    finally:
        tap.stop()


@contextmanager
def amqp_channel(vhost: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = open_blocking_connection(vhost=vhost, purpose="test")
    try:
        yield connection.channel()
    finally:
        connection.close()


def declare_bound_queue(vhost: str, *, exchange: str, queue: str, binding_key: str) -> None:
    """A topic exchange and a queue bound to it with `binding_key`."""
    with amqp_channel(vhost) as channel:
        channel.exchange_declare(exchange, "topic")
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange, binding_key)


def tap_queues(client: ManagementClient, vhost: str) -> list[str]:
    return [
        item["name"]
        for item in client.queues(vhost, columns="name", disable_stats=True)
        if item["name"].startswith("flows-dashboard.tap.")
    ]


def tap_bindings(client: ManagementClient, vhost: str, queue: str | None) -> set[tuple[str, str]]:
    """(exchange, routing key) of each binding the broker holds for the tap's `queue`."""
    assert queue, "the tap has no queue yet"
    return {
        (str(item["source"]), str(item["routing_key"]))
        for item in client.bindings(vhost)
        if item.get("destination_type") == "queue" and item.get("destination") == queue
    }
