"""The built-in publishers and workers a scenario runs: one thread and one connection each.

pika connections are not thread-safe, so every publisher and every worker owns its thread
and its connection, named as the audience should read it (`belery worker 2`). Settings a
speaker changes while they run (a rate, a failure rate, a prefetch) are attributes the owning
thread reads between messages; counters are written by the thread that owns them and read by
anyone through `snapshot()`.

A thread whose connection drops reconnects, waiting longer each time (up to 5 s); one the
broker refuses for good (vhost gone, queue deleted, no permission) stops with its error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from flows.broker.amqp import open_blocking_connection
from flows.broker.errors import BrokerError, BrokerUnreachable
from flows.demo.messages import MessageContext, render
from flows.demo.scenario import PublisherSpec, WorkerSpec

LOGGER = logging.getLogger(__name__)

RECONNECT_FIRST_DELAY_S = 0.5
RECONNECT_MAX_DELAY_S = 5.0
# How long a thread waits on the broker between looks at its settings and its stop flag.
TICK_S = 0.05
# Channel errors no retry can fix: the queue or exchange is gone, access refused, a mismatch.
FATAL_REPLY_CODES = frozenset({403, 404, 405, 406})
THREAD_PREFIX = "demo: "


class _QuietReturns(logging.Filter):
    """pika warns of every returned publish; in a demo, the unroutable message is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.threadName
            and record.threadName.startswith(THREAD_PREFIX)
            and str(record.msg).startswith("Published message was returned")
        )


_PIKA_LOGGER = logging.getLogger("pika.adapters.blocking_connection")
if not any(isinstance(f, _QuietReturns) for f in _PIKA_LOGGER.filters):
    _PIKA_LOGGER.addFilter(_QuietReturns())


class _Refused(Exception):
    """The broker refused for good: the thread ends with its error set."""


# --- counters -----------------------------------------------------------------------------------


class Tally:
    """Counters one thread adds to and any thread reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Hashable] = Counter()

    def add(self, key: Hashable, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def snapshot(self) -> Counter[Hashable]:
        with self._lock:
            return Counter(self._counts)


@dataclass(frozen=True)
class PublisherCounts:
    published: int = 0
    returned: int = 0  # mandatory publishes the broker could route nowhere
    nacked: int = 0
    by_routing_key: Mapping[str, int] = field(default_factory=dict)
    # per queue: how many of the published messages the scenario expects there
    expected: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerCounts:
    queue: str
    deliveries: int = 0
    redelivered: int = 0
    acked: int = 0
    requeued: int = 0
    rejected: int = 0  # rejected without requeue: dead-lettered, or dropped
    replied: int = 0
    # (queue, reason) of the newest `x-death` entry of each dead-lettered message received
    deaths: Mapping[tuple[str, str], int] = field(default_factory=dict)


def _part(counts: Counter[Hashable], kind: str) -> dict[Any, int]:
    return {key[1]: n for key, n in counts.items() if isinstance(key, tuple) and key[0] == kind}


class PublisherTally(Tally):
    def counts(self) -> PublisherCounts:
        counts = self.snapshot()
        return PublisherCounts(
            published=counts["published"],
            returned=counts["returned"],
            nacked=counts["nacked"],
            by_routing_key=_part(counts, "key"),
            expected=_part(counts, "expected"),
        )


class WorkerTally(Tally):
    def __init__(self, queue: str) -> None:
        super().__init__()
        self.queue = queue

    def counts(self) -> WorkerCounts:
        counts = self.snapshot()
        return WorkerCounts(
            queue=self.queue,
            deliveries=counts["deliveries"],
            redelivered=counts["redelivered"],
            acked=counts["acked"],
            requeued=counts["requeued"],
            rejected=counts["rejected"],
            replied=counts["replied"],
            deaths=_part(counts, "death"),
        )


def newest_death(properties: BasicProperties) -> tuple[str, str] | None:
    """(queue, reason) of a dead-lettered message's newest `x-death` entry (it is first)."""
    deaths = (properties.headers or {}).get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return None
    entry = deaths[0]
    queue, reason = entry.get("queue"), entry.get("reason")
    if isinstance(queue, bytes):
        queue = queue.decode(errors="replace")
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return (str(queue), str(reason))


