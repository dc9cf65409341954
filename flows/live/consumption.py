"""The consumption panel: per queue, ready and unacked depth over the last minutes and the
deliver/ack rates; per consumer, its channel's deliveries and unacked messages, so
round-robin and prefetch effects are visible.

The management API gives the current values (refreshed by the broker every few seconds);
the history behind the sparklines is kept per process (`QueueHistories`, held by the
runtime), one sample per vhost every couple of seconds however many pages poll.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flows.broker.management_api import ManagementClient
from flows.broker.naming import is_dashboard_object
from flows.runtime import runtime
from flows.topology.parsing import connection_labels, parse_consumer
from flows.topology.parsing import parse_queue as parse_queue_record

HISTORY_S = 300.0
MIN_SAMPLE_INTERVAL_S = 2.0
SPARK_WIDTH = 120
SPARK_HEIGHT = 24
QUEUE_COLUMNS = "name,messages_ready,messages_unacknowledged,consumers,message_stats"
MAX_QUEUES_SHOWN = 50


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _rate(stats: Any, name: str) -> float:
    if not isinstance(stats, Mapping):
        return 0.0
    details = stats.get(f"{name}_details")
    return _number(details.get("rate")) if isinstance(details, Mapping) else 0.0


@dataclass(frozen=True)
class QueueNow:
    name: str
    ready: int
    unacked: int
    consumers: int
    publish_rate: float
    deliver_rate: float
    ack_rate: float


@dataclass(frozen=True)
class ConsumerNow:
    queue: str
    consumer_tag: str
    channel: str
    prefetch: int
    ack_required: bool
    deliveries: int
    deliver_rate: float
    unacked: int
    label: str = ""  # the client's name for its connection, else the tag


def parse_queue(item: Mapping[str, Any]) -> QueueNow:
    """A queue's depths (read as the topology reads them) and its message rates."""
    queue = parse_queue_record(item)
    stats = item.get("message_stats")
    return QueueNow(
        name=queue.name,
        ready=queue.messages_ready or 0,
        unacked=queue.messages_unacknowledged or 0,
        consumers=queue.consumer_count or 0,
        publish_rate=_rate(stats, "publish"),
        deliver_rate=_rate(stats, "deliver_get"),
        ack_rate=_rate(stats, "ack"),
    )


def parse_consumers(
    consumers: Iterable[Mapping[str, Any]],
    channels: Iterable[Mapping[str, Any]],
    connections: Iterable[Mapping[str, Any]] = (),
) -> list[ConsumerNow]:
    """Consumers (read and named as the topology reads them) with their channel's delivery
    counts (the API counts per channel)."""
    labels = connection_labels(connections)
    by_name = {str(c.get("name")): c for c in channels if isinstance(c, Mapping)}
    result = []
    for item in consumers:
        if not isinstance(item, Mapping):
            continue
        consumer = parse_consumer(item, labels)
        channel = by_name.get(consumer.channel, {})
        stats = channel.get("message_stats")
        result.append(
            ConsumerNow(
                queue=consumer.queue,
                consumer_tag=consumer.consumer_tag,
                channel=consumer.channel,
                prefetch=consumer.prefetch_count or 0,
                ack_required=consumer.ack_required,
                deliveries=int(
                    _number(stats.get("deliver_get")) if isinstance(stats, Mapping) else 0
                ),
                deliver_rate=_rate(stats, "deliver_get"),
                unacked=int(_number(channel.get("messages_unacknowledged"))),
                label=consumer.label,
            )
        )
    return sorted(result, key=lambda c: (c.queue, c.channel, c.consumer_tag))


def sparkline_points(
    values: Sequence[float],
    *,
    top: float | None = None,
    width: int = SPARK_WIDTH,
    height: int = SPARK_HEIGHT,
) -> str:
    """SVG polyline points for values over time, scaled to the box (0..top, default the
    largest value); flat at the bottom if all are 0."""
    if not values:
        return ""
    top = top or max(values) or 1.0
    if len(values) == 1:
        y = height - (values[0] / top) * (height - 1)
        return f"0,{y:.1f} {width},{y:.1f}"
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - (v / top) * (height - 1):.1f}" for i, v in enumerate(values)
    )


@dataclass
class History:
    """Depth samples per queue for one vhost."""

    samples: dict[str, deque[tuple[float, int, int]]] = field(default_factory=dict)
    last_at: float = 0.0

    def add(self, queues: Iterable[QueueNow], now: float) -> None:
        if now - self.last_at < MIN_SAMPLE_INTERVAL_S:
            return
        self.last_at = now
        seen = set()
        for queue in queues:
            seen.add(queue.name)
            series = self.samples.setdefault(queue.name, deque())
            series.append((now, queue.ready, queue.unacked))
            while series and now - series[0][0] > HISTORY_S:
                series.popleft()
        for gone in set(self.samples) - seen:
            del self.samples[gone]

    def series(self, name: str) -> tuple[list[float], list[float]]:
        series = self.samples.get(name, ())
        return [float(s[1]) for s in series], [float(s[2]) for s in series]


@dataclass(frozen=True)
class QueuePanel:
    queue: QueueNow
    ready_points: str
    unacked_points: str
    minutes: float


class QueueHistories:
    """One `History` per vhost, shared by every page that polls it.

    The process's one instance is `flows.runtime.runtime().queue_histories`.
    """

    def __init__(self) -> None:
        self._histories: dict[str, History] = {}
        self._lock = threading.Lock()

    def panels(
        self, vhost: str, queues: list[QueueNow], now: float
    ) -> tuple[list[QueuePanel], int]:
        """Add a sample of `queues`; the panels of the busiest, and how many are not shown."""
        with self._lock:
            history = self._histories.setdefault(vhost, History())
            history.add(queues, now)
            queues = sorted(queues, key=lambda q: (-(q.ready + q.unacked + q.deliver_rate), q.name))
            shown = queues[:MAX_QUEUES_SHOWN]
            panels = []
            for queue in shown:
                ready, unacked = history.series(queue.name)
                top = max([*ready, *unacked, 1.0])
                series: Sequence[tuple[float, int, int]] = history.samples.get(queue.name) or ()
                minutes = (series[-1][0] - series[0][0]) / 60 if len(series) > 1 else 0.0
                panels.append(
                    QueuePanel(
                        queue=queue,
                        # One scale for both lines, so ready and unacked compare by eye.
                        ready_points=sparkline_points(ready, top=top),
                        unacked_points=sparkline_points(unacked, top=top),
                        minutes=minutes,
                    )
                )
        return panels, len(queues) - len(shown)


def consumption(
    vhost: str, *, client: ManagementClient | None = None, now: float | None = None
) -> tuple[list[QueuePanel], list[ConsumerNow], int]:
    """The panel's data: queues (busiest first, capped), consumers, and how many queues hidden."""
    client = client or runtime().management_client
    now = time.monotonic() if now is None else now
    raw_queues = client.queues(vhost, columns=QUEUE_COLUMNS)
    queues = [
        parse_queue(item) for item in raw_queues if not is_dashboard_object(str(item.get("name")))
    ]
    consumers = [
        c
        for c in parse_consumers(
            client.consumers(vhost),
            client.channels(vhost),
            client.connections(vhost),
        )
        if not is_dashboard_object(c.queue)
    ]
    panels, hidden = runtime().queue_histories.panels(vhost, queues, now)
    return panels, consumers, hidden
