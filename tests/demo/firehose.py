"""The firehose, read by a test: every publish with the queues it reached, every delivery.

`watching(client, vhost)` switches tracing on for the test's scratch vhost, binds an
exclusive queue of its own to `amq.rabbitmq.trace`, waits until its own probe message is
traced (so everything published afterwards is), and switches tracing back off after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from flows.broker.amqp import open_blocking_connection
from flows.broker.management_api import ManagementClient
from tests.support.waiting import eventually


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Trace:
    kind: str  # "publish" or "deliver"
    exchange: str
    routing_keys: tuple[str, ...]
    routed_queues: tuple[str, ...]  # publish: where the broker put it
    queue: str | None  # deliver: the queue it came from
    redelivered: bool
    properties: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.get("headers") or {}


def parse_trace(routing_key: str, headers: dict[str, Any], body: bytes) -> Trace:
    kind, _, rest = routing_key.partition(".")
    return Trace(
        kind=kind,
        exchange=_text(headers.get("exchange_name", "")),
        routing_keys=tuple(_text(k) for k in headers.get("routing_keys") or ()),
        routed_queues=tuple(_text(q) for q in headers.get("routed_queues") or ()),
        queue=rest if kind == "deliver" else None,
        redelivered=bool(headers.get("redelivered")),
        properties=dict(headers.get("properties") or {}),
        body=body,
    )


class Firehose:
    def __init__(self, connection: BlockingConnection, channel: BlockingChannel, queue: str):
        self.connection = connection
        self.channel = channel
        self.queue = queue
        self.traces: list[Trace] = []
        channel.basic_consume(queue, self._on_trace, auto_ack=True)

    def _on_trace(self, _channel, method, properties, body: bytes) -> None:
        trace = parse_trace(method.routing_key, properties.headers or {}, body)
        if trace.queue != self.queue:  # our own reading of the firehose is traced too
            self.traces.append(trace)

    def wait_for(
        self, condition: Callable[[list[Trace]], Any], *, timeout: float = 15.0, what: str = ""
    ) -> list[Trace]:
        def pumped() -> Any:
            self.connection.process_data_events(time_limit=0.05)
            return condition(self.traces)

        eventually(pumped, timeout=timeout, interval=0, what=what or "the firehose")
        return list(self.traces)

    def publishes(self, exchange: str | None = None) -> list[Trace]:
        return [
            t
            for t in self.traces
            if t.kind == "publish" and (exchange is None or t.exchange == exchange)
        ]

    def deliveries(self, queue: str | None = None) -> list[Trace]:
        return [
            t for t in self.traces if t.kind == "deliver" and (queue is None or t.queue == queue)
        ]


@contextmanager
def watching(client: ManagementClient, vhost: str) -> Iterator[Firehose]:
    was_on = client.vhost(vhost).tracing
    client.set_tracing(vhost, enabled=True)
    connection = open_blocking_connection(vhost=vhost, purpose="test firehose")
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(queue, "amq.rabbitmq.trace", "#")
        firehose = Firehose(connection, channel, queue)
        probe = f"flows-test.probe.{uuid.uuid4().hex}"
        channel.basic_publish("", probe, b"probe")
        firehose.wait_for(
            lambda traces: any(probe in t.routing_keys for t in traces), what="the probe"
        )
        firehose.traces.clear()
        yield firehose
    finally:
        connection.close()
        client.set_tracing(vhost, enabled=was_on)