class FailurePlan:
    """Which deliveries fail: every `1/rate`-th, evenly spread over a worker group.

    Deterministic on purpose: a rehearsal repeats itself, and a test knows what to expect.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._deliveries = 0

    def next_fails(self) -> bool:
        with self._lock:
            self._deliveries += 1
            n, rate = self._deliveries, self.rate
        return math.floor(n * rate + 1e-9) > math.floor((n - 1) * rate + 1e-9)


# --- the thread every publisher and worker is -------------------------------------------------


class BrokerThread(threading.Thread):
    """A daemon thread with one named connection, reconnecting until it is stopped."""

    def __init__(self, *, vhost: str, connection_name: str) -> None:
        super().__init__(name=f"{THREAD_PREFIX}{connection_name}", daemon=True)
        self.vhost = vhost
        self.connection_name = connection_name
        self.ready = threading.Event()  # connected and serving
        self.error: str | None = None  # the last failure, until it connects again
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def serve(self, connection: BlockingConnection) -> None:
        raise NotImplementedError

    def run(self) -> None:
        delay = RECONNECT_FIRST_DELAY_S
        while not self._stopping.is_set():
            try:
                connection = open_blocking_connection(
                    vhost=self.vhost, purpose="demo", exact_name=self.connection_name
                )
            except BrokerUnreachable as exc:
                self._failed(exc.message)
            except BrokerError as exc:
                self._failed(exc.message)
                return
            else:
                self.error = None  # connected again: what went wrong before is history
                try:
                    self.serve(connection)
                    return
                except _Refused as exc:
                    self._failed(str(exc))
                    return
                except pika.exceptions.ChannelClosedByBroker as exc:
                    self._failed(f"the broker closed the channel: {exc.reply_text}")
                    if exc.reply_code in FATAL_REPLY_CODES:
                        return
                except pika.exceptions.AMQPError as exc:
                    self._failed(f"connection lost: {exc!r}")
                except Exception as exc:  # a bug: say so on the run, do not die silently
                    LOGGER.exception("%s failed", self.connection_name)
                    self._failed(f"failed: {exc!r}")
                    return
                finally:
                    self.ready.clear()
                    with contextlib.suppress(pika.exceptions.AMQPError):
                        if connection.is_open:
                            connection.close()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RECONNECT_MAX_DELAY_S)

    def _failed(self, message: str) -> None:
        LOGGER.info("%s (vhost %r): %s", self.connection_name, self.vhost, message)
        self.error = message


# --- publishers ---------------------------------------------------------------------------------


class PublisherThread(BrokerThread):
    """Publishes its spec's messages in turn, `rate` a second, with publisher confirms.

    `rate` may change while it runs (0 pauses it); `publish_now()` sends the next message at
    once whatever the rate (a presenter's step). The first `limit` messages are published at
    the rate, no more (`finished` is set then); asked-for ones are always sent.
    """

    def __init__(self, spec: PublisherSpec, *, vhost: str, tally: PublisherTally) -> None:
        super().__init__(vhost=vhost, connection_name=spec.name)
        self.spec = spec
        self.tally = tally
        self.rate = spec.rate
        self.finished = threading.Event()
        self._requested = 0
        self._requests_lock = threading.Lock()
        self._next_due: float | None = None
        self._paced = 0
        # A publisher started again (after a stop) goes on numbering where it left off.
        self._seq = tally.snapshot()["published"]

    def publish_now(self, count: int = 1) -> None:
        with self._requests_lock:
            self._requested += count

    def _take_request(self) -> bool:
        with self._requests_lock:
            if self._requested <= 0:
                return False
            self._requested -= 1
            return True

    def _take_due(self, now: float) -> bool:
        rate = self.rate
        if rate <= 0 or self.finished.is_set():
            self._next_due = None
            return False
        if self._next_due is None:
            self._next_due = now
        if now < self._next_due:
            return False
        # Behind by more than a message (a stall): start again from now rather than burst.
        self._next_due = max(self._next_due + 1 / rate, now - 1 / rate)
        self._paced += 1
        if self.spec.limit is not None and self._paced >= self.spec.limit:
            self.finished.set()
        return True

    def _seconds_to_next(self, now: float) -> float:
        if self._next_due is None:
            return TICK_S
        return max(0.001, min(TICK_S, self._next_due - now))

    def serve(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        channel.confirm_delivery()
        self.ready.set()
        while not self._stopping.is_set():
            now = time.monotonic()
            if self._take_request() or self._take_due(now):
                self._publish_next(channel)
            else:
                connection.sleep(self._seconds_to_next(now))

    def _publish_next(self, channel: BlockingChannel) -> None:
        self._seq += 1
        template = self.spec.messages[(self._seq - 1) % len(self.spec.messages)]
        message = render(template, MessageContext.fresh(self._seq))
        outcome = None
        try:
            channel.basic_publish(
                self.spec.exchange,
                message.routing_key,
                message.body,
                pika.BasicProperties(**message.properties),
                mandatory=self.spec.mandatory,
            )
        except pika.exceptions.UnroutableError:
            outcome = "returned"
        except pika.exceptions.NackError:
            outcome = "nacked"
        self.tally.add("published")
        self.tally.add(("key", message.routing_key))
        for queue in template.expect:
            self.tally.add(("expected", queue))
        if outcome:
            self.tally.add(outcome)


# --- workers ------------------------------------------------------------------------------------


class WorkerSettings:
    """What a worker group's speaker may change while it runs, read per message."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.prefetch = spec.prefetch
        self.work_ms = spec.work_ms
        self.failures = FailurePlan(spec.failure_rate)

    @property
    def failure_rate(self) -> float:
        return self.failures.rate

    @failure_rate.setter
    def failure_rate(self, rate: float) -> None:
        self.failures.rate = rate


@dataclass(frozen=True)
class _Delivery:
    tag: int
    properties: BasicProperties


class WorkerThread(BrokerThread):
    """Consumes one queue with a prefetch limit and works on one message at a time for
    `work_ms`; acks what it finished, rejects what failed (requeued or not, as its spec
    says), and answers `reply_to` if its spec replies.

    Work is a deadline, not a sleep: the thread goes on serving its connection meanwhile,
    so a new prefetch applies at once, heartbeats flow, and a stop never waits for a task.
    What the broker sent ahead (the prefetch) waits in `_inbox`, unacknowledged.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        number: int,
        *,
        vhost: str,
        settings: WorkerSettings,
        tally: WorkerTally,
    ) -> None:
        super().__init__(vhost=vhost, connection_name=f"{spec.name} {number}")
        self.spec = spec
        self.settings = settings
        self.tally = tally
        self._inbox: deque[_Delivery] = deque()
        self._done_at: float | None = None  # when the message at the head of the inbox is

    def serve(self, connection: BlockingConnection) -> None:
        self._inbox.clear()  # a new connection: the old one's deliveries went back to the queue
        self._done_at = None
        channel = connection.channel()
        prefetch = self.settings.prefetch
        # Per channel (global): RabbitMQ applies a per-consumer prefetch only to consumers
        # started after it; a channel's takes effect at once, and each worker has one channel
        # with one consumer, so it is the same limit.
        channel.basic_qos(prefetch_count=prefetch, global_qos=True)
        cancelled = threading.Event()
        channel.add_on_cancel_callback(lambda _frame: cancelled.set())
        channel.basic_consume(self.spec.queue, self._on_message)
        self.ready.set()
        while not self._stopping.is_set():
            self._work(channel)
            connection.process_data_events(time_limit=self._seconds_to_next())
            if cancelled.is_set():
                raise _Refused(f"the broker cancelled the consumer of {self.spec.queue!r}")
            if self.settings.prefetch != prefetch:
                prefetch = self.settings.prefetch
                channel.basic_qos(prefetch_count=prefetch, global_qos=True)

    def _on_message(
        self,
        _channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        _body: bytes,
    ) -> None:
        self.tally.add("deliveries")
        if method.redelivered:
            self.tally.add("redelivered")
        death = newest_death(properties)
        if death:
            self.tally.add(("death", death))
        self._inbox.append(_Delivery(cast(int, method.delivery_tag), properties))

    def _seconds_to_next(self) -> float:
        if self._done_at is None:
            return TICK_S
        return max(0.001, min(TICK_S, self._done_at - time.monotonic()))

    def _work(self, channel: BlockingChannel) -> None:
        while self._inbox and not self._stopping.is_set():
            now = time.monotonic()
            if self._done_at is None:
                self._done_at = now + self.settings.work_ms / 1000
            if now < self._done_at:
                return
            self._done_at = None
            self._finish(channel, self._inbox.popleft())

    def _finish(self, channel: BlockingChannel, delivery: _Delivery) -> None:
        tag = delivery.tag
        if self.settings.failures.next_fails():
            channel.basic_reject(tag, requeue=self.spec.requeue)
            self.tally.add("requeued" if self.spec.requeue else "rejected")
            return
        reply_to = delivery.properties.reply_to
        if self.spec.reply and reply_to:
            self._reply(channel, reply_to, delivery.properties.correlation_id)
        channel.basic_ack(tag)
        self.tally.add("acked")

    def _reply(self, channel: BlockingChannel, reply_to: str, correlation_id: str | None) -> None:
        body = {"status": "done", "by": self.connection_name, "in_reply_to": correlation_id}
        channel.basic_publish(
            "",
            reply_to,
            json.dumps(body).encode(),
            pika.BasicProperties(content_type="application/json", correlation_id=correlation_id),
        )
        self.tally.add("replied")
