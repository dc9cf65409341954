"""`DemoRun`: a loaded scenario's publishers and workers, started and stopped as one.

The run owns every thread it starts and stops them all; nothing of it stays on the broker
(each thread's connection is closed, and with it its channel and consumer; unacknowledged
messages go back to their queue). Workers start first and the publishers only once every
worker consumes, so the first messages already take turns across the workers.

Counters outlive the threads: a publisher stopped and started again, or a worker removed and
added back, goes on counting where it left off. `report()` reads them at any time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pika.exceptions

from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import BrokerError
from flows.demo.scenario import MAX_RATE, MAX_WORK_MS, MAX_WORKERS, Scenario, WorkerSpec
from flows.demo.workers import (
    PublisherCounts,
    PublisherTally,
    PublisherThread,
    WorkerCounts,
    WorkerSettings,
    WorkerTally,
    WorkerThread,
)

JOIN_TIMEOUT_S = 5.0
# Workers count as done with the backlog once nothing was delivered or in hand for this long.
QUIET_S = 0.3


@dataclass(frozen=True)
class RunReport:
    scenario: str
    vhost: str
    seconds: float
    publishers: Mapping[str, PublisherCounts]
    workers: Mapping[str, WorkerCounts]  # by connection name: `belery worker 2`
    depths: Mapping[str, int] = field(default_factory=dict)  # ready messages left, per queue
    errors: Mapping[str, str] = field(default_factory=dict)  # by connection name


class WorkerGroup:
    """The `count` workers of one `[[workers]]` entry, resizable while they run."""

    def __init__(self, spec: WorkerSpec, *, vhost: str) -> None:
        self.spec = spec
        self.vhost = vhost
        self.settings = WorkerSettings(spec)
        self.count = spec.count if spec.enabled else 0
        self.tallies: dict[str, WorkerTally] = {}
        self.threads: list[WorkerThread] = []
        self.running = False

    def start(self) -> None:
        self.running = True
        self._resize(self.count)

    def stop(self) -> None:
        self.running = False
        self._resize(0)

    def set_count(self, count: int) -> None:
        self.count = count
        if self.running:
            self._resize(count)

    def _resize(self, count: int) -> None:
        while len(self.threads) < count:
            number = len(self.threads) + 1
            name = f"{self.spec.name} {number}"
            tally = self.tallies.setdefault(name, WorkerTally(self.spec.queue))
            thread = WorkerThread(
                self.spec, number, vhost=self.vhost, settings=self.settings, tally=tally
            )
            thread.start()
            self.threads.append(thread)
        leaving, self.threads = self.threads[count:], self.threads[:count]
        for thread in leaving:
            thread.stop()
        for thread in leaving:
            thread.join(JOIN_TIMEOUT_S)

    def all_ready(self) -> bool:
        return all(t.ready.is_set() or t.error or not t.is_alive() for t in self.threads)


class DemoRun:
    """A scenario's publishers and workers on `vhost` (the scenario must be loaded there)."""

    def __init__(self, scenario: Scenario, *, vhost: str | None = None) -> None:
        self.scenario = scenario
        self.vhost = vhost or scenario.default_vhost()
        self.rates = {p.name: p.rate for p in scenario.publishers}
        self.publisher_tallies = {p.name: PublisherTally() for p in scenario.publishers}
        self.publishers: dict[str, PublisherThread] = {}  # the running ones
        self.groups = {w.name: WorkerGroup(w, vhost=self.vhost) for w in scenario.workers}
        self.errors: dict[str, str] = {}
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._lock = threading.RLock()  # pages may change a run from several threads

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None

    def start(self, *, ready_timeout: float = 10.0) -> None:
        with self._lock:
            if self.started_at is not None:
                raise RuntimeError("a DemoRun starts once; make another")
            self.started_at = time.monotonic()
            for group in self.groups.values():
                group.start()
            deadline = time.monotonic() + ready_timeout
            while not all(g.all_ready() for g in self.groups.values()):
                if time.monotonic() > deadline:
                    break  # report() names the workers that could not connect
                time.sleep(0.01)
            for spec in self.scenario.publishers:
                if spec.enabled:
                    self.start_publisher(spec.name)

    def stop(self, *, drain_s: float = 0.0) -> RunReport:
        """Stop everything; with `drain_s`, publishers first, then let the workers finish what
        is queued for them (at most `drain_s`). Returns the final report, depths included."""
        with self._lock:
            if self.started_at is None or self.stopped_at is not None:
                return self.report()
            for name in list(self.publishers):
                self.stop_publisher(name)
            if drain_s > 0:
                self._wait_quiet(drain_s)
            for group in self.groups.values():
                group.stop()
            self.stopped_at = time.monotonic()
            return self.report(depths=True)

    # --- publishers ---

    def start_publisher(self, name: str) -> None:
        with self._lock:
            if name in self.publishers:
                return
            spec = self.scenario.publisher(name)
            thread = PublisherThread(spec, vhost=self.vhost, tally=self.publisher_tallies[name])
            thread.rate = self.rates[name]
            thread.start()
            self.publishers[name] = thread

    def stop_publisher(self, name: str) -> None:
        with self._lock:
            thread = self.publishers.pop(name, None)
            if thread is None:
                return
            thread.stop()
            thread.join(JOIN_TIMEOUT_S)
            if thread.error:
                self.errors[thread.connection_name] = thread.error

    def set_rate(self, name: str, rate: float) -> None:
        """Messages per second (0 pauses the publisher, `publish_now` still sends)."""
        if not 0 <= rate <= MAX_RATE:
            raise ValueError(f"a rate is from 0 to {MAX_RATE:g} messages per second")
        with self._lock:
            self.scenario.publisher(name)
            self.rates[name] = rate
            if name in self.publishers:
                self.publishers[name].rate = rate

    @property
    def held(self) -> bool:
        """Every publisher paused at rate 0: only steps publish (a presenter's step mode)."""
        return all(rate == 0 for rate in self.rates.values())

    def hold(self) -> None:
        """Pause every publisher (rate 0), so that only `publish_now` sends. A paced message
        a publisher had already taken may still go out; before `start()`, none does."""
        with self._lock:
            for name in self.rates:
                self.set_rate(name, 0)

    def resume(self) -> None:
        """Every publisher back at its scenario's rate."""
        with self._lock:
            for spec in self.scenario.publishers:
                self.set_rate(spec.name, spec.rate)

    def publish_now(self, name: str, count: int = 1) -> None:
        """Send the publisher's next `count` messages at once (starting it if need be)."""
        with self._lock:
            self.start_publisher(name)
            self.publishers[name].publish_now(count)

    # --- workers ---

    def group(self, name: str) -> WorkerGroup:
        self.scenario.worker(name)
        return self.groups[name]

    def set_worker_count(self, name: str, count: int) -> None:
        if not 0 <= count <= MAX_WORKERS:
            raise ValueError(f"a worker count is from 0 to {MAX_WORKERS}")
        with self._lock:
            group = self.group(name)
            group.set_count(count)
            self._collect_errors(group.threads)

    def set_prefetch(self, name: str, prefetch: int) -> None:
        """0 is AMQP's "no limit"."""
        if not 0 <= prefetch <= 65535:
            raise ValueError("a prefetch is from 0 (no limit) to 65535")
        self.group(name).settings.prefetch = prefetch

    def set_failure_rate(self, name: str, rate: float) -> None:
        if not 0 <= rate <= 1:
            raise ValueError("a failure rate is from 0 to 1")
        self.group(name).settings.failure_rate = rate

    def set_work_ms(self, name: str, work_ms: int) -> None:
        if not 0 <= work_ms <= MAX_WORK_MS:
            raise ValueError(f"work time is from 0 to {MAX_WORK_MS} ms")
        self.group(name).settings.work_ms = work_ms

    # --- what happened ---

    def report(self, *, depths: bool = False) -> RunReport:
        with self._lock:
            threads: list[PublisherThread | WorkerThread] = [*self.publishers.values()]
            for group in self.groups.values():
                threads += group.threads
            self._collect_errors(threads)
            end = self.stopped_at or time.monotonic()
            return RunReport(
                scenario=self.scenario.name,
                vhost=self.vhost,
                seconds=end - self.started_at if self.started_at is not None else 0.0,
                publishers={n: t.counts() for n, t in self.publisher_tallies.items()},
                workers={
                    name: tally.counts()
                    for group in self.groups.values()
                    for name, tally in group.tallies.items()
                },
                depths=self._depths() if depths else {},
                errors=dict(self.errors),
            )

    def _collect_errors(self, threads: Iterable[PublisherThread | WorkerThread]) -> None:
        for thread in threads:
            if thread.error:
                self.errors[thread.connection_name] = thread.error

    def _in_hand(self) -> tuple[int, int]:
        """(deliveries so far, deliveries not yet acked or rejected) over every worker."""
        delivered = finished = 0
        for group in self.groups.values():
            for tally in group.tallies.values():
                counts = tally.counts()
                delivered += counts.deliveries
                finished += counts.acked + counts.requeued + counts.rejected
        return delivered, delivered - finished

    def _wait_quiet(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last, quiet_since = self._in_hand()[0], time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            delivered, in_hand = self._in_hand()
            if delivered != last or in_hand:
                last, quiet_since = delivered, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                return

    def _depths(self) -> dict[str, int]:
        return queue_depths(self.vhost, [q.name for q in self.scenario.queues])


def queue_depths(vhost: str, queues: Iterable[str]) -> dict[str, int]:
    """Messages ready in each queue, exactly (a passive declare; the API's figures lag)."""
    depths: dict[str, int] = {}
    try:
        connection = open_blocking_connection(vhost=vhost, purpose="demo queue depths")
    except BrokerError:
        return depths
    try:
        for queue in queues:
            try:
                channel = connection.channel()
                depths[queue] = channel.queue_declare(queue, passive=True).method.message_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                continue  # the queue is gone (unloaded meanwhile)
    finally:
        if connection.is_open:
            connection.close()
    return depths
