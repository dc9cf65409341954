"""Helpers for tap tests: a tap whose batches land in a list, and broker set-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pika

from flows.broker.amqp import open_blocking_connection
from flows.broker.management_api import ManagementClient
from flows.tap.tap import Tap, TapSettings

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

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return
            time.sleep(0.02)
        raise AssertionError(f"timed out; last status: {self.statuses[-1:]}")

    def wait_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.wait_for(lambda: len(self.events) >= n, timeout)
        return list(self.events)

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
        collector.wait_for(lambda: collector.statuses and collector.status["state"] == "running")
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
